-- A file sent with a form is stored once, however often that form is sent (a double click, the
-- browser sending it again, a reload after a lost answer): each row keeps the key of the form's
-- submission, and the same file under the same name is not added twice for one submission
-- (docs/decisions/0012). Rows stored before, and files sent without a key, keep NULL: never
-- taken for twins.
ALTER TABLE site.attachments
    ADD COLUMN submission text CHECK (length(submission) BETWEEN 1 AND 200);
CREATE UNIQUE INDEX attachments_once
    ON site.attachments (dossier_id, submission, sha256, filename);
