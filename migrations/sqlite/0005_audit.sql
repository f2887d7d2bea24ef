-- What admins did (contract v1.4): one row per action, written in the same
-- transaction as the action. `detail` is a JSON object; `target_id` is not
-- a foreign key, so the record of a deleted story or report stays.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action      TEXT    NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   INTEGER NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
);

-- The console filters by admin and by action, newest first.
CREATE INDEX audit_log_admin ON audit_log (admin_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
