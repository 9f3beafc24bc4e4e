-- The bot's tables: every webhook delivery GitHub sent (deduplicated by its delivery ID), the
-- job that processes it, the installation that owns each repository, and the bot's one
-- comment per issue or pull request with the sections it renders.
-- +goose Up
CREATE TABLE bot_deliveries (
    id              ${ID},
    delivery_id     TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    payload         ${BLOB} NOT NULL,
    received_at     ${TIME} NOT NULL DEFAULT ${NOW}
);

-- A job is claimed atomically (FOR UPDATE SKIP LOCKED on PostgreSQL, a conditional UPDATE on
-- SQLite); a claim is a lease, so a job whose worker died runs again once the lease expires.
CREATE TABLE bot_jobs (
    id           ${ID},
    delivery_id  TEXT NOT NULL UNIQUE REFERENCES bot_deliveries (delivery_id),
    state        TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    ${TIME} NOT NULL,
    locked_by    TEXT NOT NULL DEFAULT '',
    locked_until ${TIME},
    last_error   TEXT NOT NULL DEFAULT '',
    updated_at   ${TIME} NOT NULL
);
CREATE INDEX bot_jobs_ready ON bot_jobs (state, run_after);

CREATE TABLE bot_repos (
    repo            TEXT PRIMARY KEY,
    installation_id BIGINT NOT NULL,
    updated_at      ${TIME} NOT NULL DEFAULT ${NOW}
);

CREATE TABLE bot_threads (
    repo       TEXT NOT NULL,
    number     INTEGER NOT NULL,
    comment_id BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (repo, number)
);

CREATE TABLE bot_sections (
    repo       TEXT NOT NULL,
    number     INTEGER NOT NULL,
    section    TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at ${TIME} NOT NULL DEFAULT ${NOW},
    PRIMARY KEY (repo, number, section)
);

-- One row per command occurrence that ran (delivery ID and line), so a retried delivery does
-- not run a command twice (a second /retest, a second tip).
CREATE TABLE bot_commands (
    key        TEXT PRIMARY KEY,
    repo       TEXT NOT NULL,
    number     INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    command    TEXT NOT NULL,
    reply      TEXT NOT NULL,
    created_at ${TIME} NOT NULL DEFAULT ${NOW}
);

-- +goose Down
DROP TABLE bot_commands;
DROP TABLE bot_sections;
DROP TABLE bot_threads;
DROP TABLE bot_repos;
DROP TABLE bot_jobs;
DROP TABLE bot_deliveries;
