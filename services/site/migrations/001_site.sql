-- The site's own facts: satisfaction at closure, and files attached on the site.
CREATE SCHEMA IF NOT EXISTS site;

-- One rating per closure of a dossier (a reopened and closed again dossier is rated again).
CREATE TABLE site.ratings (
    dossier_id uuid NOT NULL,
    closed_at timestamptz NOT NULL,
    reference text NOT NULL,
    software text NOT NULL,
    organisation_id uuid,
    score smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment text NOT NULL DEFAULT '' CHECK (length(comment) <= 5000),
    rated_by uuid NOT NULL,
    rated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dossier_id, closed_at)
);
CREATE INDEX ratings_at ON site.ratings (rated_at);

-- Files attached to a dossier on the site. Always served as downloads, never rendered; the
-- declared type is kept for information only.
CREATE TABLE site.attachments (
    id uuid PRIMARY KEY,
    dossier_id uuid NOT NULL,
    filename text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    declared_type text NOT NULL DEFAULT '',
    size int NOT NULL CHECK (size >= 0),
    sha256 bytea NOT NULL,
    content bytea NOT NULL,
    uploaded_by uuid,                       -- NULL: an anonymous deposit
    uploader_name text NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_dossier ON site.attachments (dossier_id, uploaded_at);
