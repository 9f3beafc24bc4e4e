-- The board sorts and filters by a bounty's pool, which sums its ledger transactions: without
-- these indexes PostgreSQL scans every transaction per bounty (35 s for 10,000 bounties).
-- +goose Up
CREATE INDEX bounty_ledger_txns_bounty ON bounty_ledger_txns (bounty_id);
CREATE INDEX bounty_ledger_txns_credit ON bounty_ledger_txns (credit_id);
CREATE INDEX bounty_ledger_txns_funding ON bounty_ledger_txns (funding_id);

-- +goose Down
DROP INDEX bounty_ledger_txns_funding;
DROP INDEX bounty_ledger_txns_credit;
DROP INDEX bounty_ledger_txns_bounty;
