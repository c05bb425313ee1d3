-- Forgetting expired codes is an index range, not a scan of every code ever made.
CREATE INDEX codes_expiry ON codes (expires_at_us);
