package bounties

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v79"
	"gorm.io/gorm"
)

// Ledger accounts. An account is a name; its balance is the sum of its rows. The convention:
// money flows from the account with the negative row to the one with the positive row.
//
//	sponsor:<login>  what a sponsor has put in (negative) net of refunds
//	platform         the forge's own money: maintainers' funding and tips (negative when spent)
//	bounty:<id>      a bounty's pool (escrow): funded minus awarded minus refunded
//	payable:<login>  approved credits not yet transferred to the contributor
//	paid:<login>     what has left through Stripe transfers to the contributor
//	stripe:fees      what Stripe kept as processing fees on card fundings (paid by the platform)
const (
	acctPlatform   = "platform"
	acctStripeFees = "stripe:fees"
)

func acctSponsor(login string) string { return "sponsor:" + login }
func acctBounty(id int64) string      { return fmt.Sprintf("bounty:%d", id) }
func acctPayable(login string) string { return "payable:" + login }
func acctPaid(login string) string    { return "paid:" + login }

// leg is one ledger row: amount cents into account (negative: out of it).
type leg struct {
	account string
	cents   int64
}

// move is the two legs of moving cents from one account to another.
func move(from, to string, cents int64) []leg {
	return []leg{{from, -cents}, {to, cents}}
}

// txnRefs ties a ledger transaction to what caused it.
type txnRefs struct {
	bounty, credit, funding *int64
}

// post writes one balanced ledger transaction under a unique key and reports whether it
// wrote it: a key already posted is a no-op, which is what makes webhook replays, retries
// and racing workers harmless. Legs must be non-zero and sum to zero.
func post(tx *gorm.DB, at time.Time, key, kind, memo string, refs txnRefs, legs ...leg) (bool, error) {
	var sum int64
	for _, l := range legs {
		if l.cents == 0 || l.account == "" {
			return false, fmt.Errorf("ledger %s: empty leg %+v", key, l)
		}
		sum += l.cents
	}
	if len(legs) < 2 || sum != 0 {
		return false, fmt.Errorf("ledger %s: %d legs summing to %d, want at least 2 summing to 0", key, len(legs), sum)
	}
	n, err := exec(tx, `INSERT INTO bounty_ledger_txns (key, kind, bounty_id, credit_id, funding_id, memo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		key, kind, refs.bounty, refs.credit, refs.funding, memo, at)
	if err != nil {
		return false, fmt.Errorf("ledger %s: %w", key, err)
	}
	if n == 0 {
		return false, nil
	}
	var id int64
	if err := tx.Raw(`SELECT id FROM bounty_ledger_txns WHERE key = ?`, key).Scan(&id).Error; err != nil {
		return false, fmt.Errorf("ledger %s: %w", key, err)
	}
	for _, l := range legs {
		if err := tx.Exec(`INSERT INTO bounty_ledger_entries (txn_id, account, amount_cents) VALUES (?, ?, ?)`, id, l.account, l.cents).Error; err != nil {
			return false, fmt.Errorf("ledger %s: %w", key, err)
		}
		if err := addToPool(tx, kind, l); err != nil {
			return false, fmt.Errorf("ledger %s: %w", key, err)
		}
	}
	return true, nil
}

// poolKinds are the transaction kinds whose legs on a bounty's account make up its pool:
// sponsors' money in and refunds back out. Awards (credits) leave the pool as it was, so the
// board keeps showing what a paid bounty was worth.
var poolKinds = []string{"funding", "refund"}

// addToPool keeps bounties.pool_cents equal to the sum of the bounty's pool legs: it is
// updated in the transaction that posts the leg, so the two cannot disagree, and Audit checks
// that they do not.
func addToPool(tx *gorm.DB, kind string, l leg) error {
	s, ok := strings.CutPrefix(l.account, "bounty:")
	if !ok || !slices.Contains(poolKinds, kind) {
		return nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("pool account %q: %w", l.account, err)
	}
	n, err := exec(tx, `UPDATE bounties SET pool_cents = pool_cents + ? WHERE id = ?`, l.cents, id)
	if err != nil {
		return fmt.Errorf("pool of bounty %d: %w", id, err)
	}
	if n != 1 {
		return fmt.Errorf("pool of bounty %d: no such bounty", id)
	}
	return nil
}

// balance sums an account's rows.
func balance(tx *gorm.DB, account string) (int64, error) {
	var b int64
	err := tx.Raw(`SELECT COALESCE(SUM(amount_cents), 0) FROM bounty_ledger_entries WHERE account = ?`, account).Scan(&b).Error
	if err != nil {
		return 0, fmt.Errorf("balance of %s: %w", account, err)
	}
	return b, nil
}

// Balance returns an account's balance in cents, derived from the ledger.
func (s *Service) Balance(ctx context.Context, account string) (int64, error) {
	return balance(s.db.WithContext(ctx), account)
}

// LedgerEntry is one ledger row with its transaction.
type LedgerEntry struct {
	TxnID       int64
	Key         string
	Kind        string
	Account     string
	AmountCents int64
	Memo        string
	CreatedAt   time.Time
}

// Ledger lists the rows touching accounts with the given prefix ("" for all), newest first.
func (s *Service) Ledger(ctx context.Context, accountPrefix string, limit int) ([]LedgerEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var out []LedgerEntry
	err := s.db.WithContext(ctx).Raw(`SELECT t.id AS txn_id, t.key, t.kind, e.account, e.amount_cents, t.memo, t.created_at
		FROM bounty_ledger_entries e JOIN bounty_ledger_txns t ON t.id = e.txn_id
		WHERE e.account LIKE ? ORDER BY e.id DESC LIMIT ?`, accountPrefix+"%", limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list ledger: %w", err)
	}
	return out, nil
}

// Imbalance is a ledger transaction whose rows do not sum to zero.
type Imbalance struct {
	Key string
	Sum int64
}

// Audit checks the whole ledger: every transaction sums to zero and has rows, every paid
// credit has its transfer posted, every funded funding its funding posted, every bounty's
// stored pool equals its pool in the ledger. It returns what is wrong, or nothing.
func (s *Service) Audit(ctx context.Context) ([]string, error) {
	db := s.db.WithContext(ctx)
	var bad []Imbalance
	if err := db.Raw(`SELECT t.key, COALESCE(SUM(e.amount_cents), 0) AS sum FROM bounty_ledger_txns t
		LEFT JOIN bounty_ledger_entries e ON e.txn_id = t.id GROUP BY t.id, t.key
		HAVING COALESCE(SUM(e.amount_cents), 0) <> 0 OR COUNT(e.id) < 2`).Scan(&bad).Error; err != nil {
		return nil, fmt.Errorf("audit ledger: %w", err)
	}
	var out []string
	for _, b := range bad {
		out = append(out, fmt.Sprintf("transaction %s sums to %d cents", b.Key, b.Sum))
	}
	var keys []string
	if err := db.Raw(`SELECT 'credit ' || c.id FROM bounty_credits c WHERE c.state = 'paid' AND NOT EXISTS
		(SELECT 1 FROM bounty_ledger_txns t WHERE t.key = 'transfer:' || c.id)`).Scan(&keys).Error; err != nil {
		return nil, fmt.Errorf("audit credits: %w", err)
	}
	for _, k := range keys {
		out = append(out, k+" is paid without a transfer in the ledger")
	}
	keys = nil
	if err := db.Raw(`SELECT 'funding ' || f.id FROM bounty_fundings f WHERE f.state IN ('funded', 'refunding', 'refunded') AND NOT EXISTS
		(SELECT 1 FROM bounty_ledger_txns t WHERE t.key = 'funding:' || f.id)`).Scan(&keys).Error; err != nil {
		return nil, fmt.Errorf("audit fundings: %w", err)
	}
	for _, k := range keys {
		out = append(out, k+" is funded without a ledger entry")
	}
	var pools []struct {
		ID             int64
		Stored, Ledger int64
	}
	if err := db.Raw(`SELECT b.id, b.pool_cents AS stored, COALESCE(l.sum, 0) AS ledger FROM bounties b LEFT JOIN
		(SELECT e.account, SUM(e.amount_cents) AS sum FROM bounty_ledger_entries e JOIN bounty_ledger_txns t ON t.id = e.txn_id
		WHERE e.account LIKE 'bounty:%' AND t.kind IN ? GROUP BY e.account) l ON l.account = 'bounty:' || b.id
		WHERE b.pool_cents <> COALESCE(l.sum, 0)`, poolKinds).Scan(&pools).Error; err != nil {
		return nil, fmt.Errorf("audit pools: %w", err)
	}
	for _, p := range pools {
		out = append(out, fmt.Sprintf("bounty %d stores a pool of %d cents, the ledger says %d", p.ID, p.Stored, p.Ledger))
	}
	var neg []Imbalance
	if err := db.Raw(`SELECT account AS key, SUM(amount_cents) AS sum FROM bounty_ledger_entries
		WHERE account LIKE 'bounty:%' OR account LIKE 'payable:%' GROUP BY account HAVING SUM(amount_cents) < 0`).Scan(&neg).Error; err != nil {
		return nil, fmt.Errorf("audit balances: %w", err)
	}
	for _, n := range neg {
		out = append(out, fmt.Sprintf("account %s is overdrawn at %d cents", n.Key, n.Sum))
	}
	return out, nil
}

// Reconcile compares the newest paid and reversed payouts (up to limit) with Stripe's own
// record of their transfers — amount, destination account, reversal —, looks through Stripe's
// newest transfers (up to limit) for ones this forge made that no payout records, and lists
// payouts stuck in flight for over an hour. It returns what disagrees, or nothing.
func (s *Service) Reconcile(ctx context.Context, limit int) ([]string, error) {
	if s.cfg.Stripe == nil {
		return nil, refuse(ErrRefused, "reconciling needs a Stripe key")
	}
	if limit <= 0 {
		limit = 1000
	}
	db := s.db.WithContext(ctx)
	var cs []Credit
	if err := db.Raw(`SELECT * FROM bounty_credits WHERE state IN ('paid', 'reversed') AND transfer_id IS NOT NULL ORDER BY id DESC LIMIT ?`, limit).Scan(&cs).Error; err != nil {
		return nil, fmt.Errorf("paid credits: %w", err)
	}
	var out []string
	for _, c := range cs {
		t, err := s.cfg.Stripe.getTransfer(ctx, *c.TransferID)
		if err != nil {
			out = append(out, fmt.Sprintf("payout %d (@%s, %s): %v", c.ID, c.Recipient, Cents(c.AmountCents), err))
			continue
		}
		acct, err := accountOf(db, c.Recipient)
		if err != nil {
			return nil, err
		}
		switch {
		case t.Amount != c.AmountCents:
			out = append(out, fmt.Sprintf("payout %d: Stripe transfer %s is %s, the ledger says %s", c.ID, t.ID, Cents(t.Amount), Cents(c.AmountCents)))
		case t.Destination == nil || acct == nil || t.Destination.ID != acct.StripeAccountID:
			out = append(out, fmt.Sprintf("payout %d: Stripe transfer %s went to another account than @%s's", c.ID, t.ID, c.Recipient))
		case c.State == CreditPaid && t.AmountReversed > 0:
			out = append(out, fmt.Sprintf("payout %d: Stripe reversed %s of transfer %s but the ledger has no reversal", c.ID, Cents(t.AmountReversed), t.ID))
		case c.State == CreditReversed && t.AmountReversed == 0:
			out = append(out, fmt.Sprintf("payout %d: the ledger has a reversal Stripe does not show on transfer %s", c.ID, t.ID))
		}
	}
	more, err := s.unrecordedTransfers(ctx, limit)
	if err != nil {
		return nil, err
	}
	out = append(out, more...)
	var stuck []Credit
	if err := db.Raw(`SELECT * FROM bounty_credits WHERE state = 'transferring' AND transferring_since < ?`, s.now().Add(-time.Hour)).Scan(&stuck).Error; err != nil {
		return nil, fmt.Errorf("stuck credits: %w", err)
	}
	for _, c := range stuck {
		out = append(out, fmt.Sprintf("payout %d (@%s, %s) has been transferring since %s under key %s", c.ID, c.Recipient, Cents(c.AmountCents), day(*c.TransferringSince), c.IdempotencyKey))
	}
	return out, nil
}

// unrecordedTransfers lists Stripe's newest transfers (up to limit) that carry this forge's
// metadata but that no payout here records: a transfer whose payout row is gone, or whose
// payout is not in flight yet records no transfer (a retry under a new key could pay twice).
// Transfers without our metadata (made in the dashboard, or by other software on the same
// account) are not ours to judge.
func (s *Service) unrecordedTransfers(ctx context.Context, limit int) ([]string, error) {
	ts, err := s.cfg.Stripe.transfers(ctx, limit)
	if err != nil {
		return nil, err
	}
	var mine []*stripe.Transfer
	var ids, keys []string
	for _, t := range ts {
		if t.Metadata["idempotency_key"] != "" || t.Metadata["credit_id"] != "" {
			mine, ids, keys = append(mine, t), append(ids, t.ID), append(keys, t.Metadata["idempotency_key"])
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	var cs []Credit
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounty_credits WHERE transfer_id IN ? OR idempotency_key IN ?`, ids, keys).Scan(&cs).Error; err != nil {
		return nil, fmt.Errorf("payouts of Stripe transfers: %w", err)
	}
	var out []string
	for _, t := range mine {
		key := t.Metadata["idempotency_key"]
		var byKey *Credit
		recorded := false
		for i, c := range cs {
			recorded = recorded || c.TransferID != nil && *c.TransferID == t.ID
			if key != "" && c.IdempotencyKey == key {
				byKey = &cs[i]
			}
		}
		switch {
		case recorded:
		case byKey == nil:
			out = append(out, fmt.Sprintf("Stripe transfer %s (%s, for @%s, payout %s, key %s) has no payout here", t.ID, Cents(t.Amount),
				t.Metadata["github_login"], t.Metadata["credit_id"], key))
		case byKey.TransferID != nil:
			out = append(out, fmt.Sprintf("Stripe transfer %s (%s) was made for payout %d (@%s), which records transfer %s instead", t.ID, Cents(t.Amount),
				byKey.ID, byKey.Recipient, *byKey.TransferID))
		case byKey.State != CreditTransferring:
			out = append(out, fmt.Sprintf("Stripe transfer %s (%s) was made for payout %d (@%s), which is %s and records no transfer", t.ID, Cents(t.Amount),
				byKey.ID, byKey.Recipient, strings.ReplaceAll(byKey.State, "_", " ")))
		}
	}
	return out, nil
}
