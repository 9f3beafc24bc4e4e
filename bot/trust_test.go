package bot

import (
	"context"
	"errors"
	"testing"

	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/bounties"
)

func TestTrustOf(t *testing.T) {
	gh := githubtest.New(t)
	for login, perm := range map[string]string{"adm": "admin", "mnt": "maintain", "wrt": "write", "tri": "triage", "rd": "read"} {
		gh.SetPermission("org/r", login, perm)
	}
	gh.AddOrgMember("org", "member")
	cfg, err := ParseConfig([]byte("maintainers: ['@Lead']\ntrusted_users: [Friend]\nauto_approve_payouts: true\nrequired_checks: [parity, lines]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.AutoApprovePayouts || len(cfg.RequiredChecks) != 2 {
		t.Fatalf("config = %+v", cfg)
	}
	for _, tc := range []struct {
		login                        string
		maintainer, triager, trusted bool
	}{
		{"adm", true, true, true},
		{"mnt", true, true, true},
		{"WRT", true, true, true},
		{"tri", false, true, true},
		{"rd", false, false, false},
		{"member", false, false, true},
		{"lead", true, true, true},
		{"friend", false, false, true},
		{"stranger", false, false, false},
	} {
		got, err := TrustOf(context.Background(), gh.Client(), "org/r", tc.login, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Maintainer() != tc.maintainer || got.Triager() != tc.triager || got.Trusted() != tc.trusted {
			t.Errorf("%s: maintainer %v triager %v trusted %v; want %v %v %v (%+v)", tc.login,
				got.Maintainer(), got.Triager(), got.Trusted(), tc.maintainer, tc.triager, tc.trusted, got)
		}
	}
	if _, err := ParseConfig([]byte("maintainers: [x")); !errors.Is(err, ErrBadConfig) {
		t.Errorf("broken YAML: %v, want ErrBadConfig", err)
	}
	gh.FailNext("GET", "/repos/org/r/collaborators/", 502, 1)
	if _, err := TrustOf(context.Background(), gh.Client(), "org/r", "adm", cfg); err == nil {
		t.Error("an API failure answered as if the user had no permission; it must be an error so the job retries")
	}
}

// The first-PR rule is on unless a repository turns it off, in agreement with the bounties
// package's own default, whether the repository has no .gradforge.yml, one that does not
// mention the rule, or one that sets it.
func TestConfigDefaultsAgreeWithBounties(t *testing.T) {
	if got, want := DefaultConfig().Bounties.FirstPRCannotClaim, !bounties.DefaultPolicy.FirstPRCanClaim; got != want {
		t.Fatalf("bot default first_pr_cannot_claim = %v, bounties.DefaultPolicy says %v", got, want)
	}
	gh := githubtest.New(t)
	cfg, err := LoadConfig(context.Background(), gh.Client(), "o/none")
	if err != nil || !cfg.Bounties.FirstPRCannotClaim {
		t.Fatalf("repository without %s: %+v %v, want the rule on", ConfigFile, cfg, err)
	}
	for _, tc := range []struct {
		yaml string
		want bool
	}{
		{"", true},
		{"maintainers: [a]\n", true},
		{"bounties:\n", true},
		{"bounties:\n  min_account_age_days: 5\n", true},
		{"bounties:\n  first_pr_cannot_claim: true\n", true},
		{"bounties:\n  first_pr_cannot_claim: false\n", false},
	} {
		gh.SetFile("o/r", ConfigFile, tc.yaml)
		cfg, err := LoadConfig(context.Background(), gh.Client(), "o/r")
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if cfg.Bounties.FirstPRCannotClaim != tc.want {
			t.Errorf("%q: first_pr_cannot_claim = %v, want %v", tc.yaml, cfg.Bounties.FirstPRCannotClaim, tc.want)
		}
	}
}
