-- Bounties, payouts, the ledger, Stripe state and the hiring pipeline (package bounties).
-- Every state column has a CHECK listing its states, and the rules that must hold even when
-- two servers race ("one live bounty per issue", "one lock per bounty", "one winning claim",
-- "one idempotency key per credit", "one ledger transaction per key") are unique indexes,
-- so a bug in Go cannot pay twice.
-- +goose Up
CREATE TABLE bounty_policies (
    repo                 TEXT PRIMARY KEY,
    first_pr_can_claim   BOOLEAN NOT NULL DEFAULT FALSE,
    max_active_attempts  INTEGER NOT NULL DEFAULT 2 CHECK (max_active_attempts >= 0),
    min_account_age_days INTEGER NOT NULL DEFAULT 0 CHECK (min_account_age_days >= 0),
    attempt_days         INTEGER NOT NULL DEFAULT 7 CHECK (attempt_days BETWEEN 1 AND 365),
    bounty_days          INTEGER NOT NULL DEFAULT 0 CHECK (bounty_days >= 0),
    auto_approve         BOOLEAN NOT NULL DEFAULT FALSE,
    updated_by           TEXT NOT NULL DEFAULT '',
    updated_at           ${TIME} NOT NULL DEFAULT ${NOW}
);

CREATE TABLE bounties (
    id            ${ID},
    repo          TEXT NOT NULL,
    issue         INTEGER NOT NULL CHECK (issue > 0),
    title         TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'claimed', 'paid', 'cancelled', 'expired')),
    currency      TEXT NOT NULL DEFAULT 'usd' CHECK (currency = 'usd'),
    created_by    TEXT NOT NULL,
    created_at    ${TIME} NOT NULL,
    updated_at    ${TIME} NOT NULL,
    expires_at    ${TIME},
    closed_at     ${TIME},
    closed_by     TEXT NOT NULL DEFAULT '',
    closed_reason TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX bounties_one_live_per_issue ON bounties (repo, issue) WHERE state IN ('open', 'claimed');
CREATE INDEX bounties_state ON bounties (state, created_at);

CREATE TABLE bounty_fundings (
    id                  ${ID},
    bounty_id           BIGINT NOT NULL REFERENCES bounties (id),
    sponsor             TEXT NOT NULL,
    amount_cents        BIGINT NOT NULL CHECK (amount_cents > 0),
    source              TEXT NOT NULL CHECK (source IN ('checkout', 'platform')),
    state               TEXT NOT NULL CHECK (state IN ('pending', 'funded', 'refunding', 'refunded', 'expired')),
    request_key         TEXT NOT NULL UNIQUE,
    checkout_session_id TEXT UNIQUE,
    checkout_url        TEXT NOT NULL DEFAULT '',
    payment_intent_id   TEXT,
    refund_key          TEXT UNIQUE,
    refund_id           TEXT,
    created_at          ${TIME} NOT NULL,
    funded_at           ${TIME},
    refunded_at         ${TIME},
    CHECK (source = 'platform' OR state IN ('pending', 'expired') OR payment_intent_id IS NOT NULL)
);
CREATE INDEX bounty_fundings_bounty ON bounty_fundings (bounty_id);
CREATE INDEX bounty_fundings_pi ON bounty_fundings (payment_intent_id);

CREATE TABLE bounty_attempts (
    id         ${ID},
    bounty_id  BIGINT NOT NULL REFERENCES bounties (id),
    repo       TEXT NOT NULL,
    login      TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'released', 'expired', 'unlocked', 'finished')),
    started_at ${TIME} NOT NULL,
    expires_at ${TIME} NOT NULL,
    ended_at   ${TIME},
    ended_by   TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX bounty_attempts_one_lock ON bounty_attempts (bounty_id) WHERE state = 'active';
CREATE INDEX bounty_attempts_login ON bounty_attempts (repo, login, state);

CREATE TABLE bounty_claims (
    id         ${ID},
    bounty_id  BIGINT NOT NULL REFERENCES bounties (id),
    repo       TEXT NOT NULL,
    pr         INTEGER NOT NULL CHECK (pr > 0),
    author     TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'won', 'lost', 'withdrawn')),
    reason     TEXT NOT NULL DEFAULT '',
    created_at ${TIME} NOT NULL,
    decided_at ${TIME},
    UNIQUE (bounty_id, pr)
);
CREATE UNIQUE INDEX bounty_claims_one_winner ON bounty_claims (bounty_id) WHERE state = 'won';
CREATE INDEX bounty_claims_pr ON bounty_claims (repo, pr);

CREATE TABLE bounty_claim_splits (
    claim_id BIGINT NOT NULL REFERENCES bounty_claims (id),
    login    TEXT NOT NULL,
    shares   INTEGER NOT NULL DEFAULT 1 CHECK (shares BETWEEN 1 AND 1000),
    PRIMARY KEY (claim_id, login)
);

CREATE TABLE bounty_credits (
    id                 ${ID},
    kind               TEXT NOT NULL CHECK (kind IN ('bounty', 'tip')),
    bounty_id          BIGINT REFERENCES bounties (id),
    claim_id           BIGINT REFERENCES bounty_claims (id),
    repo               TEXT NOT NULL,
    number             INTEGER NOT NULL,
    recipient          TEXT NOT NULL,
    amount_cents       BIGINT NOT NULL CHECK (amount_cents > 0),
    currency           TEXT NOT NULL DEFAULT 'usd' CHECK (currency = 'usd'),
    state              TEXT NOT NULL CHECK (state IN ('awaiting_approval', 'approved', 'transferring', 'paid', 'failed', 'reversed', 'declined')),
    request_key        TEXT UNIQUE,
    idempotency_key    TEXT NOT NULL UNIQUE,
    retries            INTEGER NOT NULL DEFAULT 0,
    transfer_id        TEXT UNIQUE,
    failure            TEXT NOT NULL DEFAULT '',
    created_by         TEXT NOT NULL,
    created_at         ${TIME} NOT NULL,
    approved_by        TEXT NOT NULL DEFAULT '',
    approved_at        ${TIME},
    transferring_since ${TIME},
    paid_at            ${TIME},
    updated_at         ${TIME} NOT NULL,
    UNIQUE (claim_id, recipient),
    CHECK (kind = 'tip' OR claim_id IS NOT NULL),
    CHECK (state NOT IN ('paid', 'reversed') OR transfer_id IS NOT NULL),
    CHECK (state IN ('awaiting_approval', 'declined') OR approved_by <> '')
);
CREATE INDEX bounty_credits_state ON bounty_credits (state, recipient);
CREATE INDEX bounty_credits_bounty ON bounty_credits (bounty_id);

CREATE TABLE bounty_ledger_txns (
    id         ${ID},
    key        TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL CHECK (kind IN ('funding', 'credit', 'transfer', 'reversal', 'refund', 'fee')),
    bounty_id  BIGINT,
    credit_id  BIGINT,
    funding_id BIGINT,
    memo       TEXT NOT NULL DEFAULT '',
    created_at ${TIME} NOT NULL
);
CREATE TABLE bounty_ledger_entries (
    id           ${ID},
    txn_id       BIGINT NOT NULL REFERENCES bounty_ledger_txns (id),
    account      TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents <> 0),
    currency     TEXT NOT NULL DEFAULT 'usd' CHECK (currency = 'usd')
);
CREATE INDEX bounty_ledger_entries_account ON bounty_ledger_entries (account);
CREATE INDEX bounty_ledger_entries_txn ON bounty_ledger_entries (txn_id);

CREATE TABLE bounty_accounts (
    login             TEXT PRIMARY KEY,
    stripe_account_id TEXT NOT NULL UNIQUE,
    payouts_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    details_submitted BOOLEAN NOT NULL DEFAULT FALSE,
    stripe_updated    BIGINT NOT NULL DEFAULT 0,
    created_at        ${TIME} NOT NULL,
    updated_at        ${TIME} NOT NULL
);

CREATE TABLE bounty_stripe_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    created     BIGINT NOT NULL,
    received_at ${TIME} NOT NULL
);

CREATE TABLE bounty_events (
    id         ${ID},
    bounty_id  BIGINT,
    repo       TEXT NOT NULL DEFAULT '',
    number     INTEGER NOT NULL DEFAULT 0,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL,
    created_at ${TIME} NOT NULL
);
CREATE INDEX bounty_events_bounty ON bounty_events (bounty_id, id);
CREATE INDEX bounty_events_subject ON bounty_events (subject, id);

CREATE TABLE bounty_people (
    login        TEXT PRIMARY KEY,
    stage        TEXT NOT NULL CHECK (stage IN ('contributor', 'hunter', 'proposer', 'candidate', 'hired')),
    stage_at     ${TIME} NOT NULL,
    candidate    BOOLEAN NOT NULL DEFAULT FALSE,
    candidate_by TEXT NOT NULL DEFAULT '',
    candidate_at ${TIME}
);
CREATE TABLE bounty_stage_events (
    id         ${ID},
    login      TEXT NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at ${TIME} NOT NULL
);
CREATE INDEX bounty_stage_events_login ON bounty_stage_events (login, id);

CREATE TABLE bounty_proposals (
    id           ${ID},
    repo         TEXT NOT NULL,
    issue        INTEGER NOT NULL CHECK (issue > 0),
    proposer     TEXT NOT NULL,
    title        TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    state        TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'declined', 'withdrawn')),
    request_key  TEXT NOT NULL UNIQUE,
    decided_by   TEXT NOT NULL DEFAULT '',
    decided_at   ${TIME},
    reason       TEXT NOT NULL DEFAULT '',
    bounty_id    BIGINT REFERENCES bounties (id),
    created_at   ${TIME} NOT NULL,
    CHECK (state <> 'declined' OR reason <> '')
);
CREATE INDEX bounty_proposals_state ON bounty_proposals (state, created_at);

CREATE TABLE bounty_offers (
    id             ${ID},
    login          TEXT NOT NULL,
    stipend_cents  BIGINT NOT NULL CHECK (stipend_cents >= 0),
    stipend_period TEXT NOT NULL CHECK (stipend_period IN ('month', 'year')),
    equity_bps     INTEGER NOT NULL CHECK (equity_bps BETWEEN 0 AND 10000),
    vesting_start  ${TIME} NOT NULL,
    cliff_months   INTEGER NOT NULL CHECK (cliff_months BETWEEN 0 AND 120),
    vesting_months INTEGER NOT NULL CHECK (vesting_months BETWEEN 1 AND 240),
    state          TEXT NOT NULL CHECK (state IN ('offered', 'accepted', 'declined', 'withdrawn')),
    note           TEXT NOT NULL DEFAULT '',
    created_by     TEXT NOT NULL,
    created_at     ${TIME} NOT NULL,
    decided_by     TEXT NOT NULL DEFAULT '',
    decided_at     ${TIME},
    CHECK (cliff_months <= vesting_months)
);
CREATE UNIQUE INDEX bounty_offers_one_live ON bounty_offers (login) WHERE state IN ('offered', 'accepted');

CREATE TABLE bounty_bans (
    id        ${ID},
    repo      TEXT NOT NULL,
    login     TEXT NOT NULL,
    banned_by TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    created_at ${TIME} NOT NULL,
    lifted_by TEXT NOT NULL DEFAULT '',
    lifted_at ${TIME}
);
CREATE UNIQUE INDEX bounty_bans_active ON bounty_bans (repo, login) WHERE lifted_at IS NULL;

-- +goose Down
DROP TABLE bounty_bans;
DROP TABLE bounty_offers;
DROP TABLE bounty_proposals;
DROP TABLE bounty_stage_events;
DROP TABLE bounty_people;
DROP TABLE bounty_events;
DROP TABLE bounty_stripe_events;
DROP TABLE bounty_accounts;
DROP TABLE bounty_ledger_entries;
DROP TABLE bounty_ledger_txns;
DROP TABLE bounty_credits;
DROP TABLE bounty_claim_splits;
DROP TABLE bounty_claims;
DROP TABLE bounty_attempts;
DROP TABLE bounty_fundings;
DROP TABLE bounties;
DROP TABLE bounty_policies;
