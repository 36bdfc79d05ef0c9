-- What administrators did about a workflow that failed, was terminated or timed out
-- (docs/decisions/0013, issue 11 item 6): one row per run, like a parked item's state. `retried`:
-- the run was reset to its last completed workflow task (`new_run_id` is the run the reset
-- started); `discarded`: acknowledged after a repair by hand. A run with a row leaves the
-- « travail bloqué » list; a later run that stops again is listed again (its own run id).
CREATE TABLE bus.workflow_actions (
    workflow_id text NOT NULL,
    run_id text NOT NULL,
    workflow_type text NOT NULL,
    dossier_id uuid,
    status text NOT NULL,                    -- how the run ended, as shown: échoué, arrêté, expiré
    state text NOT NULL CHECK (state IN ('retried', 'discarded')),
    new_run_id text,
    acted_by text NOT NULL,
    acted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, run_id)
);
CREATE INDEX workflow_actions_dossier ON bus.workflow_actions (dossier_id)
    WHERE dossier_id IS NOT NULL;
