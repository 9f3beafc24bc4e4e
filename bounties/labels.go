package bounties

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Issue labels are GitHub's: the board shows them and filters by them. The bot passes an
// issue's labels when a bounty is funded (FundInput.Labels) and each change after (Relabel).

// maxLabels is GitHub's limit of labels on one issue.
const maxLabels = 100

// cleanLabels trims label names and drops empty ones and repeats (GitHub's names are unique
// regardless of case), refusing what GitHub could not have sent.
func cleanLabels(in []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, l := range in {
		l = strings.TrimSpace(l)
		if l == "" || seen[strings.ToLower(l)] {
			continue
		}
		if utf8.RuneCountInString(l) > 100 || strings.ContainsAny(l, "\n\r\x00") {
			return nil, refuse(ErrBadInput, "%.40q is not a GitHub label", l)
		}
		seen[strings.ToLower(l)] = true
		out = append(out, l)
	}
	if len(out) > maxLabels {
		return nil, refuse(ErrBadInput, "an issue has at most %d labels, not %d", maxLabels, len(out))
	}
	return out, nil
}

// setLabels replaces an issue's labels.
func setLabels(tx *gorm.DB, repo string, issue int, labels []string) error {
	if err := tx.Exec(`DELETE FROM bounty_issue_labels WHERE repo = ? AND issue = ?`, repo, issue).Error; err != nil {
		return fmt.Errorf("labels of %s#%d: %w", repo, issue, err)
	}
	for _, l := range labels {
		if err := tx.Exec(`INSERT INTO bounty_issue_labels (repo, issue, folded, name) VALUES (?, ?, ?, ?)`, repo, issue, strings.ToLower(l), l).Error; err != nil {
			return fmt.Errorf("label %q of %s#%d: %w", l, repo, issue, err)
		}
	}
	return nil
}

// LabelInput is one label added to or removed from an issue: GitHub's issues "labeled" and
// "unlabeled" events.
type LabelInput struct {
	Repo  string
	Issue int
	Label string
	// Removed is true for "unlabeled".
	Removed bool
}

// Relabel records a label change on an issue that has (or had) a bounty and ignores other
// issues; it reports whether it stored anything. Changes apply one label at a time, so
// repeats are harmless and changes to different labels may arrive in any order; the next
// funding of the bounty replaces the set with GitHub's current one.
func (s *Service) Relabel(ctx context.Context, in LabelInput) (bool, error) {
	if err := validRepo(in.Repo); err != nil {
		return false, err
	}
	ls, err := cleanLabels([]string{in.Label})
	if err != nil {
		return false, err
	}
	if len(ls) == 0 || in.Issue <= 0 {
		return false, refuse(ErrBadInput, "a label change needs an issue and a label name")
	}
	db := s.db.WithContext(ctx)
	var n int64
	if in.Removed {
		n, err = exec(db, `DELETE FROM bounty_issue_labels WHERE repo = ? AND issue = ? AND folded = ?`, in.Repo, in.Issue, strings.ToLower(ls[0]))
	} else {
		n, err = exec(db, `INSERT INTO bounty_issue_labels (repo, issue, folded, name) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM bounties WHERE repo = ? AND issue = ?)
			ON CONFLICT (repo, issue, folded) DO UPDATE SET name = excluded.name`, in.Repo, in.Issue, strings.ToLower(ls[0]), ls[0], in.Repo, in.Issue)
	}
	if err != nil {
		return false, fmt.Errorf("label %q on %s#%d: %w", in.Label, in.Repo, in.Issue, err)
	}
	return n > 0, nil
}
