-- The dossier read model, projected from events: queue, timeline, search, archive (R4, R10).
CREATE SCHEMA IF NOT EXISTS dossier;

CREATE TABLE dossier.dossiers (
    id uuid PRIMARY KEY,
    reference text NOT NULL UNIQUE,
    status text NOT NULL,
    kind text,                              -- usage | advanced_usage | bug | evolution (R5)
    channel text NOT NULL,
    software text NOT NULL,
    subject text NOT NULL,
    description text NOT NULL DEFAULT '',
    requester_email text NOT NULL,
    requester_name text NOT NULL,
    organisation_id uuid,
    received_at timestamptz NOT NULL,
    first_response_due timestamptz NOT NULL,
    first_responded_at timestamptz,
    technician_id uuid,
    technician_name text,
    closed_at timestamptz,
    resolution text,
    details jsonb NOT NULL DEFAULT '{}',   -- branch-specific facts (diagnosis, links, targets)
    last_seq int NOT NULL DEFAULT 0,        -- the workflow's event counter already applied
    updated_at timestamptz NOT NULL DEFAULT now(),
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('french', coalesce(reference, '') || ' ' || subject), 'A') ||
        setweight(to_tsvector('french', coalesce(description, '')), 'B') ||
        setweight(to_tsvector('french', coalesce(resolution, '')), 'C')
    ) STORED
);
CREATE INDEX dossiers_status ON dossier.dossiers (status, received_at, reference);
CREATE INDEX dossiers_org ON dossier.dossiers (organisation_id, received_at DESC);
CREATE INDEX dossiers_search ON dossier.dossiers USING gin (search);

CREATE TABLE dossier.timeline (
    event_id text PRIMARY KEY,              -- the event's id: applying it twice is a no-op
    dossier_id uuid NOT NULL,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    visibility text NOT NULL CHECK (visibility IN ('customer', 'internal')),
    author text,
    text text NOT NULL DEFAULT '',
    data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_dossier ON dossier.timeline (dossier_id, at, event_id);

CREATE TABLE dossier.idempotency (
    key text NOT NULL,
    scope text NOT NULL,
    body_hash text NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, scope)
);
