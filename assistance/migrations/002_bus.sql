-- Messages a consumer could not handle: kept, never dropped silently.
CREATE SCHEMA IF NOT EXISTS bus;

CREATE TABLE bus.dead_letters (
    id bigserial PRIMARY KEY,
    consumer text NOT NULL,
    subject text NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    data text NOT NULL,
    reason text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The transactional outbox every service writes in the same transaction as its own change;
-- a relay takes each row on to NATS (or Temporal), retrying, so nothing accepted is lost.
CREATE TABLE bus.outbox (
    id bigserial PRIMARY KEY,
    source text NOT NULL,                  -- the service that wrote the row
    kind text NOT NULL,                    -- 'publish', or a source-specific kind
    payload jsonb NOT NULL,
    trace jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    done_at timestamptz
);
CREATE INDEX outbox_pending ON bus.outbox (source, next_attempt_at, id) WHERE done_at IS NULL;

CREATE FUNCTION bus.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bus_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON bus.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION bus.notify_outbox();
