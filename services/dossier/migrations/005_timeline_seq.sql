-- The timeline follows the workflow's sequence numbers: step 10 never shows before step 9
-- (docs/decisions/0013). Intake's `received` entry is step 0; an entry that is no workflow
-- step (an administrator's action on parked work) takes the dossier's step at that moment.
ALTER TABLE dossier.timeline ADD COLUMN seq bigint;
UPDATE dossier.timeline SET seq = CASE
    WHEN event_id ~ ':[0-9]+$' THEN substring(event_id FROM ':([0-9]+)$')::bigint
    WHEN kind = 'received' THEN 0
END;
UPDATE dossier.timeline t SET seq = d.last_seq
    FROM dossier.dossiers d WHERE t.seq IS NULL AND d.id = t.dossier_id;
UPDATE dossier.timeline SET seq = 0 WHERE seq IS NULL;
ALTER TABLE dossier.timeline ALTER COLUMN seq SET NOT NULL;
DROP INDEX dossier.timeline_dossier;
CREATE INDEX timeline_dossier ON dossier.timeline (dossier_id, seq, at, event_id);
