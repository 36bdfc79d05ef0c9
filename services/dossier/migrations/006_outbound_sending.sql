-- Mail sent at most once in practice (decision 0015): a row is committed in `sending`, with a
-- lease, before the SMTP transaction and marked `sent` right after it; after a crash only rows
-- still `sending` past their lease are sent again, with the same Message-ID.
ALTER TABLE dossier.outbound_mail
    ADD COLUMN state text NOT NULL DEFAULT 'sent' CHECK (state IN ('sending', 'sent')),
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN attempts int NOT NULL DEFAULT 1,
    ALTER COLUMN sent_at DROP NOT NULL,
    ALTER COLUMN sent_at DROP DEFAULT;
CREATE INDEX outbound_mail_sending ON dossier.outbound_mail (lease_until) WHERE state = 'sending';
