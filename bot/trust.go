package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v62/github"
	"gopkg.in/yaml.v3"
)

// ConfigFile is the repository's own configuration, read from its default branch.
const ConfigFile = ".gradforge.yml"

// RepoConfig is what a repository says about itself in .gradforge.yml:
//
//	maintainers: [alice, bob]      # maintainers besides those with write access
//	trusted_users: [carol]         # may /retest, /lgtm, and their PRs run CI without /ok-to-test
//	auto_approve_payouts: true     # merged claims pay without /approve-payout
//	required_checks: [parity, lines, speed]
//	bounties:
//	  min_account_age_days: 30     # default 0: any account age
//	  max_active_attempts: 2       # default 2 (the bounties package's default)
//	  first_pr_cannot_claim: true  # default true: a contributor's first merged PR cannot win
//
// A missing file, and every key a file leaves out, takes DefaultConfig's value, which agrees
// with the bounties package's DefaultPolicy (tinygrad's rule: land a PR before racing for
// money), so a repository gets the same rules whether or not it writes the file.
type RepoConfig struct {
	Maintainers        []string       `yaml:"maintainers"`
	TrustedUsers       []string       `yaml:"trusted_users"`
	AutoApprovePayouts bool           `yaml:"auto_approve_payouts"`
	RequiredChecks     []string       `yaml:"required_checks"`
	Bounties           BountyPolicy   `yaml:"bounties"`
	Extra              map[string]any `yaml:",inline"`
}

// BountyPolicy is the repository's rules against claim floods, passed to the bounties
// package with each request.
type BountyPolicy struct {
	MinAccountAgeDays  int  `yaml:"min_account_age_days"`
	MaxActiveAttempts  int  `yaml:"max_active_attempts"`
	FirstPRCannotClaim bool `yaml:"first_pr_cannot_claim"`
}

// DefaultConfig is the configuration of a repository without .gradforge.yml, and the base
// that a file's keys override.
func DefaultConfig() *RepoConfig {
	return &RepoConfig{Bounties: BountyPolicy{FirstPRCannotClaim: true}}
}

// ErrBadConfig wraps a .gradforge.yml that does not parse: people must fix it, retrying
// will not help.
var ErrBadConfig = errors.New("bad " + ConfigFile)

// ParseConfig reads .gradforge.yml.
func ParseConfig(src []byte) (*RepoConfig, error) {
	c := *DefaultConfig() // keys the file leaves out keep their defaults
	if err := yaml.Unmarshal(src, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	for i, m := range c.Maintainers {
		c.Maintainers[i] = strings.ToLower(strings.TrimPrefix(m, "@"))
	}
	for i, m := range c.TrustedUsers {
		c.TrustedUsers[i] = strings.ToLower(strings.TrimPrefix(m, "@"))
	}
	return &c, nil
}

// LoadConfig fetches and parses a repository's .gradforge.yml; a repository without one gets
// DefaultConfig. A file that does not parse is an error the caller reports.
func LoadConfig(ctx context.Context, gh *github.Client, repo string) (*RepoConfig, error) {
	owner, name, _ := strings.Cut(repo, "/")
	f, _, resp, err := gh.Repositories.GetContents(ctx, owner, name, ConfigFile, nil)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return DefaultConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", ConfigFile, repo, err)
	}
	src, err := f.GetContent()
	if err != nil {
		return nil, fmt.Errorf("decode %s of %s: %w", ConfigFile, repo, err)
	}
	return ParseConfig([]byte(src))
}

// Trust is everything the forge knows about one user's standing in one repository. It is
// the single answer every permission rule reads.
type Trust struct {
	Login      string
	Permission string // admin, maintain, write, triage, read or none (the GitHub API's words)
	OrgMember  bool
	// ConfigMaintainer and ConfigTrusted say the user is listed in .gradforge.yml.
	ConfigMaintainer, ConfigTrusted bool
}

// Maintainer: admin, maintain or write access, or listed as a maintainer in the config.
func (t Trust) Maintainer() bool {
	switch t.Permission {
	case "admin", "maintain", "write":
		return true
	}
	return t.ConfigMaintainer
}

// Triager: a maintainer or someone with GitHub's triage role.
func (t Trust) Triager() bool { return t.Maintainer() || t.Permission == "triage" }

// Trusted: a triager, a member of the owning organization, or listed as trusted in the
// config. Trusted authors' pull requests run CI without /ok-to-test.
func (t Trust) Trusted() bool { return t.Triager() || t.OrgMember || t.ConfigTrusted }

// TrustOf answers for login in repo: the repository permission from the API, membership of
// the owning organization (false for user-owned repositories), and the config's lists.
func TrustOf(ctx context.Context, gh *github.Client, repo, login string, cfg *RepoConfig) (Trust, error) {
	login = strings.ToLower(login)
	t := Trust{Login: login, Permission: "none"}
	if cfg != nil {
		t.ConfigMaintainer = contains(cfg.Maintainers, login)
		t.ConfigTrusted = contains(cfg.TrustedUsers, login)
	}
	owner, name, _ := strings.Cut(repo, "/")
	p, resp, err := gh.Repositories.GetPermissionLevel(ctx, owner, name, login)
	switch {
	case resp != nil && resp.StatusCode == http.StatusNotFound: // not a user GitHub knows
	case err != nil:
		return t, fmt.Errorf("permission of %s on %s: %w", login, repo, err)
	default:
		t.Permission = p.GetPermission()
	}
	if !t.Maintainer() { // membership matters only below maintainer
		member, resp, err := gh.Organizations.IsMember(ctx, owner, login)
		var ghErr *github.ErrorResponse
		switch {
		case err == nil:
			t.OrgMember = member
		case resp != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusForbidden),
			errors.As(err, &ghErr) && ghErr.Response != nil && ghErr.Response.StatusCode == http.StatusNotFound:
		default:
			return t, fmt.Errorf("membership of %s in %s: %w", login, owner, err)
		}
	}
	return t, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
