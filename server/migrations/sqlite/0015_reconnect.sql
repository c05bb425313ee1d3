-- The reconnect plan: proposed by one partner, accepted by the other, then one step a day for
-- each partner at the plan's local time on their own clock.
CREATE TABLE reconnect_plans (
    id TEXT PRIMARY KEY,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    started_by TEXT NOT NULL,
    -- "HH:MM".
    local_time TEXT NOT NULL,
    -- proposed, running, paused, finished, ended.
    state TEXT NOT NULL,
    -- 1 while proposed, running or paused.
    open BIGINT NOT NULL,
    proposed_at_us BIGINT NOT NULL,
    accepted_at_us BIGINT,
    ended_at_us BIGINT,
    ended_by TEXT,
    paused_by TEXT
);
-- At most one plan proposed, running or paused per couple.
CREATE UNIQUE INDEX reconnect_open ON reconnect_plans (couple_id) WHERE open = 1;
CREATE INDEX reconnect_of_couple ON reconnect_plans (couple_id, proposed_at_us);

-- Each partner's place in a running plan: when their next step comes, and for which of their
-- local dates.
CREATE TABLE reconnect_progress (
    plan_id TEXT NOT NULL REFERENCES reconnect_plans (id),
    account_id TEXT NOT NULL,
    next_due_us BIGINT,
    next_day TEXT,
    PRIMARY KEY (plan_id, account_id)
);
CREATE INDEX reconnect_due ON reconnect_progress (next_due_us) WHERE next_due_us IS NOT NULL;

-- The steps that have come, per partner.
CREATE TABLE reconnect_steps (
    plan_id TEXT NOT NULL REFERENCES reconnect_plans (id),
    account_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    came_at_us BIGINT NOT NULL,
    came_on TEXT NOT NULL,
    done_at_us BIGINT,
    PRIMARY KEY (plan_id, account_id, number)
);
