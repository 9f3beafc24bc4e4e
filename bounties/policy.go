package bounties

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Policy is a repository's rules against claim floods and for payouts, normally read by the
// bot from the repository's .gradforge.yml and stored with SetPolicy. A repository without a
// stored policy gets DefaultPolicy.
type Policy struct {
	// FirstPRCanClaim lets a contributor's first merged PR claim a bounty (tinygrad's rule
	// says no: show you can land a PR before racing for money).
	FirstPRCanClaim bool `gorm:"column:first_pr_can_claim"`
	// MaxActiveAttempts caps the bounties one contributor may lock at once.
	MaxActiveAttempts int
	// MinAccountAgeDays refuses attempts and claims from younger GitHub accounts.
	MinAccountAgeDays int
	// AttemptDays is how long a lock lasts before it releases itself.
	AttemptDays int
	// BountyDays makes new bounties expire (and refund) after that many days; 0 never.
	BountyDays int
	// AutoApprove pays a won claim without waiting for /approve-payout.
	AutoApprove bool
}

// DefaultPolicy is the policy of a repository that set none.
var DefaultPolicy = Policy{MaxActiveAttempts: 2, AttemptDays: 7}

func (p Policy) check() error {
	switch {
	case p.MaxActiveAttempts < 0 || p.MaxActiveAttempts > 100:
		return refuse(ErrBadInput, "max active attempts must be between 0 and 100, not %d", p.MaxActiveAttempts)
	case p.MinAccountAgeDays < 0 || p.MinAccountAgeDays > 3650:
		return refuse(ErrBadInput, "minimum account age must be between 0 and 3650 days, not %d", p.MinAccountAgeDays)
	case p.AttemptDays < 1 || p.AttemptDays > 365:
		return refuse(ErrBadInput, "attempt days must be between 1 and 365, not %d", p.AttemptDays)
	case p.BountyDays < 0 || p.BountyDays > 3650:
		return refuse(ErrBadInput, "bounty days must be between 0 (never expire) and 3650, not %d", p.BountyDays)
	}
	return nil
}

// SetPolicy stores a repository's policy; the bot calls it when it reads .gradforge.yml.
func (s *Service) SetPolicy(ctx context.Context, repo, actor string, p Policy) error {
	if err := validRepo(repo); err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO bounty_policies (repo, first_pr_can_claim, max_active_attempts, min_account_age_days, attempt_days, bounty_days, auto_approve, updated_by, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET first_pr_can_claim = excluded.first_pr_can_claim, max_active_attempts = excluded.max_active_attempts,
		min_account_age_days = excluded.min_account_age_days, attempt_days = excluded.attempt_days, bounty_days = excluded.bounty_days,
		auto_approve = excluded.auto_approve, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		repo, p.FirstPRCanClaim, p.MaxActiveAttempts, p.MinAccountAgeDays, p.AttemptDays, p.BountyDays, p.AutoApprove, actor, s.now()).Error
	if err != nil {
		return fmt.Errorf("set policy of %s: %w", repo, err)
	}
	return nil
}

// Policy returns a repository's policy, DefaultPolicy when it stored none.
func (s *Service) Policy(ctx context.Context, repo string) (Policy, error) {
	return policyOf(s.db.WithContext(ctx), repo)
}

func policyOf(tx *gorm.DB, repo string) (Policy, error) {
	var ps []Policy
	if err := tx.Raw(`SELECT first_pr_can_claim, max_active_attempts, min_account_age_days, attempt_days, bounty_days, auto_approve
		FROM bounty_policies WHERE repo = ?`, repo).Scan(&ps).Error; err != nil {
		return Policy{}, fmt.Errorf("policy of %s: %w", repo, err)
	}
	if len(ps) == 0 {
		return DefaultPolicy, nil
	}
	return ps[0], nil
}

// Contributor is what the caller knows about a GitHub user from GitHub itself, used by the
// claim-flood rules.
type Contributor struct {
	Login string
	// CreatedAt is the GitHub account's creation time (zero: unknown, which fails a minimum
	// age rule).
	CreatedAt time.Time
	// MergedPRs counts the user's merged pull requests in the repository, not counting the
	// one being claimed with.
	MergedPRs int
}

// floodCheck applies the repository's rules to a contributor who wants to lock or claim a
// bounty, and explains the first one that refuses.
func (s *Service) floodCheck(tx *gorm.DB, repo string, p Policy, c Contributor, what string) error {
	if ban, err := activeBan(tx, repo, c.Login); err != nil {
		return err
	} else if ban != nil {
		why := ""
		if ban.Reason != "" {
			why = ": " + ban.Reason
		}
		return refuse(ErrRefused, "@%s is banned from bounties in %s by @%s%s", c.Login, repo, ban.BannedBy, why)
	}
	if p.MinAccountAgeDays > 0 {
		age := s.now().Sub(c.CreatedAt)
		if c.CreatedAt.IsZero() || age < time.Duration(p.MinAccountAgeDays)*24*time.Hour {
			return refuse(ErrRefused, "%s needs a GitHub account at least %d days old in %s; @%s's is %d days old", what, p.MinAccountAgeDays, repo, c.Login, int(age.Hours()/24))
		}
	}
	if !p.FirstPRCanClaim && c.MergedPRs == 0 {
		return refuse(ErrRefused, "%s needs a merged pull request in %s first: a contributor's first merged PR cannot be a bounty claim here. Land a small fix, then come back", what, repo)
	}
	return nil
}

// Ban is a maintainer's ban of a user from a repository's bounties.
type Ban struct {
	ID        int64
	Repo      string
	Login     string
	BannedBy  string
	Reason    string
	CreatedAt time.Time
}

func activeBan(tx *gorm.DB, repo, l string) (*Ban, error) {
	var bans []Ban
	if err := tx.Raw(`SELECT id, repo, login, banned_by, reason, created_at FROM bounty_bans WHERE repo = ? AND login = ? AND lifted_at IS NULL`, repo, l).Scan(&bans).Error; err != nil {
		return nil, fmt.Errorf("bans of @%s: %w", l, err)
	}
	if len(bans) == 0 {
		return nil, nil
	}
	return &bans[0], nil
}

// BanInput is /bounty-ban @user (or its lifting).
type BanInput struct {
	Repo       string
	Login      string
	Actor      string
	Maintainer bool
	Reason     string
	Lift       bool
}

// Ban bans (or with Lift, unbans) a user from a repository's bounties: their active locks end
// and their pending claims lose, each saying why.
func (s *Service) Ban(ctx context.Context, in BanInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	who, err := login(in.Login)
	if err != nil {
		return Result{}, err
	}
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers of %s may ban or unban bounty hunters", in.Repo)
	}
	now := s.now()
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		if in.Lift {
			n, err := exec(tx, `UPDATE bounty_bans SET lifted_by = ?, lifted_at = ? WHERE repo = ? AND login = ? AND lifted_at IS NULL`, in.Actor, now, in.Repo, who)
			if err != nil {
				return fmt.Errorf("lift ban: %w", err)
			}
			res = Result{Changed: n > 0, Message: fmt.Sprintf("@%s may work on bounties in %s again.", who, in.Repo)}
			if n == 0 {
				res.Message = fmt.Sprintf("@%s was not banned from bounties in %s.", who, in.Repo)
				return nil
			}
			return event(tx, now, nil, in.Repo, 0, "unban", in.Actor, who, res.Message)
		}
		n, err := exec(tx, `INSERT INTO bounty_bans (repo, login, banned_by, reason, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, in.Repo, who, in.Actor, in.Reason, now)
		if err != nil {
			return fmt.Errorf("ban: %w", err)
		}
		if n == 0 {
			res = Result{Message: fmt.Sprintf("@%s is already banned from bounties in %s.", who, in.Repo)}
			return nil
		}
		why := "banned from bounties in " + in.Repo + " by @" + in.Actor
		var locks []Attempt
		if err := tx.Raw(`SELECT a.* FROM bounty_attempts a WHERE a.repo = ? AND a.login = ? AND a.state = 'active'`, in.Repo, who).Scan(&locks).Error; err != nil {
			return fmt.Errorf("ban: %w", err)
		}
		for _, a := range locks {
			if err := endAttempt(tx, o, a, AttemptUnlocked, in.Actor, why, now); err != nil {
				return err
			}
		}
		var claims []Claim
		if err := tx.Raw(`SELECT * FROM bounty_claims WHERE repo = ? AND author = ? AND state = 'pending'`, in.Repo, who).Scan(&claims).Error; err != nil {
			return fmt.Errorf("ban: %w", err)
		}
		for _, c := range claims {
			if err := loseClaim(tx, o, c, why, now); err != nil {
				return err
			}
		}
		res = Result{Changed: true, Message: fmt.Sprintf("@%s is banned from bounties in %s; %d lock(s) released and %d pending claim(s) closed.", who, in.Repo, len(locks), len(claims))}
		return event(tx, now, nil, in.Repo, 0, "ban", in.Actor, who, res.Message+" "+in.Reason)
	})
	if err != nil && !errors.Is(err, ErrRefused) {
		return Result{}, err
	}
	return res, err
}
