-- The evolutions service (R9, R11, R12): backlog, weekly reviews, decisions, releases, docs.
CREATE SCHEMA IF NOT EXISTS evolutions;

-- Who decides for a software (R9): the product managers of that software.
CREATE TABLE evolutions.product_managers (
    software text NOT NULL,
    user_id uuid NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (software, user_id)
);

-- One item of the backlog: what the review sees and the product manager decides. Similar
-- requests are grouped into one evolution; a grouped-away evolution points at its target.
CREATE TABLE evolutions.evolutions (
    id uuid PRIMARY KEY,
    software text NOT NULL,
    title text NOT NULL,
    summary text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'merged', 'accepted', 'rejected')),
    merged_into uuid REFERENCES evolutions.evolutions (id),
    created_at timestamptz NOT NULL,
    first_reviewed_at timestamptz,         -- first agenda it was on; NULL: new for the review
    decided_at timestamptz,
    decided_by uuid,
    decided_by_name text,
    reason text,
    specification text,                     -- the « cahier des charges », Markdown
    handed_to text[] NOT NULL DEFAULT '{}', -- the IT project managers who received it
    shipped_version text,
    shipped_at timestamptz,
    CHECK ((status = 'merged') = (merged_into IS NOT NULL))
);
CREATE INDEX evolutions_backlog ON evolutions.evolutions (software, status, created_at);

-- Each hand-over from a dossier (idempotent on dossier and attempt).
CREATE TABLE evolutions.requests (
    id uuid PRIMARY KEY,
    evolution_id uuid NOT NULL REFERENCES evolutions.evolutions (id),
    dossier_id uuid NOT NULL,
    attempt int NOT NULL,
    reference text NOT NULL,
    software text NOT NULL,
    organisation_id uuid,
    organisation_name text,
    requester_email text NOT NULL,
    requester_name text NOT NULL,
    subject text NOT NULL,
    description text NOT NULL,
    context text NOT NULL DEFAULT '',
    need text NOT NULL DEFAULT '',
    version text,
    recorded_at timestamptz NOT NULL,
    UNIQUE (dossier_id, attempt)
);
CREATE INDEX requests_evolution ON evolutions.requests (evolution_id);
CREATE INDEX requests_dossier ON evolutions.requests (dossier_id);

-- One review per software and ISO week (R9); the agenda is kept as it was presented.
CREATE TABLE evolutions.reviews (
    id uuid PRIMARY KEY,
    software text NOT NULL,
    week text NOT NULL,                     -- ISO week in Europe/Paris, e.g. 2026-W12
    held_at timestamptz NOT NULL,
    agenda jsonb NOT NULL,
    notified text[] NOT NULL DEFAULT '{}',
    UNIQUE (software, week)
);

-- Released versions (R11, R12), declared by the software's product manager or their CI.
CREATE TABLE evolutions.releases (
    software text NOT NULL,
    version text NOT NULL,
    notes text NOT NULL DEFAULT '',
    released_at timestamptz NOT NULL,
    released_by uuid,
    body_hash text NOT NULL,                -- the same declaration twice answers the same
    evolution_ids uuid[] NOT NULL DEFAULT '{}',
    notified_requests int NOT NULL DEFAULT 0,
    PRIMARY KEY (software, version)
);
CREATE INDEX releases_by_time ON evolutions.releases (software, released_at);

-- Documentation per software and version (R11), rendered once to sanitised HTML.
CREATE TABLE evolutions.doc_pages (
    software text NOT NULL,
    version text NOT NULL,
    slug text NOT NULL,
    title text NOT NULL,
    markdown text NOT NULL,
    html text NOT NULL,
    published_in text NOT NULL,             -- the version whose release wrote this page
    PRIMARY KEY (software, version, slug),
    FOREIGN KEY (software, version) REFERENCES evolutions.releases (software, version)
);

-- A requester told that their evolution shipped: once per request and version.
CREATE TABLE evolutions.shipments (
    request_id uuid NOT NULL REFERENCES evolutions.requests (id),
    version text NOT NULL,
    notified_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, version)
);

-- Mails handed to the SMTP server, so an outbox row sent twice mails once.
CREATE TABLE evolutions.sent_mail (
    message_id text PRIMARY KEY,
    recipient text NOT NULL,
    purpose text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
