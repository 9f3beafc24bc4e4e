package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// harness is a real server (router, app, database) on loopback with seeded data.
type harness struct {
	t   testing.TB
	app *App
	mem *memData
	srv *httptest.Server
}

func newHarness(t testing.TB, db *gorm.DB, cfg Config) *harness {
	t.Helper()
	mem := newMem()
	seed(mem)
	return newHarnessWith(t, db, cfg, mem)
}

func newHarnessWith(t testing.TB, db *gorm.DB, cfg Config, mem *memData) *harness {
	t.Helper()
	h := newHarnessSources(t, db, cfg, mem.sources())
	h.mem = mem
	return h
}

// newHarnessSources serves the app over the given sources (real packages' adapters).
func newHarnessSources(t testing.TB, db *gorm.DB, cfg Config, src Sources) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Secret == nil {
		cfg.Secret = []byte("test secret, thirty-two bytes ok")
	}
	app, err := New(db, log, cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(db, log)
	app.Routes(r)
	h := &harness{t: t, app: app, srv: httptest.NewServer(r)}
	t.Cleanup(h.srv.Close)
	return h
}

// client is one browser: its own cookie jar, no automatic redirects.
type client struct {
	h  *harness
	hc *http.Client
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (c *client) do(req *http.Request) resp {
	c.h.t.Helper()
	r, err := c.hc.Do(req)
	if err != nil {
		c.h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, string(b), r.Header}
}

func (c *client) get(path string) resp {
	c.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.h.srv.URL+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) resp {
	c.h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the CSRF token from a page's form, as a browser would submit it.
func (c *client) csrf(path string) string {
	c.h.t.Helper()
	r := c.get(path)
	m := csrfRe.FindStringSubmatch(r.body)
	if m == nil {
		c.h.t.Fatalf("no CSRF token on %s (status %d)", path, r.status)
	}
	return m[1]
}

// signIn uses the dev-mode form, CSRF token and all.
func (c *client) signIn(login, role string) {
	c.h.t.Helper()
	tok := c.csrf("/login")
	r := c.post("/login/dev", url.Values{"csrf_token": {tok}, "login": {login}, "role": {role}, "next": {"/"}})
	if r.status != http.StatusSeeOther {
		c.h.t.Fatalf("dev sign-in as %s: status %d: %s", login, r.status, r.body)
	}
}

// seed fills the store with a small, varied forge: two repositories, bounties in every
// state, one hostile title, payouts awaiting approval and paid, proposals, people, a run.
func seed(m *memData) {
	now := time.Now().UTC()
	day := 24 * time.Hour
	add := func(repo string, issue int, title string, cents int64, status string, age time.Duration, labels ...string) {
		m.bounties = append(m.bounties, Bounty{ID: int64(len(m.bounties) + 1), Repo: repo, Issue: issue, Title: title, AmountCents: cents, Status: status, CreatedAt: now.Add(-age), Labels: labels,
			Sponsors: []Sponsor{{Login: "sponsorco", AmountCents: cents, At: now.Add(-age)}}})
	}
	add("gradforge/gradforge", 101, "Fuse reduce into elementwise kernels", 50000, "open", 3*day, "speed")
	add("gradforge/gradforge", 102, "ONNX Resize op with all modes", 30000, "open", 10*day, "onnx")
	add("gradforge/gradforge", 103, "CUDA conv2d 2x faster", 150000, "open", 1*day, "speed", "cuda")
	add("gradforge/gradforge", 104, "Int8 matmul on CPU", 20000, "claimed", 20*day, "quant")
	add("gradforge/gradforge", 105, "Winograd conv <script>alert('x')</script>", 42000, "open", 5*day, "speed")
	add("gradforge/gradforge", 106, "BEAM search cache on disk", 8000, "paid", 40*day)
	add("gradforge/tools", 7, "Speed chart annotations", 5000, "open", 2*day, "web")
	add("gradforge/tools", 8, "Old idea", 1000, "expired", 90*day)
	m.bounties[0].Attempts = []Attempt{{Login: "alice", StartedAt: now.Add(-day), ExpiresAt: now.Add(6 * day), Active: true}}
	m.bounties[0].History = []Event{{At: now.Add(-3 * day), Actor: "maint", Text: "opened the bounty"}, {At: now.Add(-day), Actor: "alice", Text: "attempts <b>it</b>"}}
	m.bounties[0].Claims = []Claim{{PR: 201, Author: "alice", Status: "pending"}}
	m.payouts = []Payout{
		{ID: 1, Repo: "gradforge/gradforge", Issue: 104, Title: "Int8 matmul on CPU", Login: "bob", AmountCents: 20000, Status: "awaiting_approval", CreatedAt: now.Add(-2 * day)},
		{ID: 2, Repo: "gradforge/gradforge", Issue: 106, Title: "BEAM search cache on disk", Login: "alice", AmountCents: 8000, Status: "paid", CreatedAt: now.Add(-35 * day)},
		{ID: 3, Repo: "gradforge/gradforge", Issue: 90, Title: "Pad op", Login: "carol", AmountCents: 12000, Status: "paid", CreatedAt: now.Add(-70 * day)},
		{ID: 4, Repo: "gradforge/tools", Issue: 3, Title: "Badge", Login: "bob", AmountCents: 3000, Status: "awaiting_approval", CreatedAt: now.Add(-day)},
	}
	m.proposals = []Proposal{{ID: 1, Repo: "gradforge/gradforge", Login: "carol", Title: "Metal backend <img src=x onerror=alert(1)>", AmountCents: 100000, Status: "pending", CreatedAt: now.Add(-day)}}
	m.people = []PipelineEntry{
		{Login: "alice", Stage: "hunter", PaidCents: 8000, Bounties: 1},
		{Login: "carol", Stage: "proposer", PaidCents: 36000, Bounties: 3, Proposals: 1},
		{Login: "dave", Stage: "candidate", PaidCents: 90000, Bounties: 7},
		{Login: "erin", Stage: "hired", PaidCents: 150000, Bounties: 11},
	}
	m.offers["erin"] = &Offer{Login: "erin", StipendCents: 800000, EquityBps: 25, VestingStart: now, CliffMonths: 12, RecordedBy: "maint", RecordedAt: now}
	m.runs = []Run{{ID: 1, Repo: "gradforge/gradforge", PR: 201, SHA: "0123456789abcdef0123456789abcdef01234567", Title: "Fuse reduce <i>kernels</i>", Status: "completed", CreatedAt: now.Add(-time.Hour),
		Checks: []Check{
			{Name: "lines", Status: "completed", Conclusion: "success", Summary: "total 7,512 (+34)", Tables: []Table{{Columns: []string{"file", "lines", "diff"}, Rows: [][]string{{"framework/tensor/ops.go", "812", "+34"}}}}},
			{Name: "speed", Status: "completed", Conclusion: "failure", Tables: []Table{{Columns: []string{"benchmark", "base", "head", "ratio", "interval", "verdict"}, Rows: [][]string{{"matmul_512", "1.00ms", "1.21ms", "1.21", "[1.17, 1.25]", "slower"}}}}},
		},
		Jobs: []Job{{ID: 11, Name: "parity (cuda)", Status: "running", Runner: "h200-a", Artifacts: []Artifact{{Name: "report.json", Bytes: 2048}}}}}}
	m.logs[11] = []LogChunk{{Seq: 1, Text: "== building\n"}, {Seq: 2, Text: "ok <script>x</script>\n"}}
	m.runners = []Runner{{ID: 1, Name: "h200-a", Labels: []string{"cuda", "h200"}, Version: "0.1.0", GPU: "NVIDIA H200", Busy: true, LastSeen: now.Add(-5 * time.Second)}}
}

func must(t testing.TB, r resp, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body:\n%.2000s", r.status, status, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			t.Fatalf("body lacks %q:\n%.3000s", c, r.body)
		}
	}
}

func mustNot(t testing.TB, r resp, absent ...string) {
	t.Helper()
	for _, a := range absent {
		if strings.Contains(r.body, a) {
			t.Fatalf("body contains %q:\n%.3000s", a, r.body)
		}
	}
}

func count(s, sub string) int { return strings.Count(s, sub) }

func now() time.Time { return time.Now().UTC() }

func itoa(n int64) string { return fmt.Sprint(n) }
