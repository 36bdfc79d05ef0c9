-- The queue's order in SQL (R4, issue 15): whether a dossier was deposited during a weekend
-- closure, worked out once from the business calendar (services/dossier/domain.py) by the
-- first read of the queue that finds it missing; NULL until then. The open dossiers are read
-- in the queue's order from this index, a page at a time.
ALTER TABLE dossier.dossiers ADD COLUMN IF NOT EXISTS weekend_deposit boolean;

CREATE INDEX IF NOT EXISTS dossiers_queue_order
    ON dossier.dossiers ((weekend_deposit IS NOT TRUE), received_at, reference)
    WHERE status <> 'closed';
