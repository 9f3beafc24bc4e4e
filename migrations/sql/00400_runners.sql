-- Self-hosted runners: one-time registration tokens, registered runners (only hashes of their
-- credentials), the job queue with leases, job labels for matching, and log chunks.
-- Booleans are INTEGER 0/1 and lease deadlines are Unix milliseconds, so one query text
-- compares them the same way on SQLite and PostgreSQL.
-- +goose Up
CREATE TABLE runner_registration_tokens (
    id          ${ID},
    token_hash  TEXT NOT NULL UNIQUE,
    note        TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  ${TIME} NOT NULL DEFAULT ${NOW},
    expires_at  ${TIME} NOT NULL,
    used_at     ${TIME},
    runner_id   BIGINT
);

CREATE TABLE runners (
    id               ${ID},
    name             TEXT NOT NULL,
    credential_hash  TEXT NOT NULL UNIQUE,
    labels           TEXT NOT NULL DEFAULT '',
    version          TEXT NOT NULL DEFAULT '',
    gpu              TEXT NOT NULL DEFAULT '',
    allow_untrusted  INTEGER NOT NULL DEFAULT 0,
    created_at       ${TIME} NOT NULL DEFAULT ${NOW},
    last_seen_at     ${TIME},
    revoked_at       ${TIME}
);

CREATE TABLE runner_jobs (
    id                   ${ID},
    dedupe_key           TEXT UNIQUE,
    cancel_group         TEXT NOT NULL DEFAULT '',
    labels               TEXT NOT NULL DEFAULT '',
    repo                 TEXT NOT NULL DEFAULT '',
    clone_url            TEXT NOT NULL,
    head_sha             TEXT NOT NULL,
    base_ref             TEXT NOT NULL DEFAULT '',
    base_sha             TEXT NOT NULL DEFAULT '',
    steps                TEXT NOT NULL,
    env                  TEXT NOT NULL DEFAULT '{}',
    meta                 TEXT NOT NULL DEFAULT '',
    timeout_s            BIGINT NOT NULL,
    trusted              INTEGER NOT NULL DEFAULT 0,
    max_attempts         INTEGER NOT NULL,
    state                TEXT NOT NULL DEFAULT 'queued',
    attempts             INTEGER NOT NULL DEFAULT 0,
    runner_id            BIGINT,
    lease_until_ms       BIGINT NOT NULL DEFAULT 0,
    cancel_requested     INTEGER NOT NULL DEFAULT 0,
    cancel_reason        TEXT NOT NULL DEFAULT '',
    cancel_requested_at  ${TIME},
    conclusion           TEXT NOT NULL DEFAULT '',
    exit_code            INTEGER NOT NULL DEFAULT 0,
    message              TEXT NOT NULL DEFAULT '',
    results              ${BLOB},
    killed_at            ${TIME},
    log_bytes            BIGINT NOT NULL DEFAULT 0,
    log_truncated        INTEGER NOT NULL DEFAULT 0,
    created_at           ${TIME} NOT NULL DEFAULT ${NOW},
    assigned_at          ${TIME},
    finished_at          ${TIME},
    delivered_at         ${TIME}
);
CREATE INDEX runner_jobs_queued ON runner_jobs (state, id);
CREATE INDEX runner_jobs_group ON runner_jobs (cancel_group);

CREATE TABLE runner_job_labels (
    job_id  BIGINT NOT NULL REFERENCES runner_jobs (id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    PRIMARY KEY (job_id, label)
);

CREATE TABLE runner_job_logs (
    job_id      BIGINT NOT NULL REFERENCES runner_jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    data        ${BLOB} NOT NULL,
    created_at  ${TIME} NOT NULL DEFAULT ${NOW},
    PRIMARY KEY (job_id, attempt, seq)
);

-- +goose Down
DROP TABLE runner_job_logs;
DROP TABLE runner_job_labels;
DROP TABLE runner_jobs;
DROP TABLE runners;
DROP TABLE runner_registration_tokens;
