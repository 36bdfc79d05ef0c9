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

UPDATE evolutions.evolutions SET title = pg_temp.clean_line(title) WHERE title ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE evolutions.evolutions SET summary = pg_temp.clean_text(summary) WHERE summary ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE evolutions.evolutions SET reason = pg_temp.clean_text(reason) WHERE reason ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE evolutions.evolutions SET specification = pg_temp.clean_text(specification) WHERE specification ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE evolutions.requests SET requester_name = pg_temp.clean_line(requester_name) WHERE requester_name ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE evolutions.requests SET subject = pg_temp.clean_line(subject) WHERE subject ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE evolutions.requests SET version = pg_temp.clean_line(version) WHERE version ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE evolutions.requests SET description = pg_temp.clean_text(description) WHERE description ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE evolutions.requests SET context = pg_temp.clean_text(context) WHERE context ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE evolutions.requests SET need = pg_temp.clean_text(need) WHERE need ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE evolutions.releases SET notes = pg_temp.clean_text(notes) WHERE notes ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE evolutions.doc_pages SET title = pg_temp.clean_line(title) WHERE title ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE evolutions.doc_pages SET markdown = pg_temp.clean_text(markdown) WHERE markdown ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
