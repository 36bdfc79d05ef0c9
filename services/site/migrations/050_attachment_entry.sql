-- Issue 14: a file posted with a message is shown under that message. `entry_at` is the time
-- of the timeline entry its form wrote (read from the dossier API's answer); empty when that
-- answer was not there yet (a pending command) or for files stored before this column, which
-- the pages place by their uploader and time.
ALTER TABLE site.attachments ADD COLUMN entry_at timestamptz;
