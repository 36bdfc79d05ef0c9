-- Attempts counted for the rate limits (assistance/rate_limits.py): sign-ins, links mailed.
CREATE TABLE web.attempts (
    key text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_key ON web.attempts (key, at);
