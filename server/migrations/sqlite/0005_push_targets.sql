-- Where each device's wake-up pushes go: at most one target per provider (tapline.v1
-- PushProvider). `address` is the APNs device token (lower-case hex), the FCM registration
-- token or the Web Push endpoint; `topic`, `environment` and `push_types` (a bit per
-- ApnsPushType) are for APNs, `p256dh` and `auth` for Web Push.
CREATE TABLE push_targets (
    device_id TEXT NOT NULL REFERENCES devices (id),
    provider BIGINT NOT NULL,
    address TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    environment BIGINT NOT NULL DEFAULT 0,
    push_types BIGINT NOT NULL DEFAULT 0,
    p256dh BLOB,
    auth BLOB,
    registered_at_us BIGINT NOT NULL,
    PRIMARY KEY (device_id, provider)
);
