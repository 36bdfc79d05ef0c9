-- A token may expire (a site session's token lives as long as the session: issue 13).
ALTER TABLE directory.tokens ADD COLUMN expires_at timestamptz;
