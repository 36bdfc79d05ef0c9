-- The erasure's tombstone, worded in one place (decision 0024): the text an erasure writes
-- (services/operations/erasure.py reads it from here) and the text the dossier projection
-- writes later for an erased dossier (dossier.erased_tombstone) are the same function of the
-- erasure's moment, shown as its Paris date.
CREATE FUNCTION audit.tombstone(erased_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT 'Personne effacée le ' || to_char(erased_at AT TIME ZONE 'Europe/Paris', 'DD/MM/YYYY')
$$;
