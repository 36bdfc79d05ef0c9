-- Sign-in by mail: a single-use link, valid a short time; only its hash is kept.
CREATE TABLE site.sign_in_links (
    link_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX sign_in_links_user ON site.sign_in_links (user_id, created_at);
