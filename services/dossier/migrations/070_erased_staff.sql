-- A staff member erased (a technician who left; decision 0024): their name, as the author of
-- timeline entries, in the entries' texts (« Pris en charge par … », « suivi jusque-là par … »)
-- and as the dossier's technician, is replaced by the erasure's tombstone, now and in whatever
-- the projection writes later (an event in flight, a rebuild from the streams, a step of a
-- dossier they still held). Their user id finds them as a dossier's technician; as an author
-- only their name does, so a dossier where that name is also a customer's (the requester, a
-- customer of its organisation) is left as it is, and customers' own entries (a deposit, a
-- customer's message) are never touched.

-- The erased staff whose name, in this dossier, is theirs alone; with their tombstone.
CREATE FUNCTION dossier.erased_staff_in(dossier uuid) RETURNS TABLE (name text, tomb text)
LANGUAGE sql STABLE AS $$
    SELECT u.name, audit.tombstone(s.erased_at)
    FROM audit.erased_staff s JOIN directory.users u ON u.id = s.user_id
    WHERE length(u.name) >= 3
      AND NOT EXISTS (
          SELECT 1 FROM dossier.dossiers d
           WHERE d.id = dossier
             AND (d.requester_name = u.name
                  OR EXISTS (SELECT 1 FROM directory.users c
                              WHERE c.role = 'customer' AND c.organisation_id = d.organisation_id
                                AND c.name = u.name)))
$$;

CREATE FUNCTION dossier.staff_authored(kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT kind NOT IN ('received', 'customer_message')
$$;

CREATE FUNCTION dossier.keep_staff_erased_in_entry() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erased record;
BEGIN
    IF dossier.staff_authored(NEW.kind) AND EXISTS (SELECT 1 FROM audit.erased_staff) THEN
        FOR erased IN SELECT * FROM dossier.erased_staff_in(NEW.dossier_id) LOOP
            IF NEW.author = erased.name THEN
                NEW.author := erased.tomb;
            END IF;
            NEW.text := replace(NEW.text, erased.name, erased.tomb);
        END LOOP;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER timeline_keeps_staff_erased BEFORE INSERT ON dossier.timeline
    FOR EACH ROW EXECUTE FUNCTION dossier.keep_staff_erased_in_entry();

CREATE FUNCTION dossier.keep_staff_erased_as_technician() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tomb text;
BEGIN
    SELECT audit.tombstone(erased_at) INTO tomb
      FROM audit.erased_staff WHERE user_id = NEW.technician_id;
    IF tomb IS NOT NULL THEN
        NEW.technician_name := tomb;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER dossiers_keep_staff_erased BEFORE INSERT OR UPDATE ON dossier.dossiers
    FOR EACH ROW WHEN (NEW.technician_id IS NOT NULL)
    EXECUTE FUNCTION dossier.keep_staff_erased_as_technician();

-- The erasure itself: what is already written about this staff member. How many rows.
CREATE FUNCTION dossier.erase_staff_names(staff uuid) RETURNS TABLE (changed_entries bigint, changed_dossiers bigint)
LANGUAGE plpgsql AS $$
DECLARE
    who record;
BEGIN
    SELECT u.name, audit.tombstone(s.erased_at) AS tomb INTO who
      FROM audit.erased_staff s JOIN directory.users u ON u.id = s.user_id
     WHERE s.user_id = staff;
    IF NOT FOUND OR length(who.name) < 3 THEN
        changed_entries := 0;
        changed_dossiers := 0;
        RETURN NEXT;
        RETURN;
    END IF;
    WITH changed AS (
        UPDATE dossier.timeline t
           SET author = CASE WHEN t.author = who.name THEN who.tomb ELSE t.author END,
               text = replace(t.text, who.name, who.tomb)
         WHERE dossier.staff_authored(t.kind)
           AND (t.author = who.name OR strpos(t.text, who.name) > 0)
           AND EXISTS (SELECT 1 FROM dossier.erased_staff_in(t.dossier_id) e
                        WHERE e.name = who.name)
        RETURNING 1)
    SELECT count(*) INTO changed_entries FROM changed;
    WITH changed AS (
        UPDATE dossier.dossiers SET technician_name = who.tomb
         WHERE technician_id = staff AND technician_name IS DISTINCT FROM who.tomb
        RETURNING 1)
    SELECT count(*) INTO changed_dossiers FROM changed;
    RETURN NEXT;
END
$$;
