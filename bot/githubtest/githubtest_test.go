package githubtest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot/githubtest"
)

func TestIssueCommentsLabelsAssigneesState(t *testing.T) {
	ctx := context.Background()
	gh := githubtest.New(t)
	c := gh.Client()
	com, _, err := c.Issues.CreateComment(ctx, "o", "r", 3, &github.IssueComment{Body: github.String("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Issues.EditComment(ctx, "o", "r", com.GetID(), &github.IssueComment{Body: github.String("edited")}); err != nil {
		t.Fatal(err)
	}
	if got := gh.Comments("o", 3); len(got) != 0 {
		t.Fatalf("comments on repo %q leaked: %v", "o", got)
	}
	got := gh.Comments("o/r", 3)
	if len(got) != 1 || got[0].Body != "edited" || got[0].Author != "gradforge[bot]" {
		t.Fatalf("comments = %+v, want one edited bot comment", got)
	}
	if _, _, err := c.Issues.AddLabelsToIssue(ctx, "o", "r", 3, []string{"bounty", "$100", "bounty"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Issues.RemoveLabelForIssue(ctx, "o", "r", 3, "$100"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Issues.RemoveLabelForIssue(ctx, "o", "r", 3, "absent"); err == nil {
		t.Error("removing an absent label succeeded; GitHub answers 404")
	}
	if l := gh.Labels("o/r", 3); len(l) != 1 || l[0] != "bounty" {
		t.Fatalf("labels = %v, want [bounty]", l)
	}
	if _, _, err := c.Issues.AddAssignees(ctx, "o", "r", 3, []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Issues.RemoveAssignees(ctx, "o", "r", 3, []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	if a := gh.Assignees("o/r", 3); len(a) != 1 || a[0] != "bob" {
		t.Fatalf("assignees = %v, want [bob]", a)
	}
	if _, _, err := c.Issues.Edit(ctx, "o", "r", 3, &github.IssueRequest{State: github.String("closed"), StateReason: github.String("not_planned")}); err != nil {
		t.Fatal(err)
	}
	if st, why := gh.State("o/r", 3); st != "closed" || why != "not_planned" {
		t.Fatalf("state = %s/%s, want closed/not_planned", st, why)
	}
	if n := len(gh.Calls("POST", "/repos/o/r/issues/3/")); n != 3 {
		t.Fatalf("recorded %d POSTs under issue 3, want 3 (comment, labels, assignees)", n)
	}
}

func TestCommentPagination(t *testing.T) {
	ctx := context.Background()
	gh := githubtest.New(t)
	for i := 0; i < 75; i++ {
		gh.AddComment("o/r", 1, "someone", "x")
	}
	var all []*github.IssueComment
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 30}}
	for {
		page, resp, err := gh.Client().Issues.ListComments(ctx, "o", "r", 1, opt)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if len(all) != 75 {
		t.Fatalf("listed %d comments over pages, want 75", len(all))
	}
}

func TestPermissionsMembershipContentsUsers(t *testing.T) {
	ctx := context.Background()
	gh := githubtest.New(t)
	gh.SetPermission("o/r", "Alice", "maintain")
	gh.AddOrgMember("o", "carol")
	gh.SetFile("o/r", ".gradforge.yml", "maintainers: [dave]\n")
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	gh.SetUser("newbie", created)
	c := gh.Client()
	p, _, err := c.Repositories.GetPermissionLevel(ctx, "o", "r", "alice")
	if err != nil || p.GetPermission() != "maintain" {
		t.Fatalf("permission = %v, %v; want maintain", p.GetPermission(), err)
	}
	p, _, _ = c.Repositories.GetPermissionLevel(ctx, "o", "r", "stranger")
	if p.GetPermission() != "none" {
		t.Fatalf("stranger permission = %q, want none", p.GetPermission())
	}
	if ok, _, err := c.Organizations.IsMember(ctx, "o", "carol"); err != nil || !ok {
		t.Fatalf("carol member = %v, %v", ok, err)
	}
	if ok, _, _ := c.Organizations.IsMember(ctx, "o", "alice"); ok {
		t.Fatal("alice reported as org member")
	}
	f, _, _, err := c.Repositories.GetContents(ctx, "o", "r", ".gradforge.yml", &github.RepositoryContentGetOptions{Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.GetContent(); s != "maintainers: [dave]\n" {
		t.Fatalf("content = %q", s)
	}
	if _, _, resp, err := c.Repositories.GetContents(ctx, "o", "r", "missing.yml", nil); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing file: err %v", err)
	}
	u, _, err := c.Users.Get(ctx, "newbie")
	if err != nil || !u.GetCreatedAt().Time.Equal(created) {
		t.Fatalf("user created_at = %v, %v; want %v", u.GetCreatedAt(), err, created)
	}
}

func TestPullsAndCheckRuns(t *testing.T) {
	ctx := context.Background()
	gh := githubtest.New(t)
	gh.AddPull("o/r", githubtest.Pull{Number: 9, Author: "bob", HeadSHA: "abc123", Merged: true, Body: "/claim #4",
		Files:   []githubtest.File{{Name: "framework/a.go", Additions: 3}},
		Commits: []githubtest.Commit{{SHA: "abc123", Author: "bob", Message: "add", CoAuthors: []string{"eve"}}}})
	c := gh.Client()
	pr, _, err := c.PullRequests.Get(ctx, "o", "r", 9)
	if err != nil || !pr.GetMerged() || pr.GetUser().GetLogin() != "bob" || pr.GetState() != "closed" {
		t.Fatalf("pull = %+v, %v", pr, err)
	}
	files, _, _ := c.PullRequests.ListFiles(ctx, "o", "r", 9, nil)
	commits, _, _ := c.PullRequests.ListCommits(ctx, "o", "r", 9, nil)
	if len(files) != 1 || len(commits) != 1 || commits[0].GetCommit().GetMessage() == "add" {
		t.Fatalf("files %v commits %v: want one each, message with co-author trailer", files, commits)
	}
	cr, _, err := c.Checks.CreateCheckRun(ctx, "o", "r", github.CreateCheckRunOptions{Name: "parity", HeadSHA: "abc123", Status: github.String("in_progress")})
	if err != nil {
		t.Fatal(err)
	}
	ann := []*github.CheckRunAnnotation{{Path: github.String("a.go"), StartLine: github.Int(1), EndLine: github.Int(1), AnnotationLevel: github.String("failure"), Message: github.String("bad")}}
	_, _, err = c.Checks.UpdateCheckRun(ctx, "o", "r", cr.GetID(), github.UpdateCheckRunOptions{Name: "parity", Conclusion: github.String("failure"),
		Output: &github.CheckRunOutput{Title: github.String("1 failure"), Summary: github.String("s"), Annotations: ann}})
	if err != nil {
		t.Fatal(err)
	}
	too := make([]*github.CheckRunAnnotation, 51)
	for i := range too {
		too[i] = ann[0]
	}
	if _, _, err := c.Checks.UpdateCheckRun(ctx, "o", "r", cr.GetID(), github.UpdateCheckRunOptions{Name: "parity",
		Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Annotations: too}}); err == nil {
		t.Error("51 annotations in one request accepted; GitHub refuses more than 50")
	}
	runs := gh.CheckRuns("o/r")
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].Conclusion != "failure" || len(runs[0].Annotations) != 1 {
		t.Fatalf("check runs = %+v", runs)
	}
	gh.AddPull("o/r", githubtest.Pull{Number: 10, Author: "bob", HeadSHA: "def"})
	res, _, err := c.Search.Issues(ctx, "repo:o/r is:pr is:merged author:bob", nil)
	if err != nil || res.GetTotal() != 1 || res.Issues[0].GetNumber() != 9 {
		t.Fatalf("search merged pulls of bob = %v, %v; want #9 only", res, err)
	}
	list, _, err := c.Checks.ListCheckRunsForRef(ctx, "o", "r", "abc123", nil)
	if err != nil || list.GetTotal() != 1 {
		t.Fatalf("list for ref = %v, %v", list, err)
	}
}

func TestEnterprisePrefixTokensAndFailures(t *testing.T) {
	ctx := context.Background()
	gh := githubtest.New(t)
	c, err := github.NewClient(nil).WithEnterpriseURLs(gh.URL, gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := c.WithAuthToken("jwt").Apps.CreateInstallationToken(ctx, 42, nil)
	if err != nil || tok.GetToken() == "" {
		t.Fatalf("token = %v, %v", tok, err)
	}
	calls := gh.Calls("POST", "/app/installations/42/access_tokens")
	if len(calls) != 1 || calls[0].Auth != "Bearer jwt" {
		t.Fatalf("token calls = %+v, want one with the JWT", calls)
	}
	gh.FailNext("GET", "/users/", http.StatusBadGateway, 1)
	if _, _, err := c.Users.Get(ctx, "x"); err == nil {
		t.Fatal("injected 502 did not fail")
	}
	if _, _, err := c.Users.Get(ctx, "x"); err != nil {
		t.Fatalf("second call after one injected failure: %v", err)
	}
}
