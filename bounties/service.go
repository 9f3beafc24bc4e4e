package bounties

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Sentinel errors callers branch on. Every error returned by a command wraps one of them and
// carries a sentence for people, e.g. "@bob already holds the lock on #12 until 2 Jan".
var (
	// ErrBadInput means the request itself is malformed: a zero, negative or absurd amount, an
	// empty login, an unknown state. Nothing was written.
	ErrBadInput = errors.New("bad input")
	// ErrRefused means the request is well formed but a rule forbids it now (a lock held by
	// someone else, a ban, the first-merged-PR rule). Nothing was written.
	ErrRefused = errors.New("refused")
	// ErrNotFound means the bounty, claim, credit or proposal named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrForbidden means the actor may not do this (not a maintainer, not the PR's author).
	ErrForbidden = errors.New("forbidden")
	// ErrStripe means Stripe could not be reached or refused; money state is unchanged or
	// left for the retry worker, never guessed.
	ErrStripe = errors.New("stripe")
	// ErrBadSignature means a Stripe webhook failed signature verification.
	ErrBadSignature = errors.New("bad stripe signature")
)

// refuse builds an error that wraps kind and reads as the sentence given.
func refuse(kind error, format string, args ...any) error {
	return &Refusal{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Refusal is the error commands return when they do nothing: Reason is the sentence to show
// the person who asked, Kind the sentinel to branch on.
type Refusal struct {
	Kind   error
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }
func (r *Refusal) Unwrap() error { return r.Kind }

// Reason returns the human sentence inside err when it is a refusal, else err's text.
func Reason(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// Notice is what the bot should tell people about one issue or pull request: Markdown is the
// complete current bounty status for that thread (so sending it twice is harmless and the
// bot can replace its section of its one comment), Event the one-line news that caused it.
type Notice struct {
	Repo         string
	Number       int
	Event        string
	Markdown     string
	AddLabels    []string
	RemoveLabels []string
}

// Notifier delivers notices; the bot implements it by editing its comment and labels.
// A failure is logged and never undoes a money change.
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// Config is what a Service needs beyond its database.
type Config struct {
	// Stripe is the Stripe client; nil disables Stripe: checkout funding and onboarding are
	// refused with a reason, and approved payouts wait for it.
	Stripe *Stripe
	// Notifier receives notices; nil drops them.
	Notifier Notifier
	// WebhookSecret verifies /webhooks/stripe (whsec_…); empty refuses every webhook.
	WebhookSecret string
	// BaseURL is this server's public URL, used for Checkout and onboarding return links.
	BaseURL string
	// SignedIn returns the GitHub login signed in on a web request ("" for none), and ok
	// false when this forge has no sign-in at all; the web app supplies it. Onboarding pages
	// hand out a Stripe link only to the person it is for: a Stripe onboarding link lets
	// whoever opens it set the bank account that receives that person's money, so it is never
	// posted in a public comment. Nil (or ok false) refuses those pages.
	SignedIn func(r *http.Request) (login string, ok bool)
	// MaxCents caps one amount (default $100,000), so a typo cannot fund or pay a fortune.
	MaxCents int64
	// TransferLease is how long a transfer may stay in flight before the retry worker asks
	// Stripe again with the same idempotency key (default 2 minutes).
	TransferLease time.Duration
	// ProposerMinPaid is how many paid bounties make a contributor a proposer (default 3).
	ProposerMinPaid int
	// Now returns the current time (tests move it); default time.Now.
	Now func() time.Time
	// Log receives structured logs; default slog.Default().
	Log *slog.Logger
}

// Service is the bounties API. Its zero value is not usable; build one with New.
type Service struct {
	db  *gorm.DB
	cfg Config
	log *slog.Logger
	// crashAfterTransfer, set only by tests, runs after Stripe accepted a transfer and
	// before the database records it, standing in for a crash there.
	crashAfterTransfer func(creditID int64) error
}

// New returns a Service over a migrated database.
func New(db *gorm.DB, cfg Config) *Service {
	if cfg.MaxCents <= 0 {
		cfg.MaxCents = 100_000_00
	}
	if cfg.TransferLease <= 0 {
		cfg.TransferLease = 2 * time.Minute
	}
	if cfg.ProposerMinPaid <= 0 {
		cfg.ProposerMinPaid = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Service{db: db, cfg: cfg, log: cfg.Log}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Result is what a command did, in words for people, plus the thread it concerns.
type Result struct {
	Message string
	// Link is a URL the person must open (a Checkout page, a Stripe onboarding link), or "".
	Link string
	// Changed is false when the command was a repeat that changed nothing.
	Changed bool
}

// outbox collects notices inside a transaction so they are sent only after it commits.
type outbox struct{ threads map[thread]string }

type thread struct {
	repo   string
	number int
}

func (o *outbox) add(repo string, number int, event string) {
	if o.threads == nil {
		o.threads = map[thread]string{}
	}
	k := thread{repo, number}
	if prev := o.threads[k]; prev != "" {
		event = prev + "\n" + event
	}
	o.threads[k] = event
}

// flush renders each touched thread's status and sends it; failures are logged only.
func (s *Service) flush(ctx context.Context, o *outbox) {
	if s.cfg.Notifier == nil || o == nil {
		return
	}
	for k, ev := range o.threads {
		n, err := s.status(ctx, k.repo, k.number)
		if err != nil {
			s.log.ErrorContext(ctx, "render bounty status", "repo", k.repo, "number", k.number, "err", err)
			continue
		}
		n.Event = ev
		if err := s.cfg.Notifier.Notify(ctx, n); err != nil {
			s.log.ErrorContext(ctx, "notify", "repo", k.repo, "number", k.number, "err", err)
		}
	}
}

// tx runs fn in a transaction and then sends the notices it queued.
func (s *Service) tx(ctx context.Context, fn func(tx *gorm.DB, o *outbox) error) error {
	o := &outbox{}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return fn(tx, o) })
	if err != nil {
		return err
	}
	s.flush(ctx, o)
	return nil
}

// exec runs a conditional statement and reports how many rows it changed.
func exec(tx *gorm.DB, sql string, args ...any) (int64, error) {
	r := tx.Exec(sql, args...)
	return r.RowsAffected, r.Error
}

// isUnique reports whether err is a unique-constraint violation on either database.
func isUnique(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// event records one line of history in the same transaction as the change it describes.
func event(tx *gorm.DB, at time.Time, bountyID *int64, repo string, number int, kind, actor, subject, msg string) error {
	err := tx.Exec(`INSERT INTO bounty_events (bounty_id, repo, number, kind, actor, subject, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		bountyID, repo, number, kind, actor, subject, msg, at).Error
	if err != nil {
		return fmt.Errorf("record %s event: %w", kind, err)
	}
	return nil
}

// validRepo checks "owner/name".
func validRepo(repo string) error {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.ContainsAny(name, "/ \t\n") || strings.ContainsAny(owner, " \t\n") {
		return refuse(ErrBadInput, "repository %q is not owner/name", repo)
	}
	return nil
}

// login normalises a GitHub login: no leading @, lower case (GitHub logins are
// case-insensitive), and checks its shape.
func login(l string) (string, error) {
	l = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(l), "@"))
	if l == "" || len(l) > 39+5 || strings.ContainsAny(l, " \t\n/@:") {
		return "", refuse(ErrBadInput, "%q is not a GitHub login", l)
	}
	return l, nil
}

// checkAmount refuses zero, negative and absurd amounts.
func (s *Service) checkAmount(cents int64) error {
	switch {
	case cents <= 0:
		return refuse(ErrBadInput, "amount %s must be positive", Cents(cents))
	case cents > s.cfg.MaxCents:
		return refuse(ErrBadInput, "amount %s is above this forge's limit of %s per bounty, tip or payout", Cents(cents), Cents(s.cfg.MaxCents))
	}
	return nil
}
