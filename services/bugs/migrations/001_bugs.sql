-- The bugs service (R8): bugs and the dossiers they concern, the workaround base, the
-- developers' work, releases, escalations. Written only by services/bugs.
CREATE SCHEMA IF NOT EXISTS bugs;

CREATE SEQUENCE bugs.bug_number;

CREATE TABLE bugs.bugs (
    id uuid PRIMARY KEY,
    reference text NOT NULL UNIQUE,              -- B-000042, for people
    software text NOT NULL,
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    affected_versions text[] NOT NULL DEFAULT '{}',
    state text NOT NULL CHECK (state IN ('new', 'reproduced', 'not_reproducible', 'diagnosed',
                                         'fix_completed', 'released', 'duplicate')),
    developer_id uuid,
    developer_name text,
    reproduction_steps text,
    environment text,
    questions text,
    diagnosis text,
    fix_version text,
    change_reference text,
    fix_notes text,
    fix_completed_at timestamptz,
    fix_completed_by text,
    released_version text,
    released_at timestamptz,
    duplicate_of uuid REFERENCES bugs.bugs (id),
    previous_bug_id uuid REFERENCES bugs.bugs (id),  -- a fix that did not hold for a dossier
    reported_at timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),  -- developers' last step (R2)
    last_answer_at timestamptz,                  -- customers' last answer to the questions
    seq int NOT NULL DEFAULT 0,                  -- facts published; event id = <id>:<seq>
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('french', coalesce(reference, '') || ' ' || title), 'A') ||
        setweight(to_tsvector('french', coalesce(description, '')), 'B') ||
        setweight(to_tsvector('french', coalesce(diagnosis, '')), 'C')
    ) STORED
);
CREATE INDEX bugs_state ON bugs.bugs (state, software, reported_at);
CREATE INDEX bugs_search ON bugs.bugs USING gin (search);

-- Many dossiers per bug; a dossier follows one bug at a time.
CREATE TABLE bugs.bug_dossiers (
    dossier_id uuid PRIMARY KEY,
    bug_id uuid NOT NULL REFERENCES bugs.bugs (id),
    reference text,
    version text,
    via text NOT NULL CHECK (via IN ('handover', 'technician')),
    linked_by text,
    linked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bug_dossiers_bug ON bugs.bug_dossiers (bug_id, linked_at);

-- Hand-overs from the dossier workflow, answered once per (dossier, attempt).
CREATE TABLE bugs.handovers (
    dossier_id uuid NOT NULL,
    attempt int NOT NULL,
    bug_id uuid NOT NULL REFERENCES bugs.bugs (id),
    answer jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dossier_id, attempt)
);

-- The workaround base (R8): one per dossier, searchable by software, version and words.
-- A row with only `none_reason` records that the gate was passed without a workaround.
CREATE TABLE bugs.workarounds (
    dossier_id uuid PRIMARY KEY,
    reference text,
    software text,
    version text,
    subject text,
    text text,
    none_reason text,
    recorded_at timestamptz NOT NULL,
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('french', coalesce(text, '')), 'A') ||
        setweight(to_tsvector('french', coalesce(subject, '')), 'B')
    ) STORED
);
CREATE INDEX workarounds_software ON bugs.workarounds (software, version);
CREATE INDEX workarounds_search ON bugs.workarounds USING gin (search);

-- Every fact about a bug, in order (the events it published).
CREATE TABLE bugs.history (
    bug_id uuid NOT NULL REFERENCES bugs.bugs (id),
    seq int NOT NULL,
    kind text NOT NULL,
    actor text,
    data jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bug_id, seq)
);

-- Customers' answers to a not-reproducible bug's questions (from their dossiers).
CREATE TABLE bugs.answers (
    event_id text PRIMARY KEY,
    bug_id uuid NOT NULL REFERENCES bugs.bugs (id),
    dossier_id uuid NOT NULL,
    author text,
    text text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX answers_bug ON bugs.answers (bug_id, at);

-- Versions released, as `evolutions.version.released` told us.
CREATE TABLE bugs.releases (
    software text NOT NULL,
    version text NOT NULL,
    released_at timestamptz NOT NULL,
    PRIMARY KEY (software, version)
);

-- Escalations of bugs without developer activity (R2): once per quiet period.
CREATE TABLE bugs.escalations (
    bug_id uuid NOT NULL REFERENCES bugs.bugs (id),
    quiet_since timestamptz NOT NULL,
    escalated_at timestamptz NOT NULL DEFAULT now(),
    recipients text[] NOT NULL DEFAULT '{}',
    mailed_at timestamptz,
    PRIMARY KEY (bug_id, quiet_since)
);

-- Events already handled by this service's consumers.
CREATE TABLE bugs.inbox (
    consumer text NOT NULL,
    event_id text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- HTTP `Idempotency-Key`: the first answer per key and caller.
CREATE TABLE bugs.idempotency (
    key text NOT NULL,
    scope text NOT NULL,
    body_hash text NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, scope)
);
