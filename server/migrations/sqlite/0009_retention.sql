-- Retention forgets taps older than --tap-history-days: an index range on their age rather
-- than a scan of the whole history (tap ids come from the wall clock, ages from the server's).
CREATE INDEX taps_created ON taps (created_at_us);
