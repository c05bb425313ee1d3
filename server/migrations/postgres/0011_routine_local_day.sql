-- The local date each firing was for, in the zone it fired in: a routine fires at most once per
-- local date, also after a change of zone.
ALTER TABLE routine_firings ADD COLUMN local_day TEXT;
