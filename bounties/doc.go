// Package bounties owns bounties, attempts, claims, splits, tips, payouts, the ledger, the
// Stripe Connect integration and the hiring pipeline.
package bounties
