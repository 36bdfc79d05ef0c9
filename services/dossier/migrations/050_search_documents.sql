-- Issue 14, search across texts (R10, docs/decisions/0023): the words of a query may come from
-- different texts of one dossier (« paie export »: `paie` in the subject, `export` in a reply).
-- Each dossier has one search document per audience, maintained by triggers from the vectors
-- migration 030 stores (the dossier's own, each timeline entry's) and its organisation's name:
--   customer: the dossier's own texts, its organisation, the timeline entries a customer reads;
--   staff:    the same and every internal entry.
-- A search reads one GIN index (the caller's audience) and matches the whole query against one
-- document: a customer's search never matches through an internal note.

CREATE AGGREGATE dossier.tsvector_agg(tsvector) (
    SFUNC = pg_catalog.tsvector_concat, STYPE = tsvector, INITCOND = ''
);

CREATE TABLE dossier.search_documents (
    dossier_id uuid PRIMARY KEY REFERENCES dossier.dossiers (id) ON DELETE CASCADE,
    customer tsvector NOT NULL,
    staff tsvector NOT NULL
);
CREATE INDEX search_documents_customer ON dossier.search_documents USING gin (customer);
CREATE INDEX search_documents_staff ON dossier.search_documents USING gin (staff);

-- One audience's document of a dossier: its own vector (reference and subject A, description
-- and requester B, resolution C), its organisation's name and the timeline texts (D), in
-- timeline order. A tsvector holds at most 1 MB: past it (a dossier of very long texts), the
-- timeline's words only (positions dropped), texts in order, as many as fit; never an error,
-- so no projection ever fails on a document.
CREATE FUNCTION dossier.search_document(dossier uuid, staff boolean) RETURNS tsvector
LANGUAGE plpgsql STABLE AS $$
DECLARE
    own tsvector;
    doc tsvector;
    entry tsvector;
BEGIN
    SELECT d.search || coalesce(to_tsvector('dossier.fr', dossier.fold(o.name)), '') INTO own
      FROM dossier.dossiers d LEFT JOIN directory.organisations o ON o.id = d.organisation_id
     WHERE d.id = dossier;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    BEGIN
        RETURN own || coalesce((
            SELECT dossier.tsvector_agg(t.search ORDER BY t.seq, t.at, t.event_id)
              FROM dossier.timeline t
             WHERE t.dossier_id = dossier AND (staff OR t.visibility = 'customer')), '');
    EXCEPTION WHEN program_limit_exceeded THEN
        doc := own;
        FOR entry IN
            SELECT strip(t.search) FROM dossier.timeline t
             WHERE t.dossier_id = dossier AND (staff OR t.visibility = 'customer')
             ORDER BY t.seq, t.at, t.event_id
        LOOP
            BEGIN
                doc := doc || entry;
            EXCEPTION WHEN program_limit_exceeded THEN
                RETURN doc;
            END;
        END LOOP;
        RETURN doc;
    END;
END
$$;

-- Rewrite the documents of these dossiers. Each dossier's row is locked first, so two
-- transactions writing one dossier's texts compute its document one after the other, each
-- from what the other committed (a statement's snapshot is taken after the lock).
CREATE FUNCTION dossier.refresh_search(ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM dossier.dossiers WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
    INSERT INTO dossier.search_documents (dossier_id, customer, staff)
    SELECT id, dossier.search_document(id, false), dossier.search_document(id, true)
      FROM dossier.dossiers WHERE id = ANY(ids)
    ON CONFLICT (dossier_id) DO UPDATE
        SET customer = excluded.customer, staff = excluded.staff;
END
$$;

-- Statement triggers: one refresh per dossier a statement touched (an erasure rewriting the
-- timeline of many dossiers refreshes each once).
CREATE FUNCTION dossier.timeline_searched() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dossier.refresh_search(array_agg(DISTINCT dossier_id)) FROM changed;
    RETURN NULL;
END
$$;
CREATE TRIGGER timeline_added_searched AFTER INSERT ON dossier.timeline
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION dossier.timeline_searched();
CREATE TRIGGER timeline_changed_searched AFTER UPDATE ON dossier.timeline
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION dossier.timeline_searched();
CREATE TRIGGER timeline_removed_searched AFTER DELETE ON dossier.timeline
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION dossier.timeline_searched();

CREATE FUNCTION dossier.dossiers_added_searched() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dossier.refresh_search(array_agg(id)) FROM added;
    RETURN NULL;
END
$$;
CREATE TRIGGER dossiers_added_searched AFTER INSERT ON dossier.dossiers
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION dossier.dossiers_added_searched();

-- Most updates (status, step counter, technician) change no searched word: only a changed own
-- vector or organisation rewrites the document.
CREATE FUNCTION dossier.dossiers_changed_searched() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dossier.refresh_search(array_agg(n.id))
       FROM after_update n JOIN before_update o ON o.id = n.id
      WHERE n.search IS DISTINCT FROM o.search
         OR n.organisation_id IS DISTINCT FROM o.organisation_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER dossiers_changed_searched AFTER UPDATE ON dossier.dossiers
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update FOR EACH STATEMENT
    EXECUTE FUNCTION dossier.dossiers_changed_searched();

-- A renamed organisation is found by its new name at once.
CREATE FUNCTION dossier.organisations_renamed_searched() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dossier.refresh_search(array_agg(d.id))
       FROM after_update n JOIN before_update o ON o.id = n.id
       JOIN dossier.dossiers d ON d.organisation_id = n.id
      WHERE n.name IS DISTINCT FROM o.name;
    RETURN NULL;
END
$$;
CREATE TRIGGER organisations_renamed_searched AFTER UPDATE ON directory.organisations
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update FOR EACH STATEMENT
    EXECUTE FUNCTION dossier.organisations_renamed_searched();

-- The per-text indexes are no longer read by any search (their vectors feed the documents).
DROP INDEX dossier.dossiers_search;
DROP INDEX dossier.timeline_search;

SELECT dossier.refresh_search(array_agg(id)) FROM dossier.dossiers;
