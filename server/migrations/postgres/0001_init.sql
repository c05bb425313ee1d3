-- Instants are microseconds since the Unix epoch (UTC); booleans are 0/1.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    quiet_start_min BIGINT,
    quiet_end_min BIGINT,
    receipts_enabled BIGINT NOT NULL DEFAULT 1,
    couple_id TEXT,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX accounts_couple ON accounts (couple_id);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    kind BIGINT NOT NULL,
    platform BIGINT NOT NULL,
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    next_seq BIGINT NOT NULL DEFAULT 0,
    acked_seq BIGINT NOT NULL DEFAULT 0,
    created_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE INDEX devices_account ON devices (account_id);

CREATE TABLE couples (
    id TEXT PRIMARY KEY,
    account_a TEXT NOT NULL REFERENCES accounts (id),
    account_b TEXT NOT NULL REFERENCES accounts (id),
    created_at_us BIGINT NOT NULL,
    ended_at_us BIGINT,
    ended_by TEXT
);

-- Invite and device-link codes, stored hashed.
CREATE TABLE codes (
    code_hash BYTEA PRIMARY KEY,
    purpose TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    used_at_us BIGINT
);

CREATE TABLE taps (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    sender_account_id TEXT NOT NULL REFERENCES accounts (id),
    sender_device_id TEXT NOT NULL REFERENCES devices (id),
    client_tap_id TEXT NOT NULL,
    kind BIGINT NOT NULL,
    rhythm BYTEA,
    note TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    UNIQUE (sender_device_id, client_tap_id)
);

CREATE TABLE tap_receipts (
    tap_id TEXT NOT NULL REFERENCES taps (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    kind BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (tap_id, account_id, kind)
);

-- The durable per-device inbox: one row per recipient device, numbered without gaps.
CREATE TABLE inbox (
    device_id TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq)
);
