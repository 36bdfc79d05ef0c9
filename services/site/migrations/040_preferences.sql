-- A user's saved choices on the site (issue 14): the queue's sort and filters, kept across
-- sessions and devices. `name` says which page; `value` holds its choices.
CREATE TABLE site.preferences (
    user_id uuid NOT NULL,
    name text NOT NULL,
    value jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, name)
);
