-- Together time (proposed by one partner, confirmed by the other) and the couple's next
-- meeting. While together time is in force, taps between the two are kept in
-- together_held_taps and delivered quietly when it ends.
CREATE TABLE together (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    started_by TEXT NOT NULL,
    client_id TEXT NOT NULL,
    proposed_at_us BIGINT NOT NULL,
    confirmed_at_us BIGINT,
    -- While proposed: when the proposal lapses; once confirmed: when it ends by itself.
    until_us BIGINT NOT NULL,
    minutes BIGINT NOT NULL,
    ended_at_us BIGINT,
    end_kind BIGINT NOT NULL DEFAULT 0,
    ended_by TEXT,
    meeting_id TEXT,
    UNIQUE (started_by, client_id)
);
-- At most one together time proposed or in force per couple.
CREATE UNIQUE INDEX together_open ON together (couple_id) WHERE ended_at_us IS NULL;
CREATE INDEX together_due ON together (until_us) WHERE ended_at_us IS NULL;
CREATE INDEX together_of_couple ON together (couple_id, until_us);

CREATE TABLE together_held_taps (
    tap_id TEXT PRIMARY KEY REFERENCES taps (id) ON DELETE CASCADE,
    together_id TEXT NOT NULL REFERENCES together (id) ON DELETE CASCADE,
    held_at_us BIGINT NOT NULL
);
CREATE INDEX together_held_taps_of_together ON together_held_taps (together_id, held_at_us);

-- The next time the couple meets (one per couple).
CREATE TABLE meetings (
    couple_id TEXT PRIMARY KEY REFERENCES couples (id),
    id TEXT NOT NULL,
    set_by TEXT NOT NULL,
    local_date TEXT NOT NULL,
    local_time TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    starts_at_us BIGINT NOT NULL,
    together_minutes BIGINT NOT NULL,
    set_at_us BIGINT NOT NULL
);
CREATE INDEX meetings_due ON meetings (starts_at_us);
