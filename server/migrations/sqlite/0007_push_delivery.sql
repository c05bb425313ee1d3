-- Which devices have a live event stream on some instance, as a lease the instance renews
-- (µs). A wake-up for a live device waits for its ack instead of being pushed; a crashed
-- instance's leases run out, so its devices are pushed again. Its own table, without a
-- foreign key: writing a lease never locks a device row a batch may hold.
CREATE TABLE live_streams (
    device_id TEXT PRIMARY KEY,
    live_until_us BIGINT NOT NULL
);
-- When the target last got a background (non-user-visible) wake-up, for Apple's budget of
-- about one per 20 minutes.
ALTER TABLE push_targets ADD COLUMN last_background_us BIGINT NOT NULL DEFAULT 0;
-- Provider credentials every instance shares (the APNs provider token), with when each was
-- made, so instances on one database use one token and refresh it once.
CREATE TABLE provider_tokens (
    provider TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    issued_at_us BIGINT NOT NULL
);
-- The newest event a push already went out for. After a push the job stays until the
-- collapse window ends, so the rest of a burst becomes one more wake-up at most (none if the
-- woken app acks first).
ALTER TABLE push_jobs ADD COLUMN pushed_seq BIGINT NOT NULL DEFAULT 0;
-- The push worker's last claim of the job (random), so one round reads back exactly the jobs
-- it leased.
ALTER TABLE push_jobs ADD COLUMN lease_id BIGINT NOT NULL DEFAULT 0;
