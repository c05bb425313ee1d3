-- One pending wake-up per device with a push target. A burst of events collapses into it:
-- `seq` is the newest event it is about, `urgent` (0/1) whether one of them is user-visible.
-- An ack at or past `seq` cancels it. The push worker leases a job by moving `due_at_us` on
-- while it sends, and deletes it once sent, so a crash mid-send only delays it.
CREATE TABLE push_jobs (
    device_id TEXT PRIMARY KEY REFERENCES devices (id),
    seq BIGINT NOT NULL,
    urgent BIGINT NOT NULL DEFAULT 0,
    due_at_us BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX push_jobs_due ON push_jobs (due_at_us);
