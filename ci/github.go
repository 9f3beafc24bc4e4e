package ci

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v62/github"
)

// GitHub implements Checks with go-github. Client returns the installation client for a
// repository (the bot's App auth provides it); tests point it at bot/githubtest.
//
// Comment keeps one comment per key, found by a hidden marker; a bot that folds every
// section into a single comment of its own can implement Checks.Comment itself instead.
type GitHub struct {
	Client func(ctx context.Context, repo string) (*github.Client, error)
}

func (g GitHub) client(ctx context.Context, repo string) (*github.Client, string, string, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, "", "", fmt.Errorf("repository %q is not owner/name", repo)
	}
	c, err := g.Client(ctx, repo)
	if err != nil {
		return nil, "", "", fmt.Errorf("GitHub client for %s: %w", repo, err)
	}
	return c, owner, name, nil
}

func ghOutput(o *Output) *github.CheckRunOutput {
	if o == nil {
		return nil
	}
	out := &github.CheckRunOutput{Title: github.String(o.Title), Summary: github.String(o.Summary)}
	if o.Text != "" {
		out.Text = github.String(o.Text)
	}
	for _, a := range o.Annotations {
		ann := &github.CheckRunAnnotation{Path: github.String(a.Path), StartLine: github.Int(max(1, a.StartLine)),
			EndLine: github.Int(max(1, a.EndLine, a.StartLine)), AnnotationLevel: github.String(a.Level), Message: github.String(a.Message)}
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
	return github.String(s)
}

// CreateCheckRun creates a check run.
func (g GitHub) CreateCheckRun(ctx context.Context, repo string, run CheckRun) (int64, error) {
	c, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return 0, err
	}
	cr, _, err := c.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: run.Name, HeadSHA: run.HeadSHA, ExternalID: optional(run.ExternalID), DetailsURL: optional(run.DetailsURL),
		Status: optional(run.Status), Conclusion: optional(run.Conclusion), Output: ghOutput(run.Output)})
	if err != nil {
		return 0, fmt.Errorf("create check run %s on %s@%s: %w", run.Name, repo, short(run.HeadSHA), err)
	}
	return cr.GetID(), nil
}

// UpdateCheckRun updates a check run.
func (g GitHub) UpdateCheckRun(ctx context.Context, repo string, id int64, run CheckRun) error {
	c, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return err
	}
	_, _, err = c.Checks.UpdateCheckRun(ctx, owner, name, id, github.UpdateCheckRunOptions{
		Name: run.Name, ExternalID: optional(run.ExternalID), DetailsURL: optional(run.DetailsURL),
		Status: optional(run.Status), Conclusion: optional(run.Conclusion), Output: ghOutput(run.Output)})
	if err != nil {
		return fmt.Errorf("update check run %d in %s: %w", id, repo, err)
	}
	return nil
}

// marker hides a section's key in its comment so the comment can be found and edited.
func marker(key string) string { return "<!-- gradforge:ci:" + key + " -->" }

// Comment creates or edits the comment holding the section key.
func (g GitHub) Comment(ctx context.Context, repo string, number int, key, body string) error {
	c, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return err
	}
	text := marker(key) + "\n" + truncate(body, MaxText-len(marker(key))-1)
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := c.Issues.ListComments(ctx, owner, name, number, opt)
		if err != nil {
			return fmt.Errorf("list comments of %s#%d: %w", repo, number, err)
		}
		for _, cm := range comments {
			if strings.Contains(cm.GetBody(), marker(key)) {
				if cm.GetBody() == text {
					return nil
				}
				if _, _, err := c.Issues.EditComment(ctx, owner, name, cm.GetID(), &github.IssueComment{Body: github.String(text)}); err != nil {
					return fmt.Errorf("edit comment %d on %s#%d: %w", cm.GetID(), repo, number, err)
				}
				return nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if _, _, err := c.Issues.CreateComment(ctx, owner, name, number, &github.IssueComment{Body: github.String(text)}); err != nil {
		return fmt.Errorf("comment on %s#%d: %w", repo, number, err)
	}
	return nil
}

// Label adds and removes labels; removing a label that is not there is not an error.
func (g GitHub) Label(ctx context.Context, repo string, number int, add, remove []string) error {
	c, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return err
	}
	if len(add) > 0 {
		if _, _, err := c.Issues.AddLabelsToIssue(ctx, owner, name, number, add); err != nil {
			return fmt.Errorf("label %s#%d %v: %w", repo, number, add, err)
		}
	}
	for _, l := range remove {
		resp, err := c.Issues.RemoveLabelForIssue(ctx, owner, name, number, l)
		if err != nil && (resp == nil || resp.StatusCode != http.StatusNotFound) {
			return fmt.Errorf("unlabel %s#%d %s: %w", repo, number, l, err)
		}
	}
	return nil
}
