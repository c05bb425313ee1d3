-- Moments: a partner's note or answer kept by the other, its words copied so that it outlasts
-- the retention of the tap or check-in it came from.
CREATE TABLE moments (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    kept_by TEXT NOT NULL,
    author TEXT NOT NULL,
    -- pb::MomentKind value.
    kind BIGINT NOT NULL,
    text TEXT NOT NULL,
    prompt_text TEXT NOT NULL,
    -- The tap or check-in it came from.
    source_id TEXT NOT NULL,
    happened_at_us BIGINT NOT NULL,
    kept_at_us BIGINT NOT NULL,
    UNIQUE (couple_id, kept_by, source_id)
);
CREATE INDEX moments_of_couple ON moments (couple_id, kept_at_us, id);

-- When each account's weekly recap comes: weekday 1 (Monday) to 7 and the local minute of the
-- day; the next delivery and the local date it ends on; the local date the latest one ended on.
CREATE TABLE recap_schedules (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    weekday BIGINT NOT NULL,
    minute BIGINT NOT NULL,
    next_due_us BIGINT,
    next_day TEXT,
    last_day TEXT
);
CREATE INDEX recap_due ON recap_schedules (next_due_us) WHERE next_due_us IS NOT NULL;

-- A recap counts a couple's taps of one week.
CREATE INDEX taps_of_couple ON taps (couple_id, created_at_us);
