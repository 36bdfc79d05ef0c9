-- Site sessions held server-side (issue 13): the cookie carries only a random session id;
-- its hash is the key here. The API token the site uses for the session is derived from the
-- id with the server's secret and lives in directory.tokens (revoked with the session).
CREATE TABLE site.sessions (
    id_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL DEFAULT now(),
    client_address text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    revoked_at timestamptz
);
CREATE INDEX sessions_user ON site.sessions (user_id, created_at);

-- Every sign-in attempt (token form, mail link request), for the rate limits.
CREATE TABLE site.sign_in_attempts (
    key text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_attempts_key ON site.sign_in_attempts (key, at);
