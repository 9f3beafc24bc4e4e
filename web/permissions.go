package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v62/github"
)

// GitHubPermissions answers Permissions from GitHub's collaborator permission endpoint,
// through a client that acts for the App's installation on the repository.
type GitHubPermissions struct {
	Client func(ctx context.Context, repo string) (*github.Client, error)
}

// StaticClient uses one client for every repository (dev mode with a token, and tests).
func StaticClient(c *github.Client) func(context.Context, string) (*github.Client, error) {
	return func(context.Context, string) (*github.Client, error) { return c, nil }
}

// Permission is admin, maintain, write, triage, read or none; a login GitHub does not know
// is none.
func (p *GitHubPermissions) Permission(ctx context.Context, repo, login string) (string, error) {
	gh, err := p.Client(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("github client for %s: %w", repo, err)
	}
	owner, name, _ := strings.Cut(repo, "/")
	lvl, resp, err := gh.Repositories.GetPermissionLevel(ctx, owner, name, login)
	var ge *github.ErrorResponse
	if resp != nil && resp.StatusCode == http.StatusNotFound || errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusNotFound {
		return "none", nil
	}
	if err != nil {
		return "", fmt.Errorf("permission of %s on %s: %w", login, repo, err)
	}
	return lvl.GetPermission(), nil
}
