-- An erased dossier's tombstone is the erasure's own (decision 0024): `audit.tombstone` of the
-- moment the erasure recorded, the function the erasure itself reads its text from.
CREATE OR REPLACE FUNCTION dossier.erased_tombstone(dossier uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT audit.tombstone(erased_at) FROM audit.erasures WHERE dossier_id = dossier
$$;
