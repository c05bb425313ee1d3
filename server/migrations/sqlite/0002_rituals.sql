-- Streaks, check-ins and routines. Dates are local calendar dates as 'YYYY-MM-DD'.

-- Each account's zones over time (for "which local dates did they live").
CREATE TABLE zone_history (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    from_us BIGINT NOT NULL,
    zone TEXT NOT NULL,
    PRIMARY KEY (account_id, from_us)
);
INSERT INTO zone_history (account_id, from_us, zone) SELECT id, created_at_us, time_zone FROM accounts;

-- One row per couple; side A is couples.account_a.
CREATE TABLE couple_streaks (
    couple_id TEXT PRIMARY KEY REFERENCES couples (id),
    first_day TEXT NOT NULL,
    settled_through TEXT NOT NULL,
    current_days BIGINT NOT NULL,
    longest_days BIGINT NOT NULL,
    freezes BIGINT NOT NULL,
    calm BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE streak_days (
    couple_id TEXT NOT NULL REFERENCES couples (id),
    day TEXT NOT NULL,
    actions_a BIGINT NOT NULL,
    actions_b BIGINT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (couple_id, day)
);

CREATE TABLE streak_pauses (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    from_day TEXT NOT NULL,
    to_day TEXT NOT NULL,
    by_account TEXT NOT NULL REFERENCES accounts (id),
    created_at_us BIGINT NOT NULL,
    cancelled BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX streak_pauses_couple ON streak_pauses (couple_id);

CREATE TABLE checkins (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    prompt_id TEXT NOT NULL,
    routine_id TEXT,
    opened_by TEXT,
    client_id TEXT,
    opened_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    phase TEXT NOT NULL,
    answer_a BLOB,
    answer_b BLOB,
    UNIQUE (opened_by, client_id)
);
CREATE INDEX checkins_couple ON checkins (couple_id, opened_at_us);
CREATE INDEX checkins_due ON checkins (phase, expires_at_us);

CREATE TABLE routines (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    spec BLOB NOT NULL,
    created_by TEXT NOT NULL REFERENCES accounts (id),
    created_at_us BIGINT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX routines_couple ON routines (couple_id);

-- The next firing of each routine for each partner: `nominal_us` is the local time it is due,
-- `deliver_us` the same moved past quiet hours. Claimed by compare-and-set on nominal_us.
CREATE TABLE routine_schedules (
    routine_id TEXT NOT NULL REFERENCES routines (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    nominal_us BIGINT NOT NULL,
    deliver_us BIGINT NOT NULL,
    PRIMARY KEY (routine_id, account_id)
);
CREATE INDEX routine_schedules_due ON routine_schedules (deliver_us);

-- Every firing, or skip, exactly once.
CREATE TABLE routine_firings (
    routine_id TEXT NOT NULL REFERENCES routines (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    scheduled_us BIGINT NOT NULL,
    fired_at_us BIGINT,
    skipped BIGINT NOT NULL,
    checkin_id TEXT,
    PRIMARY KEY (routine_id, account_id, scheduled_us)
);
CREATE INDEX routine_firings_checkin ON routine_firings (checkin_id);
