-- Staff members erased (issue 13, decision 0024): their directory entry stays (the centre's),
-- their name leaves the dossiers' timelines, and stays out of what the dossier projection
-- writes later (services/dossier/migrations/070_erased_staff.sql).
CREATE TABLE audit.erased_staff (
    user_id uuid PRIMARY KEY REFERENCES directory.users (id),
    erased_at timestamptz NOT NULL
);
