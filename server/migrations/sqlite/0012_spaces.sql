-- "I need a moment": a space one partner asks for. While it is in force (ended_at_us IS NULL),
-- taps to that partner are kept in held_taps and delivered together when it ends.
CREATE TABLE spaces (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    client_id TEXT NOT NULL,
    reason BIGINT NOT NULL,
    started_at_us BIGINT NOT NULL,
    until_us BIGINT NOT NULL,
    open_ended BIGINT NOT NULL,
    ended_at_us BIGINT,
    answer BIGINT NOT NULL DEFAULT 0,
    answered_at_us BIGINT,
    UNIQUE (account_id, client_id)
);
-- At most one space in force per account.
CREATE UNIQUE INDEX spaces_in_force ON spaces (account_id) WHERE ended_at_us IS NULL;
CREATE INDEX spaces_due ON spaces (until_us) WHERE ended_at_us IS NULL;
CREATE INDEX spaces_of_couple ON spaces (couple_id, until_us);

CREATE TABLE held_taps (
    tap_id TEXT PRIMARY KEY REFERENCES taps (id) ON DELETE CASCADE,
    space_id TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    held_at_us BIGINT NOT NULL
);
CREATE INDEX held_taps_of_space ON held_taps (space_id, held_at_us);
