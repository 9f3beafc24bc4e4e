// Package githubtest is a fake of the GitHub REST API for tests: an httptest server that
// answers the endpoints the forge calls, keeps the state those calls change, and records
// every request so a test can assert exactly what was sent.
//
// GitHub itself cannot run in a test, so this is the one fake the forge allows; everything
// else (databases, Stripe, git) is real. Start one per test and point a go-github/v62 client
// at it:
//
//	gh := githubtest.New(t)                  // closed when the test ends
//	client := gh.Client()                    // *github.Client whose BaseURL is gh.URL + "/"
//	gh.SetPermission("o/r", "alice", "write") // seed state
//	gh.AddPull("o/r", githubtest.Pull{Number: 7, Author: "bob", HeadSHA: "abc", Merged: true})
//	... run the code under test ...
//	calls := gh.Calls("POST", "/repos/o/r/check-runs") // what was sent
//	comments := gh.Comments("o/r", 7)                 // resulting state
//
// Paths are accepted with or without the GitHub Enterprise prefix /api/v3, so a client built
// with github.NewClient(nil).WithEnterpriseURLs(gh.URL, gh.URL) works too; ghinstallation
// transports work by setting their BaseURL to gh.URL.
//
// Endpoints (all under /repos/{owner}/{repo} unless absolute):
//
//	POST   /app/installations/{id}/access_tokens    installation token (ghs_fake_{id}_{n})
//	GET    /app/installations/{id}, /repos/{o}/{r}/installation
//	GET    /users/{login}                           login, id, created_at (SetUser)
//	GET    /search/issues?q=                        seeded pulls by repo:, author:, is:merged, is:open, is:closed
//	GET    /orgs/{org}/members/{login}              204 member / 404 not (AddOrgMember)
//	GET    /collaborators/{login}/permission        admin|maintain|write|triage|read|none (SetPermission)
//	GET    /contents/{path...}[?ref=]               base64 file (SetFile); 404 when absent
//	GET    /issues/{n}, PATCH /issues/{n}           state, state_reason, title, body, labels, assignees
//	GET    /issues/{n}/comments (paginated), POST   list / create comment
//	PATCH  /issues/comments/{id}, DELETE            edit / delete comment
//	GET    /issues/{n}/labels, POST, PUT            list / add / replace labels
//	DELETE /issues/{n}/labels/{name}                remove one label (404 when absent, like GitHub)
//	POST   /issues/{n}/assignees, DELETE            add / remove assignees
//	GET    /pulls, /pulls/{n}, /pulls/{n}/files, /pulls/{n}/commits   from AddPull
//	POST   /pulls/{n}/requested_reviewers           request reviews (see Reviewers)
//	POST   /check-runs, PATCH /check-runs/{id}, GET /check-runs/{id}, GET /commits/{ref}/check-runs
//	GET    /check-runs/{id}/annotations
//
// Anything else answers 404 with a GitHub-style error body and is still recorded, so a test
// can see that an unexpected call happened. FailNext makes the next matching calls fail, for
// retry tests.
package githubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
)

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string // without the /api/v3 prefix and without the query
	Query  url.Values
	Auth   string // the Authorization header as sent
	Body   []byte
}

// JSON decodes the call's body into v.
func (c Call) JSON(v any) error {
	if err := json.Unmarshal(c.Body, v); err != nil {
		return fmt.Errorf("decode body of %s %s: %w", c.Method, c.Path, err)
	}
	return nil
}

// Pull seeds a pull request. Number, Author and HeadSHA matter most; the rest is optional.
type Pull struct {
	Number    int
	Title     string
	Body      string
	Author    string
	State     string // "open" (default) or "closed"
	Merged    bool
	MergedBy  string
	HeadSHA   string
	HeadRef   string
	HeadRepo  string // "owner/name" of the fork; defaults to the base repository
	BaseSHA   string
	BaseRef   string // default "main"
	Files     []File
	Commits   []Commit
	CreatedAt time.Time
	Reviewers []string // requested reviewers, added by POST requested_reviewers
}

// File is one changed file of a pull request.
type File struct {
	Name      string
	Status    string // added, modified, removed, renamed (default modified)
	Additions int
	Deletions int
	Patch     string
}

// Commit is one commit of a pull request; CoAuthors become Co-authored-by trailers.
type Commit struct {
	SHA       string
	Message   string
	Author    string // login
	CoAuthors []string
}

// Comment is a comment as the fake stores it.
type Comment struct {
	ID        int64
	Repo      string
	Number    int
	Author    string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CheckRun is a check run as the fake stores it; Annotations accumulate over updates, as on
// GitHub.
type CheckRun struct {
	ID          int64
	Repo        string
	Name        string
	HeadSHA     string
	Status      string
	Conclusion  string
	ExternalID  string
	DetailsURL  string
	Title       string
	Summary     string
	Text        string
	Annotations []*github.CheckRunAnnotation
	Actions     []*github.CheckRunAction
	Updates     int
}

type issue struct {
	title, body, state, stateReason, author string
	labels, assignees                       []string
	isPull                                  bool
}

type failure struct {
	method, prefix string
	status, left   int
}

// Server is the fake API. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// BotLogin is the author of comments created through the API (default "gradforge[bot]").
	BotLogin string

	mu        sync.Mutex
	calls     []Call
	nextID    int64
	tokens    int
	perms     map[string]string // repo + "\x00" + login
	members   map[string]bool   // org + "\x00" + login
	files     map[string]string // repo + "\x00" + ref + "\x00" + path; ref "" = any
	users     map[string]time.Time
	pulls     map[string]*Pull // repo#n
	issues    map[string]*issue
	comments  map[int64]*Comment
	checkRuns map[int64]*CheckRun
	fails     []*failure
}

// New starts a fake and closes it when the test ends.
func New(t testing.TB) *Server {
	s := NewServer()
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake outside a test (benchmarks, manual runs); Close stops it.
func NewServer() *Server {
	s := &Server{
		BotLogin: "gradforge[bot]", nextID: 1000,
		perms: map[string]string{}, members: map[string]bool{}, files: map[string]string{},
		users: map[string]time.Time{}, pulls: map[string]*Pull{}, issues: map[string]*issue{},
		comments: map[int64]*Comment{}, checkRuns: map[int64]*CheckRun{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Client returns a go-github client that talks to the fake without authentication.
func (s *Server) Client() *github.Client {
	c := github.NewClient(s.Server.Client())
	u, _ := url.Parse(s.URL + "/")
	c.BaseURL, c.UploadURL = u, u
	return c
}

// SetPermission sets login's permission on repo ("admin", "maintain", "write", "triage",
// "read" or "none"); unknown users have "none".
func (s *Server) SetPermission(repo, login, perm string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms[repo+"\x00"+strings.ToLower(login)] = perm
}

// AddOrgMember makes login a member of org.
func (s *Server) AddOrgMember(org, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[strings.ToLower(org)+"\x00"+strings.ToLower(login)] = true
}

// SetFile stores a file at path in repo, returned for any ref.
func (s *Server) SetFile(repo, path, content string) { s.SetFileAt(repo, "", path, content) }

// SetFileAt stores a file at path in repo for one ref (branch name or SHA).
func (s *Server) SetFileAt(repo, ref, path, content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[repo+"\x00"+ref+"\x00"+path] = content
}

// SetUser sets when login's account was created (users not set were created in 2015).
func (s *Server) SetUser(login string, created time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(login)] = created
}

// AddPull seeds a pull request; it is also an issue with the same number, as on GitHub.
func (s *Server) AddPull(repo string, p Pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.State == "" {
		p.State = "open"
	}
	if p.Merged {
		p.State = "closed"
	}
	if p.BaseRef == "" {
		p.BaseRef = "main"
	}
	if p.HeadRepo == "" {
		p.HeadRepo = repo
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	s.pulls[key(repo, p.Number)] = &p
	is := s.issue(repo, p.Number)
	is.title, is.body, is.state, is.author, is.isPull = p.Title, p.Body, p.State, p.Author, true
}

// AddIssue seeds an issue with labels.
func (s *Server) AddIssue(repo string, number int, title, author string, labels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issue(repo, number)
	is.title, is.author, is.labels = title, author, append([]string(nil), labels...)
}

// AddComment seeds a comment as if login had written it; it returns its ID.
func (s *Server) AddComment(repo string, number int, login, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addComment(repo, number, login, body).ID
}

// FailNext makes the next n calls whose method matches (empty matches any) and whose path
// starts with prefix answer status (for example 502) before the fake serves them normally
// again.
func (s *Server) FailNext(method, prefix string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, &failure{method, prefix, status, n})
}

// ClearFailures cancels every pending FailNext.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = nil
}

// Calls returns the recorded calls whose method matches (empty matches any) and whose path
// starts with prefix, in arrival order.
func (s *Server) Calls(method, prefix string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if (method == "" || c.Method == method) && strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// AllCalls returns every recorded call.
func (s *Server) AllCalls() []Call { return s.Calls("", "") }

// Reset forgets the recorded calls but keeps the state.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Comments returns the comments on an issue or pull request, oldest first.
func (s *Server) Comments(repo string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commentsOf(repo, number)
}

// Labels returns an issue's labels, sorted.
func (s *Server) Labels(repo string, number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := append([]string(nil), s.issue(repo, number).labels...)
	sort.Strings(l)
	return l
}

// Assignees returns an issue's assignees, sorted.
func (s *Server) Assignees(repo string, number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := append([]string(nil), s.issue(repo, number).assignees...)
	sort.Strings(a)
	return a
}

// State returns an issue's state ("open" or "closed") and state reason.
func (s *Server) State(repo string, number int) (state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issue(repo, number)
	return is.state, is.stateReason
}

// Reviewers returns the reviewers requested on a pull request.
func (s *Server) Reviewers(repo string, number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pulls[key(repo, number)]; p != nil {
		return append([]string(nil), p.Reviewers...)
	}
	return nil
}

// CheckRuns returns the check runs created in repo, in creation order.
func (s *Server) CheckRuns(repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, cr := range s.checkRuns {
		if cr.Repo == repo {
			out = append(out, *cr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func key(repo string, n int) string { return repo + "#" + strconv.Itoa(n) }

// issue returns the stored issue, creating an open one on first use. Callers hold mu.
func (s *Server) issue(repo string, n int) *issue {
	k := key(repo, n)
	is := s.issues[k]
	if is == nil {
		is = &issue{state: "open", title: fmt.Sprintf("issue %d", n)}
		s.issues[k] = is
	}
	return is
}

func (s *Server) addComment(repo string, n int, login, body string) *Comment {
	s.nextID++
	now := time.Now().UTC()
	c := &Comment{ID: s.nextID, Repo: repo, Number: n, Author: login, Body: body, CreatedAt: now, UpdatedAt: now}
	s.comments[c.ID] = c
	return c
}

func (s *Server) commentsOf(repo string, n int) []Comment {
	var out []Comment
	for _, c := range s.comments {
		if c.Repo == repo && c.Number == n {
			out = append(out, *c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimPrefix(r.URL.Path, "/api/v3")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: path, Query: r.URL.Query(), Auth: r.Header.Get("Authorization"), Body: body})
	for _, f := range s.fails {
		if f.left > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(path, f.prefix) {
			f.left--
			writeJSON(w, f.status, map[string]string{"message": "injected failure"})
			return
		}
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")
	status, v := s.route(r, seg, body)
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	if p, ok := v.(pageResult); ok && p.next != "" {
		w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", p.next))
	}
	if status >= 400 && v == nil {
		v = map[string]string{"message": http.StatusText(status), "documentation_url": "https://docs.github.com/rest"}
	}
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// route dispatches on the path segments. Callers hold mu.
func (s *Server) route(r *http.Request, seg []string, body []byte) (int, any) {
	m := r.Method
	switch {
	case len(seg) == 4 && seg[0] == "app" && seg[1] == "installations" && seg[3] == "access_tokens" && m == "POST":
		s.tokens++
		return http.StatusCreated, map[string]any{"token": fmt.Sprintf("ghs_fake_%s_%d", seg[2], s.tokens),
			"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	case len(seg) == 3 && seg[0] == "app" && seg[1] == "installations" && m == "GET":
		id, _ := strconv.ParseInt(seg[2], 10, 64)
		return http.StatusOK, &github.Installation{ID: &id}
	case len(seg) == 2 && seg[0] == "users" && m == "GET":
		return http.StatusOK, s.user(seg[1])
	case len(seg) == 4 && seg[0] == "orgs" && seg[2] == "members" && m == "GET":
		if s.members[strings.ToLower(seg[1])+"\x00"+strings.ToLower(seg[3])] {
			return http.StatusNoContent, nil
		}
		return http.StatusNotFound, nil
	case len(seg) == 2 && seg[0] == "search" && seg[1] == "issues" && m == "GET":
		return http.StatusOK, s.searchPulls(r.URL.Query().Get("q"))
	case len(seg) >= 3 && seg[0] == "repos":
		return s.repoRoute(r, seg[1]+"/"+seg[2], seg[3:], body)
	}
	return http.StatusNotFound, nil
}

// searchPulls answers the issue searches the forge makes about pull requests: the
// qualifiers repo:, author:, is:pr, is:merged, is:open and is:closed over seeded pulls.
func (s *Server) searchPulls(q string) *github.IssuesSearchResult {
	var repo, author string
	merged, open, closed := false, false, false
	for _, f := range strings.Fields(q) {
		k, v, _ := strings.Cut(f, ":")
		switch {
		case k == "repo":
			repo = v
		case k == "author":
			author = v
		case f == "is:merged":
			merged = true
		case f == "is:open":
			open = true
		case f == "is:closed":
			closed = true
		}
	}
	out := &github.IssuesSearchResult{Issues: []*github.Issue{}}
	var keys []string
	for k := range s.pulls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := s.pulls[k]
		r, _, _ := strings.Cut(k, "#")
		st := s.issue(r, p.Number).state
		if (repo != "" && r != repo) || (author != "" && !strings.EqualFold(p.Author, author)) ||
			(merged && !p.Merged) || (open && st != "open") || (closed && st != "closed") {
			continue
		}
		out.Issues = append(out.Issues, s.issueJSON(r, p.Number, s.issue(r, p.Number)))
	}
	out.Total = github.Int(len(out.Issues))
	out.IncompleteResults = github.Bool(false)
	return out
}

func (s *Server) user(login string) *github.User {
	created, ok := s.users[strings.ToLower(login)]
	if !ok {
		created = time.Date(2015, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	id := int64(len(login)*7919 + int(login[0]))
	return &github.User{Login: &login, ID: &id, Type: github.String("User"), CreatedAt: &github.Timestamp{Time: created}}
}

func (s *Server) repoRoute(r *http.Request, repo string, seg []string, body []byte) (int, any) {
	m := r.Method
	at := func(i int) string {
		if i < len(seg) {
			return seg[i]
		}
		return ""
	}
	switch {
	case len(seg) == 0 && m == "GET":
		owner, name, _ := strings.Cut(repo, "/")
		return http.StatusOK, &github.Repository{Name: &name, FullName: &repo, Owner: &github.User{Login: &owner}}
	case len(seg) == 1 && seg[0] == "installation" && m == "GET":
		id := int64(1)
		return http.StatusOK, &github.Installation{ID: &id}
	case len(seg) == 3 && seg[0] == "collaborators" && seg[2] == "permission" && m == "GET":
		p, ok := s.perms[repo+"\x00"+strings.ToLower(seg[1])]
		if !ok {
			p = "none"
		}
		return http.StatusOK, &github.RepositoryPermissionLevel{Permission: &p, User: s.user(seg[1])}
	case at(0) == "contents" && len(seg) >= 2 && m == "GET":
		p, _ := url.PathUnescape(strings.Join(seg[1:], "/"))
		ref := r.URL.Query().Get("ref")
		content, ok := s.files[repo+"\x00"+ref+"\x00"+p]
		if !ok {
			content, ok = s.files[repo+"\x00\x00"+p]
		}
		if !ok {
			return http.StatusNotFound, nil
		}
		enc := base64.StdEncoding.EncodeToString([]byte(content))
		name := seg[len(seg)-1]
		size := len(content)
		return http.StatusOK, &github.RepositoryContent{Type: github.String("file"), Encoding: github.String("base64"),
			Content: &enc, Name: &name, Path: &p, Size: &size, SHA: github.String(fmt.Sprintf("%040x", len(content)))}
	case at(0) == "issues":
		return s.issueRoute(r, repo, seg[1:], body)
	case at(0) == "pulls":
		return s.pullRoute(r, repo, seg[1:], body)
	case at(0) == "check-runs":
		return s.checkRoute(r, repo, seg[1:], body)
	case len(seg) == 3 && seg[0] == "commits" && seg[2] == "check-runs" && m == "GET":
		var runs []*github.CheckRun
		for _, cr := range s.checkRuns {
			if cr.Repo == repo && cr.HeadSHA == seg[1] {
				runs = append(runs, checkRunJSON(cr))
			}
		}
		sort.Slice(runs, func(i, j int) bool { return *runs[i].ID < *runs[j].ID })
		total := len(runs)
		return http.StatusOK, &github.ListCheckRunsResults{Total: &total, CheckRuns: runs}
	}
	return http.StatusNotFound, nil
}

func (s *Server) issueRoute(r *http.Request, repo string, seg []string, body []byte) (int, any) {
	m := r.Method
	if len(seg) == 2 && seg[0] == "comments" {
		id, _ := strconv.ParseInt(seg[1], 10, 64)
		c := s.comments[id]
		if c == nil || c.Repo != repo {
			return http.StatusNotFound, nil
		}
		switch m {
		case "GET":
			return http.StatusOK, commentJSON(c)
		case "PATCH":
			var req github.IssueComment
			if err := json.Unmarshal(body, &req); err != nil || req.Body == nil {
				return http.StatusUnprocessableEntity, map[string]string{"message": "body is required"}
			}
			c.Body, c.UpdatedAt = *req.Body, time.Now().UTC()
			return http.StatusOK, commentJSON(c)
		case "DELETE":
			delete(s.comments, id)
			return http.StatusNoContent, nil
		}
		return http.StatusNotFound, nil
	}
	if len(seg) == 0 {
		return http.StatusNotFound, nil
	}
	n, err := strconv.Atoi(seg[0])
	if err != nil {
		return http.StatusNotFound, nil
	}
	is := s.issue(repo, n)
	switch {
	case len(seg) == 1 && m == "GET":
		return http.StatusOK, s.issueJSON(repo, n, is)
	case len(seg) == 1 && m == "PATCH":
		var req github.IssueRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return http.StatusBadRequest, nil
		}
		if req.State != nil {
			if *req.State != "open" && *req.State != "closed" {
				return http.StatusUnprocessableEntity, map[string]string{"message": "invalid state"}
			}
			is.state, is.stateReason = *req.State, ""
		}
		if req.StateReason != nil {
			is.stateReason = *req.StateReason
		}
		if req.Title != nil {
			is.title = *req.Title
		}
		if req.Body != nil {
			is.body = *req.Body
		}
		if req.Labels != nil {
			is.labels = append([]string(nil), *req.Labels...)
		}
		if req.Assignees != nil {
			is.assignees = append([]string(nil), *req.Assignees...)
		}
		return http.StatusOK, s.issueJSON(repo, n, is)
	case len(seg) == 2 && seg[1] == "comments" && m == "GET":
		all := s.commentsOf(repo, n)
		page, per := pageOf(r.URL.Query())
		lo, hi := min((page-1)*per, len(all)), min(page*per, len(all))
		out := []*github.IssueComment{}
		for i := range all[lo:hi] {
			out = append(out, commentJSON(&all[lo+i]))
		}
		res := pageResult{items: out}
		if hi < len(all) {
			q := r.URL.Query()
			q.Set("page", strconv.Itoa(page+1))
			q.Set("per_page", strconv.Itoa(per))
			next := *r.URL
			next.RawQuery = q.Encode()
			next.Scheme, next.Host = "http", r.Host
			res.next = next.String()
		}
		return http.StatusOK, res
	case len(seg) == 2 && seg[1] == "comments" && m == "POST":
		var req github.IssueComment
		if err := json.Unmarshal(body, &req); err != nil || req.Body == nil || *req.Body == "" {
			return http.StatusUnprocessableEntity, map[string]string{"message": "body is required"}
		}
		return http.StatusCreated, commentJSON(s.addComment(repo, n, s.BotLogin, *req.Body))
	case len(seg) == 2 && seg[1] == "labels":
		switch m {
		case "GET":
			return http.StatusOK, labelsJSON(is.labels)
		case "POST", "PUT":
			var names []string
			if err := json.Unmarshal(body, &names); err != nil {
				var obj struct{ Labels []string }
				if err := json.Unmarshal(body, &obj); err != nil {
					return http.StatusBadRequest, nil
				}
				names = obj.Labels
			}
			if m == "PUT" {
				is.labels = nil
			}
			for _, l := range names {
				if !containsFold(is.labels, l) {
					is.labels = append(is.labels, l)
				}
			}
			return http.StatusOK, labelsJSON(is.labels)
		}
	case len(seg) == 3 && seg[1] == "labels" && m == "DELETE":
		name, _ := url.PathUnescape(seg[2])
		for i, l := range is.labels {
			if strings.EqualFold(l, name) {
				is.labels = append(is.labels[:i], is.labels[i+1:]...)
				return http.StatusOK, labelsJSON(is.labels)
			}
		}
		return http.StatusNotFound, map[string]string{"message": "Label does not exist"}
	case len(seg) == 2 && seg[1] == "assignees" && (m == "POST" || m == "DELETE"):
		var req struct{ Assignees []string }
		if err := json.Unmarshal(body, &req); err != nil {
			return http.StatusBadRequest, nil
		}
		for _, a := range req.Assignees {
			has := containsFold(is.assignees, a)
			if m == "POST" && !has {
				is.assignees = append(is.assignees, a)
			}
			if m == "DELETE" && has {
				for i, x := range is.assignees {
					if strings.EqualFold(x, a) {
						is.assignees = append(is.assignees[:i], is.assignees[i+1:]...)
						break
					}
				}
			}
		}
		return http.StatusCreated, s.issueJSON(repo, n, is)
	}
	return http.StatusNotFound, nil
}

// pageResult carries one page of a list and the URL of the next page, which serve sends in
// a Link header as GitHub does.
type pageResult struct {
	items []*github.IssueComment
	next  string
}

func (p pageResult) MarshalJSON() ([]byte, error) { return json.Marshal(p.items) }

func pageOf(q url.Values) (page, per int) {
	page, per = 1, 30
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		per = min(v, 100)
	}
	return page, per
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func labelsJSON(names []string) []*github.Label {
	out := []*github.Label{}
	for _, n := range names {
		out = append(out, &github.Label{Name: github.String(n)})
	}
	return out
}

func commentJSON(c *Comment) *github.IssueComment {
	id := c.ID
	return &github.IssueComment{ID: &id, Body: github.String(c.Body), User: &github.User{Login: github.String(c.Author)},
		CreatedAt: &github.Timestamp{Time: c.CreatedAt}, UpdatedAt: &github.Timestamp{Time: c.UpdatedAt},
		HTMLURL: github.String(fmt.Sprintf("https://github.com/%s/issues/%d#issuecomment-%d", c.Repo, c.Number, c.ID))}
}

func (s *Server) issueJSON(repo string, n int, is *issue) *github.Issue {
	out := &github.Issue{Number: &n, Title: github.String(is.title), Body: github.String(is.body), State: github.String(is.state),
		User: &github.User{Login: github.String(is.author)}, Labels: []*github.Label{}, Assignees: []*github.User{}}
	if is.stateReason != "" {
		out.StateReason = github.String(is.stateReason)
	}
	for _, l := range labelsJSON(is.labels) {
		out.Labels = append(out.Labels, l)
	}
	for _, a := range is.assignees {
		out.Assignees = append(out.Assignees, &github.User{Login: github.String(a)})
	}
	if is.isPull {
		out.PullRequestLinks = &github.PullRequestLinks{URL: github.String(fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", repo, n))}
	}
	return out
}

func (s *Server) pullJSON(repo string, p *Pull) *github.PullRequest {
	n := p.Number
	is := s.issue(repo, n)
	owner, _, _ := strings.Cut(repo, "/")
	headOwner, headName, _ := strings.Cut(p.HeadRepo, "/")
	out := &github.PullRequest{Number: &n, Title: github.String(p.Title), Body: github.String(p.Body), State: github.String(is.state),
		Merged: github.Bool(p.Merged), User: &github.User{Login: github.String(p.Author)},
		CreatedAt: &github.Timestamp{Time: p.CreatedAt},
		Head: &github.PullRequestBranch{SHA: github.String(p.HeadSHA), Ref: github.String(p.HeadRef),
			Repo: &github.Repository{FullName: github.String(p.HeadRepo), Name: &headName, Owner: &github.User{Login: &headOwner}}},
		Base: &github.PullRequestBranch{SHA: github.String(p.BaseSHA), Ref: github.String(p.BaseRef),
			Repo: &github.Repository{FullName: github.String(repo), Owner: &github.User{Login: &owner}}},
		HTMLURL: github.String(fmt.Sprintf("https://github.com/%s/pull/%d", repo, n)),
	}
	if p.Merged {
		out.MergedAt = &github.Timestamp{Time: p.CreatedAt.Add(time.Hour)}
		if p.MergedBy != "" {
			out.MergedBy = &github.User{Login: github.String(p.MergedBy)}
		}
	}
	return out
}

func (s *Server) pullRoute(r *http.Request, repo string, seg []string, body []byte) (int, any) {
	if len(seg) == 2 && seg[1] == "requested_reviewers" && r.Method == "POST" {
		n, _ := strconv.Atoi(seg[0])
		p := s.pulls[key(repo, n)]
		if p == nil {
			return http.StatusNotFound, nil
		}
		var req struct{ Reviewers []string }
		if err := json.Unmarshal(body, &req); err != nil {
			return http.StatusBadRequest, nil
		}
		for _, u := range req.Reviewers {
			if !containsFold(p.Reviewers, u) {
				p.Reviewers = append(p.Reviewers, u)
			}
		}
		return http.StatusCreated, s.pullJSON(repo, p)
	}
	if r.Method != "GET" {
		return http.StatusNotFound, nil
	}
	if len(seg) == 0 {
		state := r.URL.Query().Get("state")
		if state == "" {
			state = "open"
		}
		out := []*github.PullRequest{}
		var nums []int
		for k, p := range s.pulls {
			if strings.HasPrefix(k, repo+"#") && (state == "all" || s.issue(repo, p.Number).state == state) {
				nums = append(nums, p.Number)
			}
		}
		sort.Sort(sort.Reverse(sort.IntSlice(nums)))
		for _, n := range nums {
			out = append(out, s.pullJSON(repo, s.pulls[key(repo, n)]))
		}
		return http.StatusOK, out
	}
	n, err := strconv.Atoi(seg[0])
	p := s.pulls[key(repo, n)]
	if err != nil || p == nil {
		return http.StatusNotFound, nil
	}
	switch {
	case len(seg) == 1:
		return http.StatusOK, s.pullJSON(repo, p)
	case len(seg) == 2 && seg[1] == "files":
		out := []*github.CommitFile{}
		for _, f := range p.Files {
			st := f.Status
			if st == "" {
				st = "modified"
			}
			out = append(out, &github.CommitFile{Filename: github.String(f.Name), Status: github.String(st),
				Additions: github.Int(f.Additions), Deletions: github.Int(f.Deletions), Changes: github.Int(f.Additions + f.Deletions), Patch: github.String(f.Patch)})
		}
		return http.StatusOK, out
	case len(seg) == 2 && seg[1] == "commits":
		out := []*github.RepositoryCommit{}
		for _, c := range p.Commits {
			msg := c.Message
			for _, co := range c.CoAuthors {
				msg += fmt.Sprintf("\n\nCo-authored-by: %s <%s@users.noreply.github.com>", co, co)
			}
			out = append(out, &github.RepositoryCommit{SHA: github.String(c.SHA), Author: &github.User{Login: github.String(c.Author)},
				Commit: &github.Commit{Message: github.String(msg)}})
		}
		return http.StatusOK, out
	}
	return http.StatusNotFound, nil
}

func (s *Server) checkRoute(r *http.Request, repo string, seg []string, body []byte) (int, any) {
	m := r.Method
	if len(seg) == 0 && m == "POST" {
		var req github.CreateCheckRunOptions
		if err := json.Unmarshal(body, &req); err != nil {
			return http.StatusBadRequest, nil
		}
		if req.Name == "" || req.HeadSHA == "" {
			return http.StatusUnprocessableEntity, map[string]string{"message": "name and head_sha are required"}
		}
		s.nextID++
		cr := &CheckRun{ID: s.nextID, Repo: repo, Name: req.Name, HeadSHA: req.HeadSHA, Status: "queued", Actions: req.Actions}
		if st := applyCheck(cr, req.Status, req.Conclusion, req.ExternalID, req.DetailsURL, req.Output); st != 0 {
			return st, map[string]string{"message": "invalid check run"}
		}
		s.checkRuns[cr.ID] = cr
		return http.StatusCreated, checkRunJSON(cr)
	}
	if len(seg) == 0 {
		return http.StatusNotFound, nil
	}
	id, _ := strconv.ParseInt(seg[0], 10, 64)
	cr := s.checkRuns[id]
	if cr == nil || cr.Repo != repo {
		return http.StatusNotFound, nil
	}
	switch {
	case len(seg) == 1 && m == "GET":
		return http.StatusOK, checkRunJSON(cr)
	case len(seg) == 1 && m == "PATCH":
		var req github.UpdateCheckRunOptions
		if err := json.Unmarshal(body, &req); err != nil {
			return http.StatusBadRequest, nil
		}
		if req.Actions != nil {
			cr.Actions = req.Actions
		}
		if st := applyCheck(cr, req.Status, req.Conclusion, req.ExternalID, req.DetailsURL, req.Output); st != 0 {
			return st, map[string]string{"message": "invalid check run"}
		}
		cr.Updates++
		return http.StatusOK, checkRunJSON(cr)
	case len(seg) == 2 && seg[1] == "annotations" && m == "GET":
		return http.StatusOK, cr.Annotations
	}
	return http.StatusNotFound, nil
}

// applyCheck applies a create or update the way GitHub validates it: a conclusion makes the
// run completed, at most 50 annotations per request, output text within 65,535 characters.
func applyCheck(cr *CheckRun, status, conclusion, externalID, detailsURL *string, out *github.CheckRunOutput) int {
	if status != nil {
		switch *status {
		case "queued", "in_progress", "completed", "waiting", "requested", "pending":
			cr.Status = *status
		default:
			return http.StatusUnprocessableEntity
		}
	}
	if conclusion != nil {
		cr.Conclusion, cr.Status = *conclusion, "completed"
	}
	if externalID != nil {
		cr.ExternalID = *externalID
	}
	if detailsURL != nil {
		cr.DetailsURL = *detailsURL
	}
	if out != nil {
		if len(out.Annotations) > 50 || len(out.GetSummary()) > 65535 || len(out.GetText()) > 65535 {
			return http.StatusUnprocessableEntity
		}
		cr.Title, cr.Summary, cr.Text = out.GetTitle(), out.GetSummary(), out.GetText()
		cr.Annotations = append(cr.Annotations, out.Annotations...)
	}
	return 0
}

func checkRunJSON(cr *CheckRun) *github.CheckRun {
	id := cr.ID
	out := &github.CheckRun{ID: &id, Name: github.String(cr.Name), HeadSHA: github.String(cr.HeadSHA), Status: github.String(cr.Status),
		ExternalID: github.String(cr.ExternalID), DetailsURL: github.String(cr.DetailsURL),
		Output: &github.CheckRunOutput{Title: github.String(cr.Title), Summary: github.String(cr.Summary), Text: github.String(cr.Text),
			AnnotationsCount: github.Int(len(cr.Annotations))}}
	if cr.Conclusion != "" {
		out.Conclusion = github.String(cr.Conclusion)
	}
	return out
}
