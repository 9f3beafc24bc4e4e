package bounties

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// AttemptInput is /attempt #N: a contributor asks to lock a bounty while they work on it.
type AttemptInput struct {
	Repo  string
	Issue int
	Who   Contributor
}

// Attempt locks an open bounty for one contributor for the repository's attempt period
// (default 7 days). It refuses, saying why, when someone else holds the lock, when the
// contributor already holds the maximum number of locks, or when a claim-flood rule applies.
// Holding the lock already is not an error: the Result says until when.
func (s *Service) Attempt(ctx context.Context, in AttemptInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	who, err := login(in.Who.Login)
	if err != nil {
		return Result{}, err
	}
	in.Who.Login = who
	now := s.now()
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		if err := s.expireAttempts(tx, o, "repo = ?", in.Repo); err != nil {
			return err
		}
		b, err := liveBounty(tx, in.Repo, in.Issue)
		if err != nil {
			return err
		}
		if b.State != BountyOpen {
			return refuse(ErrRefused, "the bounty on %s#%d is %s; only open bounties can be attempted", b.Repo, b.Issue, b.State)
		}
		var held []Attempt
		if err := tx.Raw(`SELECT * FROM bounty_attempts WHERE bounty_id = ? AND state = 'active'`, b.ID).Scan(&held).Error; err != nil {
			return fmt.Errorf("lock of bounty %d: %w", b.ID, err)
		}
		if len(held) > 0 {
			h := held[0]
			if h.Login == who {
				res = Result{Message: fmt.Sprintf("@%s already holds the lock on %s#%d until %s.", who, b.Repo, b.Issue, day(h.ExpiresAt))}
				return nil
			}
			return refuse(ErrRefused, "%s#%d is locked by @%s until %s; you can still open a PR, but the lock holder goes first. A maintainer can /unlock it", b.Repo, b.Issue, h.Login, day(h.ExpiresAt))
		}
		p, err := policyOf(tx, in.Repo)
		if err != nil {
			return err
		}
		if err := s.floodCheck(tx, in.Repo, p, in.Who, "Locking a bounty"); err != nil {
			return err
		}
		// Lock the person's pipeline row so two attempts by one person on two bounties at
		// once cannot both pass the count below.
		if err := s.recomputeStage(tx, who, "", "first bounty attempt"); err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE bounty_people SET stage_at = stage_at WHERE login = ?`, who).Error; err != nil {
			return fmt.Errorf("lock @%s: %w", who, err)
		}
		var active int64
		if err := tx.Raw(`SELECT COUNT(*) FROM bounty_attempts WHERE repo = ? AND login = ? AND state = 'active'`, in.Repo, who).Scan(&active).Error; err != nil {
			return fmt.Errorf("count locks of @%s: %w", who, err)
		}
		if active >= int64(p.MaxActiveAttempts) {
			return refuse(ErrRefused, "@%s already holds %d bounty lock(s) in %s, the most allowed; finish or release one first", who, active, in.Repo)
		}
		until := now.Add(time.Duration(p.AttemptDays) * 24 * time.Hour)
		n, err := exec(tx, `INSERT INTO bounty_attempts (bounty_id, repo, login, state, started_at, expires_at) VALUES (?, ?, ?, 'active', ?, ?) ON CONFLICT DO NOTHING`, b.ID, b.Repo, who, now, until)
		if err != nil {
			return fmt.Errorf("lock bounty %d: %w", b.ID, err)
		}
		if n == 0 {
			return refuse(ErrRefused, "someone locked %s#%d a moment ago; try again to see who", b.Repo, b.Issue)
		}
		res = Result{Changed: true, Message: fmt.Sprintf("@%s locked %s#%d until %s.", who, b.Repo, b.Issue, day(until))}
		o.add(b.Repo, b.Issue, res.Message)
		return event(tx, now, &b.ID, b.Repo, b.Issue, "attempt", who, who, res.Message)
	})
	return res, err
}

func day(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// LockInput is a maintainer's /unlock #N or an extension of a lock, or a holder giving up.
type LockInput struct {
	Repo       string
	Issue      int
	Actor      string
	Maintainer bool
	// Days extends the lock by that many days (Extend only).
	Days int
}

// Unlock ends a bounty's lock: a maintainer may end anyone's, a holder their own.
func (s *Service) Unlock(ctx context.Context, in LockInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	actor, err := login(in.Actor)
	if err != nil {
		return Result{}, err
	}
	now := s.now()
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		b, err := liveBounty(tx, in.Repo, in.Issue)
		if err != nil {
			return err
		}
		var held []Attempt
		if err := tx.Raw(`SELECT * FROM bounty_attempts WHERE bounty_id = ? AND state = 'active'`, b.ID).Scan(&held).Error; err != nil {
			return fmt.Errorf("lock of bounty %d: %w", b.ID, err)
		}
		if len(held) == 0 {
			res = Result{Message: fmt.Sprintf("%s#%d is not locked.", b.Repo, b.Issue)}
			return nil
		}
		h := held[0]
		to, why := AttemptUnlocked, "unlocked by maintainer @"+actor
		switch {
		case h.Login == actor && !in.Maintainer:
			to, why = AttemptReleased, "released by @"+actor
		case !in.Maintainer:
			return refuse(ErrForbidden, "only @%s or a maintainer of %s can release this lock", h.Login, in.Repo)
		}
		if err := endAttempt(tx, o, h, to, actor, why, now); err != nil {
			return err
		}
		res = Result{Changed: true, Message: fmt.Sprintf("@%s's lock on %s#%d was %s.", h.Login, b.Repo, b.Issue, why)}
		return nil
	})
	return res, err
}

// Extend lengthens the active lock on a bounty; maintainers only.
func (s *Service) Extend(ctx context.Context, in LockInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers of %s may extend a lock", in.Repo)
	}
	if in.Days < 1 || in.Days > 365 {
		return Result{}, refuse(ErrBadInput, "a lock is extended by 1 to 365 days, not %d", in.Days)
	}
	now := s.now()
	var res Result
	err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		b, err := liveBounty(tx, in.Repo, in.Issue)
		if err != nil {
			return err
		}
		var held []Attempt
		if err := tx.Raw(`SELECT * FROM bounty_attempts WHERE bounty_id = ? AND state = 'active'`, b.ID).Scan(&held).Error; err != nil {
			return fmt.Errorf("lock of bounty %d: %w", b.ID, err)
		}
		if len(held) == 0 {
			return refuse(ErrRefused, "%s#%d is not locked, so there is nothing to extend", b.Repo, b.Issue)
		}
		h := held[0]
		until := h.ExpiresAt.Add(time.Duration(in.Days) * 24 * time.Hour)
		n, err := exec(tx, `UPDATE bounty_attempts SET expires_at = ? WHERE id = ? AND state = 'active'`, until, h.ID)
		if err != nil || n == 0 {
			return fmt.Errorf("extend lock %d (changed %d): %w", h.ID, n, err)
		}
		res = Result{Changed: true, Message: fmt.Sprintf("@%s extended @%s's lock on %s#%d to %s.", in.Actor, h.Login, b.Repo, b.Issue, day(until))}
		o.add(b.Repo, b.Issue, res.Message)
		return event(tx, now, &b.ID, b.Repo, b.Issue, "extend", in.Actor, h.Login, res.Message)
	})
	return res, err
}

// endAttempt is the one place a lock ends.
func endAttempt(tx *gorm.DB, o *outbox, a Attempt, to, actor, why string, now time.Time) error {
	n, err := exec(tx, `UPDATE bounty_attempts SET state = ?, ended_at = ?, ended_by = ?, reason = ? WHERE id = ? AND state = 'active'`, to, now, actor, why, a.ID)
	if err != nil {
		return fmt.Errorf("end lock %d: %w", a.ID, err)
	}
	if n == 0 {
		return nil
	}
	b, err := bountyByID(tx, a.BountyID)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("@%s's lock on %s#%d ended: %s.", a.Login, b.Repo, b.Issue, why)
	o.add(b.Repo, b.Issue, msg)
	return event(tx, now, &b.ID, b.Repo, b.Issue, "lock-"+to, actor, a.Login, msg)
}

// expireAttempts ends locks whose time ran out (those matching the extra condition), saying so.
func (s *Service) expireAttempts(tx *gorm.DB, o *outbox, where string, args ...any) error {
	now := s.now()
	var old []Attempt
	q := `SELECT * FROM bounty_attempts WHERE state = 'active' AND expires_at < ?`
	if where != "" {
		q += " AND " + where
	}
	if err := tx.Raw(q, append([]any{now}, args...)...).Scan(&old).Error; err != nil {
		return fmt.Errorf("expired locks: %w", err)
	}
	for _, a := range old {
		if err := endAttempt(tx, o, a, AttemptExpired, "", "it expired on "+day(a.ExpiresAt)+" and the bounty is open to everyone again", now); err != nil {
			return err
		}
	}
	return nil
}
