-- HTTP `Idempotency-Key`: one table for every write of the API (docs/decisions/0012).
-- A key is claimed (`in_progress`, with a lease) before the write acts; the answer is then
-- stored (`done`), or kept re-runnable (`pending`: a dossier command answered 202), or the
-- claim is released (a 5xx or a crash) so that a retry acts.
CREATE SCHEMA IF NOT EXISTS web;

CREATE TABLE web.idempotency (
    caller text NOT NULL,                  -- the user id, or 'anonymous'
    route text NOT NULL,                   -- method and path: the route and its parameters
    key text NOT NULL,
    request_hash text NOT NULL,            -- the query and the body, canonical
    state text NOT NULL CHECK (state IN ('in_progress', 'pending', 'done')),
    claim uuid,                            -- who holds an in_progress claim
    lease_until timestamptz,               -- past it, an in_progress claim is abandoned
    status int,
    headers jsonb,
    body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, route, key)
);
CREATE INDEX idempotency_created ON web.idempotency (created_at);
