-- An event in the outbox found by its id (assistance/outbox.py `event`): a dossier deposited
-- while NATS is down is read from its `received` event; one index probe, also for unknown ids.
CREATE INDEX outbox_event_id ON bus.outbox ((payload->>'id')) WHERE kind = 'publish';
