-- An erased dossier stays erased (RGPD, docs/decisions/0024): an event still in flight when the
-- erasure ran (a deposit's `received`, a step's entry) is projected after it with the person's
-- data. Whatever the projection writes later for a dossier listed in audit.erasures gets the
-- same tombstone as the erasure wrote (« Personne effacée le JJ/MM/AAAA », Paris time).

CREATE FUNCTION dossier.erased_tombstone(dossier uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'Personne effacée le '
           || to_char(erased_at AT TIME ZONE 'Europe/Paris', 'DD/MM/YYYY')
    FROM audit.erasures WHERE dossier_id = dossier
$$;

CREATE FUNCTION dossier.keep_dossier_erased() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tomb text := dossier.erased_tombstone(NEW.id);
BEGIN
    IF tomb IS NOT NULL THEN
        NEW.requester_email := '';
        NEW.requester_name := tomb;
        NEW.subject := tomb;
        NEW.description := tomb;
        IF NEW.resolution IS NOT NULL THEN
            NEW.resolution := tomb;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER dossiers_stay_erased BEFORE INSERT OR UPDATE ON dossier.dossiers
    FOR EACH ROW EXECUTE FUNCTION dossier.keep_dossier_erased();

CREATE FUNCTION dossier.keep_entry_erased() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tomb text := dossier.erased_tombstone(NEW.dossier_id);
BEGIN
    IF tomb IS NOT NULL THEN
        IF NEW.text <> '' THEN
            NEW.text := tomb;
        END IF;
        IF NEW.author IS NOT NULL THEN
            NEW.author := tomb;
        END IF;
        NEW.data := '{}'::jsonb;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER timeline_stays_erased BEFORE INSERT ON dossier.timeline
    FOR EACH ROW EXECUTE FUNCTION dossier.keep_entry_erased();
