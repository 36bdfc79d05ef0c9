-- Inbound mail (R1): every message is stored raw before the SMTP 250 (or before its IMAP UID is
-- remembered), with its outcome, in one transaction. See docs/decisions/0009-mail-intake.md.

CREATE TABLE intake.mail_messages (
    id uuid PRIMARY KEY,
    dedupe_key text NOT NULL UNIQUE,       -- 'mid:<Message-ID>', or 'sha256:<content hash>'
    message_id text,                       -- as the sender wrote it, '<…>'
    source text NOT NULL CHECK (source IN ('smtp', 'lmtp', 'imap')),
    envelope_from text,                    -- MAIL FROM ('' for the null sender <>)
    envelope_to text[] NOT NULL DEFAULT '{}',
    peer text,
    from_address text,                     -- From, domain lower-cased
    from_name text NOT NULL DEFAULT '',
    subject text NOT NULL DEFAULT '',
    sent_at timestamptz,                   -- the Date header
    received_at timestamptz NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text NOT NULL,
    raw bytea NOT NULL,
    text_body text NOT NULL DEFAULT '',
    html_body text,                        -- sanitised with nh3, for display
    details jsonb NOT NULL DEFAULT '{}',   -- loop markers, defects, delivery report
    outcome text NOT NULL CHECK (outcome IN ('opened', 'joined', 'quarantined')),
    dossier_id uuid,                       -- opened or joined (intake.requests.id)
    reference text,
    threaded_by text CHECK (threaded_by IN ('signed_id', 'subject_token', 'technician')),
    duplicates integer NOT NULL DEFAULT 0  -- later deliveries of the same message
);
CREATE INDEX mail_messages_sender ON intake.mail_messages (lower(from_address), received_at);
CREATE INDEX mail_messages_dossier ON intake.mail_messages (dossier_id);

CREATE TABLE intake.mail_attachments (
    id uuid PRIMARY KEY,
    mail_id uuid NOT NULL REFERENCES intake.mail_messages (id),
    position integer NOT NULL,
    filename text NOT NULL,
    declared_type text NOT NULL,
    sniffed_type text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text NOT NULL,
    content bytea,                         -- NULL when not kept (dropped says why)
    dropped text,
    dangerous boolean NOT NULL,
    inline boolean NOT NULL DEFAULT false,
    content_id text,
    UNIQUE (mail_id, position)
);

-- What could not become a dossier, with its reason; technicians release or discard it.
CREATE TABLE intake.mail_quarantine (
    mail_id uuid PRIMARY KEY REFERENCES intake.mail_messages (id),
    reason text NOT NULL,
    detail text NOT NULL,
    reference text,                        -- the dossier it seems to belong to, if any
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'released', 'discarded')),
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolved_by uuid,
    resolution jsonb
);
CREATE INDEX mail_quarantine_pending ON intake.mail_quarantine (created_at)
    WHERE status = 'pending';

-- One row per delivery answered: received (with its outcome) or rejected at SMTP time.
CREATE TABLE intake.mail_ledger (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL,
    entry text NOT NULL
        CHECK (entry IN ('opened', 'joined', 'quarantined', 'duplicate', 'rejected')),
    mail_id uuid REFERENCES intake.mail_messages (id),
    reason text,
    envelope_from text,
    size_bytes bigint
);
CREATE INDEX mail_ledger_at ON intake.mail_ledger (at);

-- Addresses our mail bounced from (delivery status notifications).
CREATE TABLE intake.mail_bounces (
    address text PRIMARY KEY,              -- lower-cased
    bouncing boolean NOT NULL DEFAULT true,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    count integer NOT NULL DEFAULT 1,
    status text NOT NULL DEFAULT '',
    diagnostic text NOT NULL DEFAULT '',
    reference text,
    last_mail_id uuid REFERENCES intake.mail_messages (id),
    alerted_at timestamptz
);

-- The IMAP poller's place in each mailbox; moves in the transaction that stores the message.
CREATE TABLE intake.imap_state (
    account text NOT NULL,
    folder text NOT NULL,
    uidvalidity bigint NOT NULL,
    last_uid bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, folder)
);
