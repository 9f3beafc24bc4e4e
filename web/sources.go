package web

import (
	"context"
	"errors"
	"time"
)

// The web app shows data that other packages own. It reads (and, in the maintainer console,
// acts) through the small interfaces below, declared here where they are consumed; the
// adapters in adapt_*.go fit the bounties, ci and runners packages to them. A nil source
// makes its pages say that the part is not running instead of failing.

// ErrNotFound is what a source returns for an object that does not exist; pages answer 404.
var ErrNotFound = errors.New("not found")

// ErrForbidden is what a source returns when the acting person may not do what was asked.
var ErrForbidden = errors.New("forbidden")

// Bounty is one bounty as the board and its page show it.
type Bounty struct {
	ID          int64     `json:"id"`
	Repo        string    `json:"repo"`
	Issue       int       `json:"issue"`
	Title       string    `json:"title"`
	Labels      []string  `json:"labels"`
	AmountCents int64     `json:"amount_cents"`
	Status      string    `json:"status"` // open, claimed, paid, cancelled, expired
	CreatedAt   time.Time `json:"created_at"`
	Sponsors    []Sponsor `json:"sponsors,omitempty"`
	Attempts    []Attempt `json:"attempts,omitempty"`
	Claims      []Claim   `json:"claims,omitempty"`
	Payouts     []Payout  `json:"payouts,omitempty"`
	History     []Event   `json:"history,omitempty"`
}

// IssueURL is the bounty's issue on GitHub.
func (b Bounty) IssueURL() string { return issueURL(b.Repo, b.Issue) }

// Sponsor is one contribution to a bounty's pool.
type Sponsor struct {
	Login       string    `json:"login"`
	AmountCents int64     `json:"amount_cents"`
	At          time.Time `json:"at"`
}

// Attempt is a contributor's lock on a bounty.
type Attempt struct {
	Login     string    `json:"login"`
	StartedAt time.Time `json:"started_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Active    bool      `json:"active"`
}

// Claim is a pull request that says it solves a bounty.
type Claim struct {
	PR     int    `json:"pr"`
	Author string `json:"author"`
	Status string `json:"status"` // pending, won, refused
	Reason string `json:"reason,omitempty"`
}

// Payout is one credit to one recipient.
type Payout struct {
	ID          int64     `json:"id"`
	Repo        string    `json:"repo"`
	Issue       int       `json:"issue"`
	Title       string    `json:"title"`
	Login       string    `json:"login"`
	AmountCents int64     `json:"amount_cents"`
	Status      string    `json:"status"` // awaiting_approval, approved, transferring, paid, failed, declined
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Event is one line of a bounty's or a person's history.
type Event struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
	Text  string    `json:"text"`
}

// BountyFilter selects and orders bounties for the board. Zero values mean "any".
type BountyFilter struct {
	Repo     string `json:"repo,omitempty"`
	Label    string `json:"label,omitempty"`
	Status   string `json:"status,omitempty"`
	Query    string `json:"q,omitempty"` // words that must all appear in the title
	MinCents int64  `json:"min_cents,omitempty"`
	MaxCents int64  `json:"max_cents,omitempty"`
	Sort     string `json:"sort,omitempty"` // amount (largest first), age (oldest first), new (newest first)
	Limit    int    `json:"limit,omitempty"`
	Offset   int    `json:"offset,omitempty"`
}

// Leader is one row of the leaderboard.
type Leader struct {
	Login     string `json:"login"`
	PaidCents int64  `json:"paid_cents"`
	Bounties  int    `json:"bounties"`
}

// Contributor is a person's public record.
type Contributor struct {
	Login     string     `json:"login"`
	Stage     string     `json:"stage"` // contributor, bounty hunter, proposer, candidate, hired
	PaidCents int64      `json:"paid_cents"`
	Paid      []Payout   `json:"paid"`
	Proposals []Proposal `json:"proposals"`
	History   []Event    `json:"history,omitempty"`
}

// Proposal is a bounty a proposer suggested.
type Proposal struct {
	ID          int64     `json:"id"`
	Repo        string    `json:"repo"`
	Login       string    `json:"login"`
	Title       string    `json:"title"`
	AmountCents int64     `json:"amount_cents"`
	Status      string    `json:"status"` // pending, accepted, declined
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Offer is a hiring offer; only maintainers and the person it is for may see it.
type Offer struct {
	Login         string    `json:"login"`
	StipendCents  int64     `json:"stipend_cents"` // per month
	EquityBps     int       `json:"equity_bps"`
	VestingStart  time.Time `json:"vesting_start"`
	CliffMonths   int       `json:"cliff_months"`
	RecordedBy    string    `json:"recorded_by"`
	RecordedAt    time.Time `json:"recorded_at"`
	VestingMonths int       `json:"vesting_months,omitempty"`
}

// PipelineEntry is one person on the hiring board.
type PipelineEntry struct {
	Login     string `json:"login"`
	Stage     string `json:"stage"`
	PaidCents int64  `json:"paid_cents"`
	Bounties  int    `json:"bounties"`
	Proposals int    `json:"proposals"`
	HasOffer  bool   `json:"has_offer"`
}

// MonthTotal is the money paid in one calendar month.
type MonthTotal struct {
	Month time.Time `json:"month"` // first day of the month, UTC
	Cents int64     `json:"cents"`
}

// Bounties is what the public pages read from the bounties package.
type Bounties interface {
	List(ctx context.Context, f BountyFilter) (page []Bounty, total int, err error)
	Get(ctx context.Context, repo string, issue int) (Bounty, error)
	Leaderboard(ctx context.Context, limit int) ([]Leader, error)
	Contributor(ctx context.Context, login string) (Contributor, error)
	PaidPerMonth(ctx context.Context, repo string) ([]MonthTotal, error)
	// OpenTotal is the money on open bounties of one repository, for its badge.
	OpenTotal(ctx context.Context, repo string) (cents int64, count int, err error)
	Repos(ctx context.Context) ([]string, error)
}

// LabelFilter is implemented by bounty sources that can filter by issue label; the board
// shows its label field only for them.
type LabelFilter interface{ FiltersLabels() bool }

// Console is what the maintainer console does through the bounties package. by is the
// signed-in maintainer's login; the web app has already checked that they maintain repo.
type Console interface {
	AwaitingPayouts(ctx context.Context, repo string) ([]Payout, error)
	ApprovePayout(ctx context.Context, repo string, id int64, by string) error
	DeclinePayout(ctx context.Context, repo string, id int64, by, reason string) error
	Proposals(ctx context.Context, repo string) ([]Proposal, error)
	AcceptProposal(ctx context.Context, repo string, id int64, by string) error
	DeclineProposal(ctx context.Context, repo string, id int64, by, reason string) error
	Pipeline(ctx context.Context) ([]PipelineEntry, error)
	// Offer is the person's current offer (nil, nil when there is none) as viewer may see it;
	// the web app has already checked that viewer is the person or a maintainer.
	Offer(ctx context.Context, login, viewer string, viewerMaintainer bool) (*Offer, error)
	RecordOffer(ctx context.Context, o Offer) error
	MarkCandidate(ctx context.Context, login, by string) error
}

// Run is one CI run: the checks of one pull request head.
type Run struct {
	ID        int64     `json:"id"`
	Repo      string    `json:"repo"`
	PR        int       `json:"pr"`
	SHA       string    `json:"sha"`
	Title     string    `json:"title"`
	Status    string    `json:"status"` // queued, in_progress, completed
	CreatedAt time.Time `json:"created_at"`
	Checks    []Check   `json:"checks"`
	Jobs      []Job     `json:"jobs"`
}

// Check is one check run with its gate table.
type Check struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"`
	Conclusion string  `json:"conclusion,omitempty"` // success, failure, neutral, action_required, cancelled
	Summary    string  `json:"summary,omitempty"`
	Tables     []Table `json:"tables,omitempty"`
}

// Table is a gate's result table (lines per file, benchmarks with ratios, op families).
type Table struct {
	Title   string     `json:"title,omitempty"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Job is one runner job of a run.
type Job struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Status    string     `json:"status"` // queued, running, passed, failed, cancelled, infra_failure
	Runner    string     `json:"runner,omitempty"`
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// Artifact is a file a job uploaded.
type Artifact struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// Point is one value at one commit on main.
type Point struct {
	SHA   string    `json:"sha"`
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// Series is a named line on a chart.
type Series struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Points []Point `json:"points"`
}

// CI is what the run pages and charts read from the ci package.
type CI interface {
	Runs(ctx context.Context, repo string, limit int) ([]Run, error)
	Run(ctx context.Context, id int64) (Run, error)
	// SpeedHistory is one series per benchmark over commits on main.
	SpeedHistory(ctx context.Context, repo string) ([]Series, error)
	// LineHistory is the framework core's line count over commits on main.
	LineHistory(ctx context.Context, repo string) (Series, error)
}

// Runner is one self-hosted runner.
type Runner struct {
	ID       int64     `json:"id"`
	Name     string    `json:"name"`
	Labels   []string  `json:"labels"`
	Version  string    `json:"version"`
	GPU      string    `json:"gpu,omitempty"`
	Busy     bool      `json:"busy"`
	LastSeen time.Time `json:"last_seen"`
	Revoked  bool      `json:"revoked,omitempty"`
}

// LogChunk is one numbered piece of a job's log.
type LogChunk struct {
	Seq  int    `json:"seq"`
	Text string `json:"text"`
}

// Runners is what the runners page, the live logs and the console read and do through the
// runners package.
type Runners interface {
	Registered(ctx context.Context) ([]Runner, error)
	// Log returns the chunks of a job's log after sequence number after, and whether the job
	// has finished (no more chunks will come).
	Log(ctx context.Context, jobID int64, after int) (chunks []LogChunk, done bool, err error)
	// Artifacts lists the files a job left (none while it runs).
	Artifacts(ctx context.Context, jobID int64) ([]Artifact, error)
	// JobRunner names the runner that runs, or last ran, a job ("" while none has had it).
	JobRunner(ctx context.Context, jobID int64) (string, error)
	Artifact(ctx context.Context, jobID int64, name string) ([]byte, error)
	CreateToken(ctx context.Context, by string, ttl time.Duration) (token string, expires time.Time, err error)
	Revoke(ctx context.Context, runnerID int64, by string) error
}

// RepoSettings is the per-repository bounty policy maintainers edit in the console. The CI
// gates' line budget and speed threshold are server configuration, and trusted users come
// from the repository's .gradforge.yml, so the console shows those but does not edit them.
type RepoSettings struct {
	Repo              string `json:"repo"`
	AutoApprove       bool   `json:"auto_approve"`         // pay won claims without a maintainer's approval
	FirstPRCanClaim   bool   `json:"first_pr_can_claim"`   // a contributor's first merged PR may claim a bounty
	MaxActiveAttempts int    `json:"max_active_attempts"`  // bounties one contributor may lock at once
	MinAccountAgeDays int    `json:"min_account_age_days"` // younger GitHub accounts may not attempt or claim
	AttemptDays       int    `json:"attempt_days"`         // how long a lock lasts
	BountyDays        int    `json:"bounty_days"`          // new bounties expire (and refund) after this; 0 never
}

// Settings reads and writes repository settings.
type Settings interface {
	Load(ctx context.Context, repo string) (RepoSettings, error)
	Save(ctx context.Context, s RepoSettings, by string) error
}

// Permissions tells a person's permission on a repository, as GitHub's collaborator
// permission API answers it: admin, maintain, write, triage, read or none. The bot's
// installation client provides it in production; tests provide their own.
type Permissions interface {
	Permission(ctx context.Context, repo, login string) (string, error)
}

// isMaintainer is the one rule for who may use the console of a repository.
func isMaintainer(perm string) bool { return perm == "admin" || perm == "maintain" || perm == "write" }
