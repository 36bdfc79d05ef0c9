-- Issue 14, search (R10, decision 0022): accent- and case-insensitive French full-text search
-- over a dossier's own fields, its requester, and every timeline text (each with its own
-- vector and GIN index, read by the visibility of the caller's role).
--
-- Accents: `dossier.fold` folds the letters of French and the other Western European languages
-- (é → e, œ → oe…) in plain SQL, so the search behaves the same on every PostgreSQL, the
-- embedded one of `make run` and the tests included (its wheel ships no contrib module). Where
-- the server has the `unaccent` extension (contrib: Debian's postgresql package, every managed
-- PostgreSQL), it is created and put before `french_stem` in `dossier.fr` for the remaining
-- letters (ł, ş, ğ…). Both sides of a match, stored text and query, go through the same path.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS unaccent;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'unaccent not created (no privilege): dossier.fold alone folds accents';
        END;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION dossier.fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT replace(replace(replace(replace(replace(translate(coalesce(value, ''),
        'ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŸ’',
        'AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyyY'''),
        'Œ', 'OE'), 'œ', 'oe'), 'Æ', 'AE'), 'æ', 'ae'), 'ß', 'ss')
$$;

CREATE TEXT SEARCH CONFIGURATION dossier.fr (COPY = pg_catalog.french);
DO $$
DECLARE
    unaccent_dict record;
BEGIN
    SELECT n.nspname, d.dictname INTO unaccent_dict
    FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace
    JOIN pg_ts_template t ON t.oid = d.dicttemplate
    WHERE d.dictname = 'unaccent' AND t.tmplname = 'unaccent'
    LIMIT 1;
    IF FOUND THEN
        EXECUTE format(
            'ALTER TEXT SEARCH CONFIGURATION dossier.fr ALTER MAPPING FOR hword, hword_part, word '
            'WITH %I.%I, french_stem', unaccent_dict.nspname, unaccent_dict.dictname);
    END IF;
END $$;

-- The dossier's own vector, rebuilt: reference and subject first, then the description and
-- the requester (name, address, and the address's parts), then the resolution.
ALTER TABLE dossier.dossiers DROP COLUMN search;
ALTER TABLE dossier.dossiers ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('dossier.fr', dossier.fold(reference || ' ' || subject)), 'A') ||
    setweight(to_tsvector('dossier.fr', dossier.fold(description)), 'B') ||
    setweight(to_tsvector('dossier.fr', dossier.fold(
        requester_name || ' ' || requester_email || ' ' || translate(requester_email, '@.', '  ')
    )), 'B') ||
    setweight(to_tsvector('dossier.fr', dossier.fold(resolution)), 'C')
) STORED;
CREATE INDEX dossiers_search ON dossier.dossiers USING gin (search);

-- Every timeline text: customer replies, responses, diagnoses, notes. Read with the entry's
-- visibility: a customer never finds a dossier through an internal note.
ALTER TABLE dossier.timeline ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('dossier.fr', dossier.fold(text))
) STORED;
CREATE INDEX timeline_search ON dossier.timeline USING gin (search);

-- The filters of the list and the queue (issue 14): by technician and by software.
CREATE INDEX dossiers_technician ON dossier.dossiers (technician_id, received_at DESC);
CREATE INDEX dossiers_software ON dossier.dossiers (software, received_at DESC);
