-- Web sign-in sessions, kept on the server so that signing out (or an admin deleting rows)
-- ends them at once. The cookie carries a random token; only its SHA-256 is stored here,
-- so a leaked database does not leak live sessions.
-- +goose Up
CREATE TABLE web_sessions (
    token_hash   TEXT PRIMARY KEY,
    login        TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    avatar_url   TEXT NOT NULL DEFAULT '',
    -- dev_role is set only by the dev-mode login (maintainer or contributor); GitHub sign-ins
    -- leave it empty and get their role from the repository permission.
    dev_role     TEXT NOT NULL DEFAULT '',
    created_at   ${TIME} NOT NULL DEFAULT ${NOW},
    expires_at   ${TIME} NOT NULL
);
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);
CREATE INDEX web_sessions_login ON web_sessions (login);

-- +goose Down
DROP TABLE web_sessions;
