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

UPDATE intake.requests SET requester_name = pg_temp.clean_line(requester_name) WHERE requester_name ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE intake.requests SET software = pg_temp.clean_line(software) WHERE software ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE intake.requests SET subject = pg_temp.clean_line(subject) WHERE subject ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE intake.requests SET caller_phone = pg_temp.clean_line(caller_phone) WHERE caller_phone ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE intake.requests SET description = pg_temp.clean_text(description) WHERE description ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE intake.mail_messages SET from_name = pg_temp.clean_line(from_name) WHERE from_name ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE intake.mail_messages SET subject = pg_temp.clean_line(subject) WHERE subject ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE intake.mail_messages SET text_body = pg_temp.clean_text(text_body) WHERE text_body ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE intake.mail_messages SET html_body = pg_temp.clean_text(html_body) WHERE html_body ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE intake.mail_attachments SET filename = pg_temp.clean_line(filename) WHERE filename ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
