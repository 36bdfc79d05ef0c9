-- Follow links (issue 14, decision 0019): revoking a dossier's links records when; links
-- issued before that moment stop working. Mails of links asked for by address, to bound them.
CREATE TABLE dossier.follow_revocations (
    dossier_id uuid PRIMARY KEY,
    revoked_at timestamptz NOT NULL,
    revoked_by uuid
);

CREATE TABLE dossier.follow_link_mails (
    email text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX follow_link_mails_email ON dossier.follow_link_mails (email, sent_at);
