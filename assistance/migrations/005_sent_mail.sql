-- Outgoing mail sent at most once in practice (decision 0015): one row per Message-ID,
-- committed in `sending` with a lease before the SMTP transaction, `sent` right after it.
-- Shared by the services whose mail goes through the outbox (a source column, like bus.outbox);
-- the dossier service keeps its own dossier.outbound_mail with the same columns.
CREATE TABLE bus.sent_mail (
    message_id text PRIMARY KEY,
    source text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL DEFAULT '',
    state text NOT NULL CHECK (state IN ('sending', 'sent')),
    lease_until timestamptz,
    attempts int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX sent_mail_sending ON bus.sent_mail (lease_until) WHERE state = 'sending';
