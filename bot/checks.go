package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/ci"
)

// Checks implements ci.Checks with the App's installation client for each repository:
// check runs through the Checks API, the comment as a section of the bot's one comment.
type Checks struct{ Bot *Bot }

var _ ci.Checks = Checks{}

func ghOutput(o *ci.Output) *github.CheckRunOutput {
	if o == nil {
		return nil
	}
	out := &github.CheckRunOutput{Title: github.String(o.Title), Summary: github.String(o.Summary)}
	if o.Text != "" {
		out.Text = github.String(o.Text)
	}
	for _, a := range o.Annotations {
		ann := &github.CheckRunAnnotation{Path: github.String(a.Path), StartLine: github.Int(a.StartLine), EndLine: github.Int(max(a.EndLine, a.StartLine)),
			AnnotationLevel: github.String(a.Level), Message: github.String(a.Message)}
		if a.Title != "" {
			ann.Title = github.String(a.Title)
		}
		if a.RawDetails != "" {
			ann.RawDetails = github.String(a.RawDetails)
		}
		out.Annotations = append(out.Annotations, ann)
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateCheckRun creates a check run and returns its ID.
func (k Checks) CreateCheckRun(ctx context.Context, repo string, run ci.CheckRun) (int64, error) {
	gh, err := k.Bot.ClientFor(ctx, repo)
	if err != nil {
		return 0, err
	}
	owner, name, _ := strings.Cut(repo, "/")
	opt := github.CreateCheckRunOptions{Name: run.Name, HeadSHA: run.HeadSHA, ExternalID: optional(run.ExternalID), DetailsURL: optional(run.DetailsURL),
		Status: optional(run.Status), Conclusion: optional(run.Conclusion), Output: ghOutput(run.Output)}
	now := &github.Timestamp{Time: time.Now().UTC()}
	if run.Status == ci.InProgress || run.Status == ci.Completed {
		opt.StartedAt = now
	}
	if run.Conclusion != "" {
		opt.CompletedAt = now
	}
	cr, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, opt)
	if err != nil {
		return 0, fmt.Errorf("create check run %s on %s@%.7s: %w", run.Name, repo, run.HeadSHA, err)
	}
	return cr.GetID(), nil
}

// UpdateCheckRun changes a check run; empty fields stay as they are.
func (k Checks) UpdateCheckRun(ctx context.Context, repo string, id int64, run ci.CheckRun) error {
	gh, err := k.Bot.ClientFor(ctx, repo)
	if err != nil {
		return err
	}
	owner, name, _ := strings.Cut(repo, "/")
	opt := github.UpdateCheckRunOptions{Name: run.Name, ExternalID: optional(run.ExternalID), DetailsURL: optional(run.DetailsURL),
		Status: optional(run.Status), Conclusion: optional(run.Conclusion), Output: ghOutput(run.Output)}
	if run.Conclusion != "" {
		opt.CompletedAt = &github.Timestamp{Time: time.Now().UTC()}
	}
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, owner, name, id, opt); err != nil {
		return fmt.Errorf("update check run %d on %s: %w", id, repo, err)
	}
	return nil
}

// Comment sets section key of the bot's comment on a pull request.
func (k Checks) Comment(ctx context.Context, repo string, number int, key, body string) error {
	gh, err := k.Bot.ClientFor(ctx, repo)
	if err != nil {
		return err
	}
	return k.Bot.SetSection(ctx, gh, repo, number, key, body)
}

// Label adds and removes labels on a pull request.
func (k Checks) Label(ctx context.Context, repo string, number int, add, remove []string) error {
	gh, err := k.Bot.ClientFor(ctx, repo)
	if err != nil {
		return err
	}
	return Label(ctx, gh, repo, number, add, remove)
}
