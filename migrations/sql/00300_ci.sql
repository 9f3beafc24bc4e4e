-- Conformance CI (package ci): what ci remembers about each pull request (its head, its
-- trust and whether a maintainer said /ok-to-test) and one row per gate run: the check run on
-- GitHub, the runner job, and the gate's result.
-- +goose Up
CREATE TABLE ci_pulls (
    id             ${ID},
    repo           TEXT    NOT NULL,
    number         INTEGER NOT NULL,
    author         TEXT    NOT NULL DEFAULT '',
    head_sha       TEXT    NOT NULL,
    base_sha       TEXT    NOT NULL DEFAULT '',
    base_ref       TEXT    NOT NULL DEFAULT '',
    clone_url      TEXT    NOT NULL DEFAULT '',
    trusted        BOOLEAN NOT NULL DEFAULT FALSE,
    ok_to_test     BOOLEAN NOT NULL DEFAULT FALSE,
    ok_to_test_sha TEXT    NOT NULL DEFAULT '',
    created_at     ${TIME} NOT NULL DEFAULT ${NOW},
    updated_at     ${TIME} NOT NULL DEFAULT ${NOW},
    UNIQUE (repo, number)
);

CREATE TABLE ci_runs (
    id           ${ID},
    repo         TEXT    NOT NULL,
    number       INTEGER NOT NULL,
    head_sha     TEXT    NOT NULL,
    base_sha     TEXT    NOT NULL DEFAULT '',
    gate         TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    check_run_id BIGINT  NOT NULL DEFAULT 0,
    job_id       BIGINT  NOT NULL DEFAULT 0,
    status       TEXT    NOT NULL,
    conclusion   TEXT    NOT NULL DEFAULT '',
    title        TEXT    NOT NULL DEFAULT '',
    result       ${JSON},
    created_at   ${TIME} NOT NULL DEFAULT ${NOW},
    updated_at   ${TIME} NOT NULL DEFAULT ${NOW},
    UNIQUE (repo, number, head_sha, gate, attempt)
);
CREATE INDEX ci_runs_check_run ON ci_runs (check_run_id);
CREATE INDEX ci_runs_job ON ci_runs (job_id);
CREATE INDEX ci_runs_gate_time ON ci_runs (repo, gate, created_at);

-- +goose Down
DROP TABLE ci_runs;
DROP TABLE ci_pulls;
