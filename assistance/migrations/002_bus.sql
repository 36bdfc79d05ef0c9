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
