-- A running job's hard deadline (Unix milliseconds): its timeout plus one lease after it was
-- assigned. A runner that keeps renewing its lease but never reports (hung or lying) cannot
-- hold a job past it.
-- +goose Up
ALTER TABLE runner_jobs ADD COLUMN deadline_ms BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE runner_jobs DROP COLUMN deadline_ms;
