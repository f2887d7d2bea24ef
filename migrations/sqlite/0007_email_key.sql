-- Emails are unique by a key the application computes: the address's NFC
-- form, lower-cased by Unicode's full rules (issue #21: SQLite's lower()
-- is ASCII-only, so `Élise@` and `élise@` both registered). The key is
-- filled here with lower() and then recomputed for every row by the
-- application in the same transaction (see crates/store/src/migrate.rs).
ALTER TABLE users ADD COLUMN email_key TEXT;
UPDATE users SET email_key = lower(email);
DROP INDEX users_email_lower;
CREATE UNIQUE INDEX users_email_key ON users (email_key);
