package bounties

import (
	"context"
	"fmt"
	"strings"
)

// Labels the bounties package manages on issues and pull requests.
const (
	LabelBounty  = "bounty"
	LabelClaimed = "bounty-claimed"
	LabelPaid    = "paid"
)

// AmountLabel is the label that shows a pool, e.g. "$1,000".
func AmountLabel(cents int64) string { return Cents(cents).String() }

// status renders the full bounty status of a thread (an issue with a bounty, or a PR that
// claims one, or a tip's thread) with the labels it should carry.
func (s *Service) status(ctx context.Context, repo string, number int) (Notice, error) {
	db := s.db.WithContext(ctx)
	n := Notice{Repo: repo, Number: number}
	var md strings.Builder
	var bs []Bounty
	if err := db.Raw(`SELECT * FROM bounties WHERE repo = ? AND issue = ? ORDER BY id DESC LIMIT 1`, repo, number).Scan(&bs).Error; err != nil {
		return n, fmt.Errorf("status of %s#%d: %w", repo, number, err)
	}
	if len(bs) > 0 {
		b := bs[0]
		p, err := pool(db, b.ID)
		if err != nil {
			return n, err
		}
		var pledged int64
		db.Raw(`SELECT COALESCE(SUM(amount_cents), 0) FROM bounty_fundings WHERE bounty_id = ? AND state = 'pending'`, b.ID).Scan(&pledged)
		fmt.Fprintf(&md, "**Bounty: %s** (%s)", Cents(p), b.State)
		if pledged > 0 {
			fmt.Fprintf(&md, ", %s more pledged and awaiting payment", Cents(pledged))
		}
		md.WriteString("\n")
		var sponsors []struct {
			Sponsor string
			Total   int64
		}
		db.Raw(`SELECT sponsor, SUM(amount_cents) AS total FROM bounty_fundings WHERE bounty_id = ? AND state = 'funded' GROUP BY sponsor ORDER BY total DESC, sponsor`, b.ID).Scan(&sponsors)
		if len(sponsors) > 0 {
			var parts []string
			for _, sp := range sponsors {
				parts = append(parts, fmt.Sprintf("@%s %s", sp.Sponsor, Cents(sp.Total)))
			}
			fmt.Fprintf(&md, "Sponsors: %s\n", strings.Join(parts, ", "))
		}
		var locks []Attempt
		db.Raw(`SELECT * FROM bounty_attempts WHERE bounty_id = ? AND state = 'active'`, b.ID).Scan(&locks)
		for _, a := range locks {
			fmt.Fprintf(&md, "Locked by @%s until %s\n", a.Login, day(a.ExpiresAt))
		}
		var claims []Claim
		db.Raw(`SELECT * FROM bounty_claims WHERE bounty_id = ? ORDER BY id`, b.ID).Scan(&claims)
		for _, c := range claims {
			line := fmt.Sprintf("Claim #%d by @%s: %s", c.PR, c.Author, c.State)
			if c.Reason != "" && c.State != ClaimPending {
				line += " (" + c.Reason + ")"
			}
			md.WriteString(line + "\n")
		}
		live := b.State == BountyOpen || b.State == BountyClaimed || b.State == BountyPaid
		current := ""
		if live && p > 0 {
			current = AmountLabel(p)
			n.AddLabels = append(n.AddLabels, current)
		}
		switch b.State {
		case BountyOpen:
			n.AddLabels = append(n.AddLabels, LabelBounty)
			n.RemoveLabels = append(n.RemoveLabels, LabelClaimed, LabelPaid)
		case BountyClaimed:
			n.AddLabels = append(n.AddLabels, LabelBounty, LabelClaimed)
			n.RemoveLabels = append(n.RemoveLabels, LabelPaid)
		case BountyPaid:
			n.AddLabels = append(n.AddLabels, LabelBounty, LabelPaid)
			n.RemoveLabels = append(n.RemoveLabels, LabelClaimed)
		default:
			n.RemoveLabels = append(n.RemoveLabels, LabelBounty, LabelClaimed)
		}
		// Amount labels the pool showed earlier go, so only the current amount shows.
		var amounts []int64
		db.Raw(`SELECT amount_cents FROM bounty_fundings WHERE bounty_id = ? AND state <> 'pending' ORDER BY id`, b.ID).Scan(&amounts)
		seen := map[string]bool{current: true}
		running := int64(0)
		for _, a := range amounts {
			running += a
			for _, l := range []string{AmountLabel(a), AmountLabel(running)} {
				if !seen[l] {
					seen[l] = true
					n.RemoveLabels = append(n.RemoveLabels, l)
				}
			}
		}
	}
	var cs []Credit
	if err := db.Raw(`SELECT * FROM bounty_credits WHERE repo = ? AND (number = ? OR claim_id IN (SELECT id FROM bounty_claims WHERE repo = ? AND pr = ?)) ORDER BY id`, repo, number, repo, number).Scan(&cs).Error; err != nil {
		return n, fmt.Errorf("credits of %s#%d: %w", repo, number, err)
	}
	for _, c := range cs {
		fmt.Fprintf(&md, "Payout to @%s: %s, %s", c.Recipient, Cents(c.AmountCents), strings.ReplaceAll(c.State, "_", " "))
		if c.Failure != "" && c.State == CreditFailed {
			md.WriteString(" (" + c.Failure + ")")
		}
		if c.Kind == "tip" {
			md.WriteString(" (tip from @" + c.CreatedBy + ")")
		}
		md.WriteString("\n")
	}
	if len(bs) == 0 {
		var claims []Claim
		db.Raw(`SELECT * FROM bounty_claims WHERE repo = ? AND pr = ? ORDER BY id`, repo, number).Scan(&claims)
		for _, c := range claims {
			b, err := bountyByID(db, c.BountyID)
			if err != nil {
				return n, err
			}
			line := fmt.Sprintf("Claims the bounty on #%d: %s", b.Issue, c.State)
			if c.Reason != "" && c.State != ClaimPending {
				line += " (" + c.Reason + ")"
			}
			md.WriteString(line + "\n")
		}
	}
	n.Markdown = strings.TrimSpace(md.String())
	return n, nil
}

// Status returns the bounty status of an issue or pull request as the bot would show it.
func (s *Service) Status(ctx context.Context, repo string, number int) (Notice, error) {
	return s.status(ctx, repo, number)
}
