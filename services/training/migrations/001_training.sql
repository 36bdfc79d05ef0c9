-- Training (R7, engagement 4): trainers, absences, hand-overs, appointments, client history.
CREATE SCHEMA IF NOT EXISTS training;

-- Trainers are directory users with the trainer role; this is their training profile.
-- name and email are a copy refreshed at each profile update (the directory owns them).
CREATE TABLE training.trainers (
    id uuid PRIMARY KEY,                   -- the directory user id
    name text NOT NULL,
    email text NOT NULL,
    softwares text[] NOT NULL DEFAULT '{}', -- the softwares they teach (directory codes)
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trainers_softwares ON training.trainers USING gin (softwares);

-- Working hours come from the business calendar (R3); absences take time out of them.
CREATE TABLE training.absences (
    id uuid PRIMARY KEY,
    trainer_id uuid NOT NULL REFERENCES training.trainers (id),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (starts_at < ends_at)
);
CREATE INDEX absences_trainer ON training.absences (trainer_id, ends_at);

-- One row per hand-over from a dossier's workflow; the answer is replayed on a retry.
CREATE TABLE training.requests (
    id uuid PRIMARY KEY,
    dossier_id uuid NOT NULL,
    attempt int NOT NULL,
    reference text NOT NULL,
    software text NOT NULL,
    version text,
    organisation_id uuid,
    requester_email text NOT NULL,
    requester_name text NOT NULL,
    subject text NOT NULL,
    description text NOT NULL DEFAULT '',
    context text NOT NULL DEFAULT '',
    need text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('pending', 'booked', 'unavailable', 'cancelled')),
    alternatives jsonb NOT NULL DEFAULT '[]',
    answer jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dossier_id, attempt)           -- idempotent hand-over
);
CREATE INDEX requests_status ON training.requests (status, received_at);

-- uuid -> inet is a bijection (128 bits each): it lets the built-in GiST inet_ops compare
-- trainers for equality where the btree_gist extension is not installed.
CREATE FUNCTION training.trainer_key(id uuid) RETURNS inet
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (substr(h, 1, 4) || ':' || substr(h, 5, 4) || ':' || substr(h, 9, 4) || ':' ||
            substr(h, 13, 4) || ':' || substr(h, 17, 4) || ':' || substr(h, 21, 4) || ':' ||
            substr(h, 25, 4) || ':' || substr(h, 29, 4))::inet
    FROM (SELECT replace(id::text, '-', '') AS h) AS hex
$$;

CREATE TABLE training.appointments (
    id uuid PRIMARY KEY,
    request_id uuid NOT NULL REFERENCES training.requests (id),
    dossier_id uuid NOT NULL,
    trainer_id uuid NOT NULL REFERENCES training.trainers (id),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('booked', 'held', 'missed', 'cancelled')),
    sequence int NOT NULL DEFAULT 0,       -- the ICS SEQUENCE: +1 at each update (RFC 5545)
    link text NOT NULL,                    -- screen-sharing / video room
    brief jsonb NOT NULL,                  -- engagement 4: the personalised brief
    notes text,
    outcome_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (starts_at < ends_at)
);
CREATE INDEX appointments_trainer ON training.appointments (trainer_id, starts_at);
CREATE INDEX appointments_dossier ON training.appointments (dossier_id);
CREATE INDEX appointments_request ON training.appointments (request_id);

-- R7: no trainer is ever booked twice for the same time, even under concurrent bookings.
-- btree_gist where the server has it; else the same rule through the inet key above.
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS btree_gist;
        ALTER TABLE training.appointments ADD CONSTRAINT appointments_no_double_booking
            EXCLUDE USING gist (trainer_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
            WHERE (status <> 'cancelled');
    EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
        ALTER TABLE training.appointments ADD CONSTRAINT appointments_no_double_booking
            EXCLUDE USING gist ((training.trainer_key(trainer_id)) inet_ops WITH =,
                                tstzrange(starts_at, ends_at) WITH &&)
            WHERE (status <> 'cancelled');
    END;
END $$;

-- The client's dossiers, read from the DOSSIER stream (never from the dossier schema).
CREATE TABLE training.client_dossiers (
    dossier_id uuid PRIMARY KEY,
    reference text NOT NULL,
    organisation_id uuid,
    requester_email text,
    software text,
    subject text,
    kind text,
    status text,
    resolution text,
    received_at timestamptz,
    closed_at timestamptz,
    last_seq int NOT NULL DEFAULT 0
);
CREATE INDEX client_dossiers_org ON training.client_dossiers (organisation_id, received_at DESC);
CREATE INDEX client_dossiers_requester ON training.client_dossiers (requester_email);

CREATE TABLE training.idempotency (
    key text NOT NULL,
    scope text NOT NULL,
    body_hash text NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, scope)
);
