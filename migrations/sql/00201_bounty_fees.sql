-- Stripe's processing fee per card funding, read from the charge's balance transaction; NULL
-- until read. The fee is the platform's cost (the pool keeps the full pledge), posted to the
-- ledger as a "fee" transaction from the platform to stripe:fees.
-- +goose Up
ALTER TABLE bounty_fundings ADD COLUMN fee_cents BIGINT CHECK (fee_cents >= 0);

-- +goose Down
ALTER TABLE bounty_fundings DROP COLUMN fee_cents;
