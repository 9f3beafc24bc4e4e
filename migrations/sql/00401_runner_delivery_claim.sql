-- Deliveries of finished jobs to ci are claimed for a while (Unix milliseconds) so two
-- server replicas, or two rounds in one, don't deliver the same job twice.
-- +goose Up
ALTER TABLE runner_jobs ADD COLUMN delivery_claim_ms BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE runner_jobs DROP COLUMN delivery_claim_ms;
