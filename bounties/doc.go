// Package bounties owns bounties, attempts, claims, splits, tips, payouts, the ledger, the
// Stripe Connect integration and the hiring pipeline.
//
// Callers (the bot, the web app) pass plain data: repositories as "owner/name", issue and
// pull request numbers, GitHub logins, amounts in integer cents, and facts about pull requests
// the caller learned from GitHub. Every command returns a Result whose Message is a sentence a
// person can read; refusals are errors that wrap a sentinel (ErrRefused, ErrBadInput,
// ErrNotFound, ErrForbidden) and say why in words. Later happenings (a Stripe webhook, an
// expired lock) reach people through the Notifier the caller supplies.
//
// Money is exactly-once by construction, not by care: each state change is one conditional
// UPDATE (… WHERE state = 'from'), so of any number of racing callers one wins; the rules that
// must hold across servers are unique indexes; every Stripe request that moves money carries an
// idempotency key stored under a unique constraint before the request is sent, so a retry after
// a crash asks Stripe for the same transfer again rather than a new one. Every cent is a pair
// of ledger rows in one transaction group that sums to zero (see ledger.go); balances are
// sums over the ledger. The one stored total is each bounty's pool, which the board sorts by:
// post updates it in the transaction that writes the ledger rows, and Audit reports any
// bounty whose stored pool differs from the ledger's sum.
package bounties
