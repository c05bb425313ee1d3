-- DeleteAccount: the account row stays as an anonymous tombstone, marked with when it was deleted.
ALTER TABLE accounts ADD COLUMN deleted_at_us BIGINT;
