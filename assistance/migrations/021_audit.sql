-- Who did what, when and from where (issue 13 item 6): staff reads of dossiers, sign-ins,
-- permission changes, exports and erasures. Written only through assistance/audit.py.
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE audit.events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_id uuid,
    actor_email text NOT NULL DEFAULT '',
    actor_role text NOT NULL DEFAULT '',
    action text NOT NULL,
    target text NOT NULL DEFAULT '',
    client_address text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit.events (at);
CREATE INDEX audit_events_actor ON audit.events (actor_id, at);
