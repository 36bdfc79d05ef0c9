-- Outbound mail (R2, R3, R10): what was sent, so a retried step never mails twice.
CREATE SCHEMA IF NOT EXISTS dossier;

-- One row per mail handed to the SMTP server; the signed Message-ID names the dossier and step.
CREATE TABLE dossier.outbound_mail (
    message_id text PRIMARY KEY,
    dossier_id uuid NOT NULL,
    step int NOT NULL,
    template text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbound_mail_dossier ON dossier.outbound_mail (dossier_id, step);

-- Warnings, reminders and escalations to staff (R2, R3); recipients are fixed at the first try.
CREATE TABLE dossier.staff_notices (
    id bigserial PRIMARY KEY,
    dossier_id uuid NOT NULL,
    step int NOT NULL,
    kind text NOT NULL,
    audience text NOT NULL CHECK (audience IN ('technician', 'team', 'admins', 'training_lead')),
    recipients text[] NOT NULL,
    subject text NOT NULL,
    text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dossier_id, step)
);
CREATE INDEX staff_notices_kind ON dossier.staff_notices (kind, created_at);
