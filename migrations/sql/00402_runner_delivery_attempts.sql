-- Failed deliveries of a finished job to ci back off: each failure is counted and pushes
-- the next try further out (up to ten minutes), so a caller that keeps refusing a job
-- does not turn into a retry storm.
-- +goose Up
ALTER TABLE runner_jobs ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE runner_jobs DROP COLUMN delivery_attempts;
