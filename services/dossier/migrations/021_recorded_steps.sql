-- One row per step of a dossier recorded to the outbox (decision 0022): the activity that
-- writes a step's events, mails and notices in one transaction records its key here in the
-- same transaction, so a retry after a lost answer writes nothing twice and answers the same
-- Message-IDs.
CREATE TABLE dossier.recorded_steps (
    dossier_id uuid NOT NULL,
    step int NOT NULL,
    message_ids text[] NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dossier_id, step)
);
