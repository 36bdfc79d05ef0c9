-- R3: breaches of the first-response commitment, kept for reports.
CREATE TABLE dossier.breaches (
    dossier_id uuid PRIMARY KEY,
    reference text NOT NULL,
    software text NOT NULL,
    due timestamptz NOT NULL,
    breached_at timestamptz NOT NULL,
    technician_id uuid
);
CREATE INDEX breaches_at ON dossier.breaches (breached_at);
