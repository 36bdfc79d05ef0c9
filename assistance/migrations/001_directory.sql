-- The directory: organisations, users, roles, API tokens, softwares and their versions.
CREATE SCHEMA IF NOT EXISTS directory;

CREATE TABLE directory.organisations (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    -- mail domains that identify the organisation's people (R1: matching requesters)
    email_domains text[] NOT NULL DEFAULT '{}',
    context text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE directory.users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('customer', 'technician', 'trainer', 'developer',
                                       'product_manager', 'project_manager', 'admin')),
    organisation_id uuid REFERENCES directory.organisations (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'customer' OR organisation_id IS NOT NULL)
);

CREATE TABLE directory.tokens (
    token_hash bytea PRIMARY KEY,          -- sha256 of the token; the token itself is never stored
    user_id uuid NOT NULL REFERENCES directory.users (id),
    label text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE directory.softwares (
    code text PRIMARY KEY,                 -- e.g. 'manao-compta'
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE directory.software_versions (
    software text NOT NULL REFERENCES directory.softwares (code),
    version text NOT NULL,
    released_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (software, version)
);
