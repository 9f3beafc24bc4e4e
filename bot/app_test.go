package bot

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/ci"
	"github.com/gradforge/gradforge/migrations/dbtest"
)

// TestAppAuth checks the App flow against the fake: a JWT signed with the App's key (RS256,
// issuer = App ID) buys an installation token, which then authenticates API calls; the
// token is reused, and each installation gets its own.
func TestAppAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	gh := githubtest.New(t)
	app, err := NewApp(4242, keyPEM, gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := app.Installation(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := c.Users.Get(ctx, "octocat"); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := app.Installation(ctx, 8)
	if _, _, err := other.Users.Get(ctx, "octocat"); err != nil {
		t.Fatal(err)
	}
	tokens := gh.Calls("POST", "/app/installations/")
	if len(tokens) != 2 || tokens[0].Path != "/app/installations/7/access_tokens" || tokens[1].Path != "/app/installations/8/access_tokens" {
		t.Fatalf("token requests = %+v, want one per installation", tokens)
	}
	jwt, ok := strings.CutPrefix(tokens[0].Auth, "Bearer ")
	if !ok {
		t.Fatalf("token request auth = %q, want a Bearer JWT", tokens[0].Auth)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q has %d parts", jwt, len(parts))
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("JWT not signed with the App key: %v", err)
	}
	var claims struct{ Iss any }
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(body, &claims)
	if s, _ := json.Marshal(claims.Iss); strings.Trim(string(s), `"`) != "4242" {
		t.Fatalf("JWT issuer = %s, want the App ID 4242", s)
	}
	users := gh.Calls("GET", "/users/octocat")
	if len(users) != 3 || users[0].Auth != "token ghs_fake_7_1" || users[1].Auth != users[0].Auth || users[2].Auth != "token ghs_fake_8_2" {
		t.Fatalf("API calls authenticated as %q, %q, %q", users[0].Auth, users[1].Auth, users[2].Auth)
	}
	if _, err := app.Installation(ctx, 0); err == nil {
		t.Error("installation 0 accepted")
	}
	if _, err := NewApp(1, []byte("not a key"), ""); err == nil {
		t.Error("a bad private key accepted")
	}
}

// TestChecksForCI drives the ci.Checks implementation: check runs with annotations, CI's
// section in the bot's one comment, and labels.
func TestChecksForCI(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	ctx := context.Background()
	if err := h.bot.rememberRepo(ctx, repo, 1); err != nil {
		t.Fatal(err)
	}
	k := NewChecks(h.bot)
	id, err := k.CreateCheckRun(ctx, repo, ci.CheckRun{Name: "parity", HeadSHA: "abc", Status: ci.InProgress, ExternalID: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	out := &ci.Output{Title: "1 case failed", Summary: "| op | err |", Annotations: []ci.Annotation{{Path: "testops/cases.go", StartLine: 3, Level: ci.LevelFailure, Message: "max error 1e-2, seed 7"}}}
	if err := k.UpdateCheckRun(ctx, repo, id, ci.CheckRun{Name: "parity", Status: ci.Completed, Conclusion: ci.Failure, Output: out}); err != nil {
		t.Fatal(err)
	}
	runs := h.gh.CheckRuns(repo)
	if len(runs) != 1 || runs[0].Conclusion != ci.Failure || runs[0].ExternalID != "run-1" || len(runs[0].Annotations) != 1 || runs[0].Annotations[0].GetEndLine() != 3 {
		t.Fatalf("check runs = %+v", runs)
	}
	if err := h.bot.SetSection(ctx, h.gh.Client(), repo, 4, "bounty", "Bounty **$50**"); err != nil {
		t.Fatal(err)
	}
	if err := k.Comment(ctx, repo, 4, "lines", "| file | lines |"); err != nil {
		t.Fatal(err)
	}
	if err := k.Label(ctx, repo, 4, []string{NeedsOkToTestLabel}, []string{"absent"}); err != nil {
		t.Fatal(err)
	}
	c := h.botComment(t, 4)
	if !strings.Contains(c, "| file | lines |") || !strings.Contains(c, "Bounty **$50**") || strings.Index(c, "Bounty") > strings.Index(c, "| file") {
		t.Fatalf("one comment should hold the bounty section, then the lines section:\n%s", c)
	}
	if _, err := k.CreateCheckRun(ctx, "unknown/repo", ci.CheckRun{Name: "x", HeadSHA: "y"}); err == nil {
		t.Error("check run on a repository no installation covers succeeded")
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	help := HelpText()
	for _, name := range []string{"label", "remove-label", "assign", "unassign", "cc", "close", "reopen", "hold", "unhold", "lgtm", "approve",
		"retest", "ok-to-test", "bounty", "attempt", "claim", "split", "tip", "propose", "approve-payout", "cancel-bounty", "unlock", "bounty-ban"} {
		c, ok := Lookup(name)
		if !ok || c.Help == "" || c.Usage == "" || c.Run == nil {
			t.Errorf("command /%s missing or incomplete", name)
			continue
		}
		if !strings.Contains(help, "`/"+name) {
			t.Errorf("help lacks /%s", name)
		}
	}
}

// TestNoCommandFileIsATestFile guards against a command file whose name ends in _test.go
// (cmd_ok_to_test.go once did): go test compiles it, so every test passes, but the binary
// leaves it out and the command is unknown in production.
func TestNoCommandFileIsATestFile(t *testing.T) {
	files, err := filepath.Glob("cmd_*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) > 0 {
		t.Fatalf("command files the build leaves out: %v", files)
	}
}
