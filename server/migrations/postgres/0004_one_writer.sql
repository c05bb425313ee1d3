-- A partner tap's inbox row names its tap, so the recipient device's ack past it records
-- DELIVERED (no separate receipt call); NULL for every other event.
ALTER TABLE inbox ADD COLUMN tap_id TEXT;

-- One row the group commit rewrites to check that the database takes writes (at start-up,
-- and while it could not commit).
CREATE TABLE write_probe (
    id BIGINT PRIMARY KEY,
    at_us BIGINT NOT NULL
);
