package bot

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/migrations/dbtest"
)

// The maintainers' bounty commands: /extend, /bounty-unban, /shares and /retry-payout, each
// through its grammar, its permission rule and what it hands to the bounties package.
func TestBountyAdminCommands(t *testing.T) {
	type row struct {
		name, login, body string
		pr                bool
		op                string // what bounties is asked; "" when nothing reaches it
		reply             string // in the bot's comment
		check             func(r BountyRequest) bool
	}
	rows := []row{
		{"extend this issue", "maint", "/extend 3 days", false, "extend", "extend ok",
			func(r BountyRequest) bool { return r.Days == 3 && r.Target == Ref{repo, 1} }},
		{"extend another issue", "maint", "/EXTEND #12 2", false, "extend", "extend ok",
			func(r BountyRequest) bool { return r.Days == 2 && r.Target == Ref{repo, 12} }},
		{"extend across repositories", "maint", "/extend other/repo#4 1d", false, "extend", "extend ok",
			func(r BountyRequest) bool { return r.Days == 1 && r.Target == Ref{"other/repo", 4} }},
		{"extend from a PR names the issue", "maint", "/extend 3", true, "", "name the issue", nil},
		{"extend zero days", "maint", "/extend #12 0", false, "", "1 to 365 days", nil},
		{"extend negative days", "maint", "/extend -3", false, "", "not a whole number", nil},
		{"extend without days", "maint", "/extend #12", false, "", "/extend #12 3 days", nil},
		{"extend by a contributor", "eve", "/extend 3", false, "", "only maintainers", nil},
		{"unban", "maint", "/bounty-unban @Spammer", false, "unban", "unban ok",
			func(r BountyRequest) bool { return reflect.DeepEqual(r.Users, []string{"spammer"}) }},
		{"unban two at once", "maint", "/bounty-unban @a @b", false, "", "name one person", nil},
		{"unban by a contributor", "eve", "/bounty-unban @eve", false, "", "only maintainers", nil},
		{"shares on a PR", "maint", "/shares @Alice=60, @bob=40", true, "shares", "shares ok",
			func(r BountyRequest) bool {
				return reflect.DeepEqual(r.Shares, map[string]int{"alice": 60, "bob": 40}) && r.IsPR && r.PR != nil
			}},
		{"shares as percentages", "maint", "/shares @a=70% @b=30%", false, "shares", "shares ok",
			func(r BountyRequest) bool { return reflect.DeepEqual(r.Shares, map[string]int{"a": 70, "b": 30}) }},
		{"shares naming someone twice", "maint", "/shares @a=1 @A=2", false, "", "named twice", nil},
		{"shares without a weight", "maint", "/shares @a @b=2", false, "", "needs a weight", nil},
		{"shares with a zero weight", "maint", "/shares @a=0 @b=2", false, "", "from 1 to 1000", nil},
		{"shares by the PR author", "eve", "/shares @eve=99 @bob=1", true, "", "only maintainers", nil},
		{"retry a payout", "maint", "/retry-payout", true, "retry-payout", "retry-payout ok",
			func(r BountyRequest) bool { return r.Number == 1 && r.IsPR && r.ActorMaintainer }},
		{"retry with arguments", "maint", "/retry-payout now", false, "", "takes no arguments", nil},
		{"retry by a contributor", "eve", "/retry-payout", false, "", "only maintainers", nil},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, dbtest.SQLite(t)) // its own database: delivery IDs restart per harness
			h.gh.SetPermission(repo, "maint", "maintain")
			h.gh.AddPull(repo, githubtest.Pull{Number: 1, Author: "eve", HeadSHA: "abc"})
			h.bn.answer = func(op string, r BountyRequest) (string, error) { return op + " ok", nil }
			if err := h.deliver(t, "issue_comment", comment(t, tc.login, tc.body, tc.pr)); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.op == "" && len(h.bn.requests) != 0:
				t.Fatalf("bounties was asked %+v; the command should have been refused first", h.bn.requests)
			case tc.op != "" && len(h.bn.requests) != 1:
				t.Fatalf("bounties got %d requests, want 1", len(h.bn.requests))
			case tc.op != "" && !tc.check(h.bn.requests[0]):
				t.Errorf("request = %+v", h.bn.requests[0])
			}
			if c := h.botComment(t, 1); !strings.Contains(c, tc.reply) {
				t.Errorf("reply lacks %q:\n%s", tc.reply, c)
			}
		})
	}
	for _, name := range []string{"extend", "bounty-unban", "shares", "retry-payout"} {
		c, ok := Lookup(name)
		if !ok || c.Who != Maintainer || !strings.Contains(HelpText(), c.Usage) {
			t.Errorf("/%s: registered %v, who %v, in /help: %v", name, ok, c, ok && strings.Contains(HelpText(), c.Usage))
		}
	}
}
