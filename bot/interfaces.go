package bot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRefused marks an error whose text is meant for the person who asked ("@bob holds the
// lock on #12 until 2 Jan"): the bot replies with it and the job succeeds. Any other error
// from CI or Bounties is treated as transient and the delivery is retried.
var ErrRefused = errors.New("refused")

// Refusef returns an error wrapping ErrRefused whose text is the sentence to show.
func Refusef(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return ErrRefused }

// PullRequest is what the bot tells CI and bounties about a pull request, in plain data.
type PullRequest struct {
	InstallationID int64
	Repo           string // owner/name of the base repository
	Number         int
	Action         string // the pull_request action, or "retest", "ok-to-test"
	Title, Body    string
	Author         string // login, lower case
	// AuthorCreatedAt is when the author's GitHub account was made (zero when unknown).
	AuthorCreatedAt time.Time
	// Trusted is Trust.Trusted for the author: maintainers, collaborators, org members and
	// users the config trusts. Untrusted PRs need /ok-to-test before code runs.
	Trusted          bool
	HeadSHA, HeadRef string
	HeadRepo         string // owner/name of the head repository; differs from Repo for forks
	BaseSHA, BaseRef string
	Merged           bool
	MergedBy         string
	// CoAuthors are the logins named in Co-authored-by trailers (merged PRs only, best effort).
	CoAuthors []string
	Config    *RepoConfig
}

// CheckRequest is a check_suite or check_run event asking for checks.
type CheckRequest struct {
	InstallationID int64
	Repo           string
	Action         string // requested, rerequested or requested_action
	HeadSHA        string
	HeadBranch     string
	SuiteID        int64
	CheckRunID     int64  // check_run events
	Name           string // the check run's name
	ExternalID     string // the check run's external_id, which ci set
	Identifier     string // requested_action's button identifier
	PullNumbers    []int
	Sender         string
}

// CI is what the bot needs from the ci package.
type CI interface {
	// OnPullRequest reacts to opened, reopened and synchronize: create checks, queue jobs
	// (only when pr.Trusted), cancel the previous head's jobs.
	OnPullRequest(ctx context.Context, pr PullRequest) error
	// Retest re-runs the checks of pr's head on request of by (already permitted).
	Retest(ctx context.Context, pr PullRequest, by string) error
	// OkToTest lets an untrusted pr's head run; by is a trusted user.
	OkToTest(ctx context.Context, pr PullRequest, by string) error
	// OnClosed reacts to a pull request closed, merged or not: its unfinished gate jobs are
	// cancelled (a reopen starts them again through OnPullRequest).
	OnClosed(ctx context.Context, pr PullRequest) error
	// OnCheckRequest reacts to check_suite requested/rerequested and check_run
	// rerequested/requested_action.
	OnCheckRequest(ctx context.Context, req CheckRequest) error
}

// BountyRequest is one bounty command with everything the bounties package needs to decide,
// gathered by the bot from GitHub.
type BountyRequest struct {
	// Key is unique per command occurrence (delivery ID and line), stable across retries:
	// use it to make the command idempotent.
	Key    string
	Repo   string
	Number int  // the issue or PR the command was written on
	IsPR   bool // whether Number is a pull request
	Actor  string
	// ActorMaintainer is Trust.Maintainer for the actor; ActorCreatedAt their account's age.
	ActorMaintainer bool
	ActorCreatedAt  time.Time
	Cents           int64          // /bounty, /tip, /propose
	Days            int            // /extend: days added to the lock
	Shares          map[string]int // /shares: weight per recipient login
	Target          Ref            // /attempt, /claim, /unlock: the issue named (defaults to Number)
	Users           []string       // /split, /tip, /bounty-ban
	Title           string         // /propose
	PR              *PullRequest
	Policy          BountyPolicy
	AutoApprove     bool
}

// Bounties is what the bot needs from the bounties package. Each method returns the
// sentence to reply with; errors wrapping ErrRefused are told to the actor.
type Bounties interface {
	Bounty(ctx context.Context, r BountyRequest) (string, error)
	Attempt(ctx context.Context, r BountyRequest) (string, error)
	Claim(ctx context.Context, r BountyRequest) (string, error)
	Split(ctx context.Context, r BountyRequest) (string, error)
	Tip(ctx context.Context, r BountyRequest) (string, error)
	Propose(ctx context.Context, r BountyRequest) (string, error)
	ApprovePayout(ctx context.Context, r BountyRequest) (string, error)
	CancelBounty(ctx context.Context, r BountyRequest) (string, error)
	Unlock(ctx context.Context, r BountyRequest) (string, error)
	Ban(ctx context.Context, r BountyRequest) (string, error)
	// Unban lifts a ban (Users holds the one login).
	Unban(ctx context.Context, r BountyRequest) (string, error)
	// Extend lengthens the lock on Target by Days.
	Extend(ctx context.Context, r BountyRequest) (string, error)
	// SetShares re-divides the payout of the bounty on this thread (the issue, or the one
	// this pull request won) by Shares, before approval.
	SetShares(ctx context.Context, r BountyRequest) (string, error)
	// RetryPayout sends this thread's failed payouts again.
	RetryPayout(ctx context.Context, r BountyRequest) (string, error)
	// PullClosed reports a pull request closed, merged or not: merged ones settle their
	// claims, unmerged ones void them.
	PullClosed(ctx context.Context, pr PullRequest) error
}

// IssueLabels is implemented by a Bounties that keeps issues' labels (for the bounty board):
// the bot tells it each label added to or removed from an issue (issues "labeled" and
// "unlabeled" events). Errors wrapping ErrRefused are logged; others retry the delivery.
type IssueLabels interface {
	IssueLabeled(ctx context.Context, repo string, issue int, label string, removed bool) error
}
