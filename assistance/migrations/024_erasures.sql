-- RGPD erasure and retention (issue 13 item 5, decision 0024): one row per dossier whose
-- personal data was replaced by a tombstone, by an administrator's request or by retention.
-- Temporal's history and the NATS streams are cleaned after the transaction; until then the
-- row says what is left, and the daily retention run finishes it.
CREATE TABLE audit.erasures (
    dossier_id uuid PRIMARY KEY,
    cause text NOT NULL CHECK (cause IN ('request', 'retention')),
    erased_at timestamptz NOT NULL DEFAULT now(),
    history_deleted_at timestamptz,         -- Temporal executions deleted (closed dossiers)
    streams_purged_at timestamptz           -- NATS messages naming the dossier deleted
);
CREATE INDEX erasures_pending ON audit.erasures (erased_at)
    WHERE history_deleted_at IS NULL OR streams_purged_at IS NULL;
