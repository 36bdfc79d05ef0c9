-- Issue 11: one text policy at every boundary. Text stored before it may hold control
-- characters (PostgreSQL text cannot hold NUL, but C0/C1 controls it can) and single-line
-- fields may hold CR/LF, which later block a mail header. Repair them the way the policy
-- cleans mail (assistance/text.py): single-line fields fold line breaks to one space and lose
-- every control character but tab; multi-line text loses every control but tab, LF and CR.
CREATE OR REPLACE FUNCTION pg_temp.clean_line(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT btrim(regexp_replace(
        regexp_replace(value, '[\r\n\u2028\u2029\x85]+', ' ', 'g'),
        '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]', '', 'g'))
$$;
CREATE OR REPLACE FUNCTION pg_temp.clean_text(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(value, '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]', '', 'g')
$$;

UPDATE site.attachments SET filename = coalesce(nullif(pg_temp.clean_line(filename), ''), 'fichier') WHERE filename ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE site.attachments SET uploader_name = pg_temp.clean_line(uploader_name) WHERE uploader_name ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';

UPDATE site.ratings SET comment = pg_temp.clean_text(comment) WHERE comment ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
