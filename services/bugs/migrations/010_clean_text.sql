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

UPDATE bugs.bugs SET title = pg_temp.clean_line(title) WHERE title ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE bugs.bugs SET change_reference = pg_temp.clean_line(change_reference) WHERE change_reference ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE bugs.bugs SET fix_version = pg_temp.clean_line(fix_version) WHERE fix_version ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE bugs.bugs SET description = pg_temp.clean_text(description) WHERE description ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE bugs.bugs SET reproduction_steps = pg_temp.clean_text(reproduction_steps) WHERE reproduction_steps ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE bugs.bugs SET environment = pg_temp.clean_text(environment) WHERE environment ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE bugs.bugs SET questions = pg_temp.clean_text(questions) WHERE questions ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE bugs.bugs SET diagnosis = pg_temp.clean_text(diagnosis) WHERE diagnosis ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE bugs.bugs SET fix_notes = pg_temp.clean_text(fix_notes) WHERE fix_notes ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE bugs.workarounds SET subject = pg_temp.clean_line(subject) WHERE subject ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\r\n\u2028\u2029]';
UPDATE bugs.workarounds SET text = pg_temp.clean_text(text) WHERE text ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
UPDATE bugs.workarounds SET none_reason = pg_temp.clean_text(none_reason) WHERE none_reason ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';

UPDATE bugs.answers SET text = pg_temp.clean_text(text) WHERE text ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]';
