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

UPDATE dossier.dossiers SET subject = pg_temp.clean_line(subject) WHERE subject ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE dossier.dossiers SET software = pg_temp.clean_line(software) WHERE software ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE dossier.dossiers SET requester_name = pg_temp.clean_line(requester_name) WHERE requester_name ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE dossier.dossiers SET technician_name = pg_temp.clean_line(technician_name) WHERE technician_name ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE dossier.dossiers SET description = pg_temp.clean_text(description) WHERE description ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE dossier.dossiers SET resolution = pg_temp.clean_text(resolution) WHERE resolution ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE dossier.timeline SET author = pg_temp.clean_line(author) WHERE author ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE dossier.timeline SET text = pg_temp.clean_text(text) WHERE text ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE dossier.outbound_mail SET subject = pg_temp.clean_line(subject) WHERE subject ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';

UPDATE dossier.staff_notices SET subject = pg_temp.clean_line(subject) WHERE subject ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE dossier.staff_notices SET text = pg_temp.clean_text(text) WHERE text ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
