-- One place for work that failed for good (docs/decisions/0013): messages a consumer could not
-- handle, outbox rows that could not be sent, workflow side effects that failed. Parked, never
-- dropped; an administrator retries or discards each one, and is told of it.
ALTER TABLE bus.dead_letters RENAME TO parked;
ALTER TABLE bus.parked RENAME COLUMN consumer TO name;      -- durable, outbox source, activity
ALTER TABLE bus.parked RENAME COLUMN reason TO error;
ALTER TABLE bus.parked RENAME COLUMN recorded_at TO first_failed_at;
ALTER TABLE bus.parked
    ADD COLUMN source text NOT NULL DEFAULT 'consumer'
        CHECK (source IN ('consumer', 'outbox', 'activity', 'workflow')),
    ADD COLUMN ref text,                     -- stream:seq, outbox id, workflow:activity
    ADD COLUMN kind text,                    -- outbox kind, activity type
    ADD COLUMN dossier_id uuid,
    ADD COLUMN attempts int NOT NULL DEFAULT 1,
    ADD COLUMN last_failed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'retried', 'discarded')),
    ADD COLUMN acted_by text,
    ADD COLUMN acted_at timestamptz,
    ADD COLUMN notified_at timestamptz;
UPDATE bus.parked SET last_failed_at = first_failed_at, ref = 'legacy:' || id;
ALTER TABLE bus.parked ALTER COLUMN ref SET NOT NULL;
-- a message redelivered after its parking committed is parked once
CREATE UNIQUE INDEX parked_once ON bus.parked (source, name, ref);
CREATE INDEX parked_open ON bus.parked (first_failed_at, id) WHERE state = 'open';
CREATE INDEX parked_unnotified ON bus.parked (id) WHERE notified_at IS NULL;
CREATE INDEX parked_dossier ON bus.parked (dossier_id) WHERE dossier_id IS NOT NULL;

-- The outbox: ordered per key (the dossier), bounded, parked after the cap, purged when old.
ALTER TABLE bus.outbox
    ADD COLUMN ordering_key text,
    ADD COLUMN status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'done', 'parked'));
UPDATE bus.outbox SET status = 'done' WHERE done_at IS NOT NULL;
DROP INDEX bus.outbox_pending;
CREATE INDEX outbox_pending ON bus.outbox (source, next_attempt_at, id) WHERE status = 'pending';
-- "is an earlier row of this key still pending?": one index probe per candidate row
CREATE INDEX outbox_pending_key ON bus.outbox (ordering_key, id)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
CREATE INDEX outbox_done ON bus.outbox (done_at) WHERE status = 'done';

-- Activities failing again and again, as their worker saw them (assistance/activity_failures.py):
-- what the « travail bloqué » view shows without asking Temporal about every workflow.
CREATE TABLE bus.activity_failures (
    workflow_id text NOT NULL,
    activity_id text NOT NULL,
    activity_type text NOT NULL,
    dossier_id uuid,
    attempt int NOT NULL,
    error text NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, activity_id)
);

CREATE FUNCTION bus.notify_parked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bus_parked', '');
    RETURN NULL;
END $$;
CREATE TRIGGER parked_notify AFTER INSERT OR UPDATE OF state ON bus.parked
    FOR EACH STATEMENT EXECUTE FUNCTION bus.notify_parked();
