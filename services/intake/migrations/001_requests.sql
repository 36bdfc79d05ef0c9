-- Every accepted request, durable before it is acknowledged (its outbox rows: bus.outbox).
CREATE SCHEMA IF NOT EXISTS intake;

CREATE SEQUENCE intake.reference_seq;

CREATE TABLE intake.requests (
    id uuid PRIMARY KEY,                   -- the dossier id (and its workflow id)
    reference text NOT NULL UNIQUE,        -- D-2026-000042
    channel text NOT NULL CHECK (channel IN ('web', 'mail', 'phone')),
    requester_email text NOT NULL,
    requester_name text NOT NULL,
    organisation_id uuid,
    software text NOT NULL,
    subject text NOT NULL,
    description text NOT NULL,
    caller_phone text,
    deposited_by uuid,                     -- the authenticated user, if any
    technician_id uuid,                    -- phone: the technician who took the call
    received_at timestamptz NOT NULL,
    first_response_due timestamptz NOT NULL
);
CREATE INDEX requests_received_at ON intake.requests (received_at);

CREATE TABLE intake.idempotency (
    key text NOT NULL,
    scope text NOT NULL,
    body_hash text NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, scope)
);
