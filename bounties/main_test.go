package bounties

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	osexec "os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"
	"gorm.io/gorm"
)

// stripeMockURL is the stripe-mock this test binary started, or "" when it could not.
var (
	stripeMockURL string
	stripeMockWhy string
)

// TestMain starts stripe-mock on a free loopback port for the whole package.
func TestMain(m *testing.M) {
	var cmd *osexec.Cmd
	stripeMockURL, cmd, stripeMockWhy = startStripeMock()
	dropTemplate := makePostgresTemplate()
	code := m.Run()
	dropTemplate()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
	os.Exit(code)
}

// pgTemplate is a migrated PostgreSQL database that tests copy (CREATE DATABASE … TEMPLATE),
// which is several times faster than migrating a fresh one; "" when it could not be made, in
// which case tests fall back to dbtest.Postgres (which skips or fails as configured).
var pgTemplate, pgAdmin string

func makePostgresTemplate() (drop func()) {
	pgAdmin = os.Getenv("GRADFORGE_TEST_POSTGRES_URL")
	if pgAdmin == "" {
		pgAdmin = dbtest.DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, _, err := migrations.Connect(ctx, pgAdmin)
	if err != nil {
		return func() {}
	}
	defer migrations.Close(admin)
	name := fmt.Sprintf("gf_bounties_tmpl_%d", time.Now().UnixNano())
	if admin.Exec("CREATE DATABASE "+name).Error != nil {
		return func() {}
	}
	drop = func() {
		if a, _, err := migrations.Connect(context.Background(), pgAdmin); err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			migrations.Close(a)
		}
	}
	u, _ := url.Parse(pgAdmin)
	u.Path = "/" + name
	db, err := migrations.Open(ctx, u.String())
	if err != nil {
		drop()
		return func() {}
	}
	migrations.Close(db) // a template must have no connections
	pgTemplate = name
	return drop
}

// postgres returns a fresh migrated PostgreSQL database for one test.
func postgres(t *testing.T) *gorm.DB {
	t.Helper()
	if pgTemplate == "" {
		return dbtest.Postgres(t)
	}
	admin, _, err := migrations.Connect(context.Background(), pgAdmin)
	if err != nil {
		t.Fatal(err)
	}
	defer migrations.Close(admin)
	var b [6]byte
	rand.Read(b[:])
	name := "gf_test_" + hex.EncodeToString(b[:])
	// Copies from one template are serialised by PostgreSQL; retry while it is busy.
	for i := 0; ; i++ {
		err = admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + pgTemplate).Error
		if err == nil || i == 50 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("copy template database: %v", err)
	}
	t.Cleanup(func() {
		if a, _, err := migrations.Connect(context.Background(), pgAdmin); err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			migrations.Close(a)
		}
	})
	u, _ := url.Parse(pgAdmin)
	u.Path = "/" + name
	db, _, err := migrations.Connect(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { migrations.Close(db) })
	return db
}

func startStripeMock() (string, *osexec.Cmd, string) {
	path, err := osexec.LookPath("stripe-mock")
	if err != nil {
		if gp, e := osexec.Command("go", "env", "GOPATH").Output(); e == nil {
			cand := strings.TrimSpace(string(gp)) + "/bin/stripe-mock"
			if _, e := os.Stat(cand); e == nil {
				path, err = cand, nil
			}
		}
	}
	if err != nil {
		return "", nil, "stripe-mock is not installed (go install github.com/stripe/stripe-mock@latest)"
	}
	cmd := osexec.Command(path, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err.Error()
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", nil, "start stripe-mock: " + err.Error()
	}
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`HTTP at address: (127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- "http://" + m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u, cmd, ""
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return "", nil, "stripe-mock did not report its address within 30s"
	}
}

// needStripe skips (or, with GRADFORGE_TEST_STRIPE=require, fails) without stripe-mock.
func needStripe(t testing.TB) {
	t.Helper()
	if stripeMockURL != "" {
		return
	}
	if os.Getenv("GRADFORGE_TEST_STRIPE") == "require" {
		t.Fatalf("%s and GRADFORGE_TEST_STRIPE=require", stripeMockWhy)
	}
	t.Skipf("%s: skipping Stripe test (set GRADFORGE_TEST_STRIPE=require to fail instead)", stripeMockWhy)
}

// stripeProxy sits between the code and stripe-mock. It counts requests and plays the parts
// of Stripe that stripe-mock does not: a repeated idempotency key gets the first response
// again, and chosen requests fail or lose their answer.
type stripeProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	// requests counts every request by "METHOD /path".
	requests map[string]int
	// keys counts requests per idempotency key; created counts keys that reached stripe-mock.
	keys    map[string]int
	created map[string]int
	cached  map[string]cachedResponse
	keyLock map[string]*sync.Mutex
	// refuse makes POSTs to a path fail with a Stripe 400 (a definite no).
	refuse map[string]string
	// loseAnswer makes the next POST to a path reach stripe-mock and then answer 500, as if
	// the reply were lost on the way back.
	loseAnswer map[string]int
	// rewrite edits stripe-mock's answer to a path prefix (its canned objects have no fees).
	rewrite map[string]func(map[string]any)
}

type cachedResponse struct {
	status int
	body   []byte
}

func newStripeProxy(t testing.TB) *stripeProxy {
	t.Helper()
	needStripe(t)
	target, _ := url.Parse(stripeMockURL)
	p := &stripeProxy{requests: map[string]int{}, keys: map[string]int{}, created: map[string]int{}, cached: map[string]cachedResponse{},
		keyLock: map[string]*sync.Mutex{}, refuse: map[string]string{}, loseAnswer: map[string]int{}, rewrite: map[string]func(map[string]any){}}
	client := &http.Client{Timeout: 30 * time.Second}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		p.mu.Lock()
		p.requests[r.Method+" "+r.URL.Path]++
		var kl *sync.Mutex
		if key != "" {
			p.keys[key]++
			if p.keyLock[key] == nil {
				p.keyLock[key] = &sync.Mutex{}
			}
			kl = p.keyLock[key]
		}
		refuseMsg := p.refuse[r.URL.Path]
		p.mu.Unlock()
		if kl != nil {
			kl.Lock()
			defer kl.Unlock()
			p.mu.Lock()
			c, ok := p.cached[key]
			p.mu.Unlock()
			if ok {
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(c.status)
				w.Write(c.body)
				return
			}
		}
		if refuseMsg != "" && r.Method == http.MethodPost {
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"type": "invalid_request_error", "message": refuseMsg}})
			if key != "" {
				p.mu.Lock()
				p.cached[key] = cachedResponse{http.StatusBadRequest, b}
				p.mu.Unlock()
			}
			w.WriteHeader(http.StatusBadRequest)
			w.Write(b)
			return
		}
		u := *target
		u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
		for k, v := range r.Header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		p.mu.Lock()
		for prefix, fn := range p.rewrite {
			if strings.HasPrefix(r.URL.Path, prefix) {
				var obj map[string]any
				if json.Unmarshal(rb, &obj) == nil {
					fn(obj)
					rb, _ = json.Marshal(obj)
				}
			}
		}
		if key != "" && resp.StatusCode < 500 {
			p.created[key]++
			p.cached[key] = cachedResponse{resp.StatusCode, rb}
		}
		lose := p.loseAnswer[r.URL.Path] > 0
		if lose {
			p.loseAnswer[r.URL.Path]--
		}
		p.mu.Unlock()
		if lose {
			http.Error(w, `{"error":{"type":"api_error","message":"connection lost"}}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(rb)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *stripeProxy) count(what string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[what]
}

// createdWith counts keys with a prefix that reached Stripe and created something.
func (p *stripeProxy) createdWith(prefix string) (keys, requests int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, n := range p.created {
		if strings.HasPrefix(k, prefix) {
			keys++
			requests += n
		}
	}
	return
}

// recorder is a Notifier that keeps what it was told.
type recorder struct {
	mu      sync.Mutex
	notices []Notice
}

func (r *recorder) Notify(_ context.Context, n Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notices = append(r.notices, n)
	return nil
}

func (r *recorder) last(repo string, number int) (Notice, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.notices) - 1; i >= 0; i-- {
		if n := r.notices[i]; n.Repo == repo && n.Number == number {
			return n, true
		}
	}
	return Notice{}, false
}

// clock is a test's movable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testSecret = "whsec_test_secret"

// env is one test's world: a service over a fresh database, behind a counting Stripe.
type env struct {
	t     *testing.T
	repo  string // the repository this test works in (tables share a database)
	db    *gorm.DB
	s     *Service
	proxy *stripeProxy
	notes *recorder
	clock *clock
	ctx   context.Context
}

func newEnv(t *testing.T, db *gorm.DB, withStripe bool) *env {
	t.Helper()
	e := &env{t: t, db: db, repo: "o/r", notes: &recorder{}, clock: &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}, ctx: context.Background()}
	cfg := Config{Notifier: e.notes, WebhookSecret: testSecret, BaseURL: "http://forge.test", Now: e.clock.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if withStripe {
		e.proxy = newStripeProxy(t)
		st, err := NewStripe(StripeOptions{Key: "sk_test_123", APIURL: e.proxy.srv.URL, MaxNetworkRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Stripe = st
	}
	e.s = New(db, cfg)
	t.Cleanup(func() { e.audit() })
	return e
}

// audit fails the test unless every ledger transaction sums to zero and the money state
// agrees with the ledger.
func (e *env) audit() {
	e.t.Helper()
	problems, err := e.s.Audit(context.Background())
	if err != nil {
		e.t.Errorf("audit: %v", err)
	}
	for _, p := range problems {
		e.t.Errorf("ledger audit: %s", p)
	}
	var total int64
	e.db.Raw(`SELECT COALESCE(SUM(amount_cents), 0) FROM bounty_ledger_entries`).Scan(&total)
	if total != 0 {
		e.t.Errorf("ledger sums to %d cents, want 0", total)
	}
}

// count returns a COUNT(*) query's answer.
func (e *env) count(sql string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Raw(sql, args...).Scan(&n).Error; err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// snapshot counts rows of every bounties table, to prove a refusal wrote nothing.
func (e *env) snapshot() map[string]int64 {
	out := map[string]int64{}
	for _, tb := range []string{"bounties", "bounty_fundings", "bounty_attempts", "bounty_claims", "bounty_claim_splits", "bounty_credits",
		"bounty_ledger_txns", "bounty_ledger_entries", "bounty_accounts", "bounty_stripe_events", "bounty_events", "bounty_people",
		"bounty_stage_events", "bounty_proposals", "bounty_offers", "bounty_bans", "bounty_policies"} {
		out[tb] = e.count("SELECT COUNT(*) FROM " + tb)
	}
	return out
}

// sendEvent signs and delivers a Stripe event to the webhook route.
func (e *env) sendEvent(h http.Handler, id, typ string, created int64, object any) *httptest.ResponseRecorder {
	e.t.Helper()
	raw, _ := json.Marshal(object)
	payload, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": created, "api_version": stripe.APIVersion,
		"data": map[string]any{"object": json.RawMessage(raw)}})
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: testSecret, Timestamp: time.Now()})
	req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(payload))
	req.Header.Set("Stripe-Signature", sp.Header)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// each runs fn on SQLite and PostgreSQL, in parallel with other tests (most of a PostgreSQL
// test's time is creating and migrating its database).
func each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, dbtest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, postgres(t)) })
}

// table runs rows on one database per driver (creating a PostgreSQL database is most of a
// test's time), each row in its own repository so rows do not see each other's bounties.
func table[R any](t *testing.T, rows []R, name func(R) string, withStripe bool, fn func(t *testing.T, e *env, r R)) {
	t.Helper()
	each(t, func(t *testing.T, db *gorm.DB) {
		for i, r := range rows {
			t.Run(name(r), func(t *testing.T) {
				e := newEnv(t, db, withStripe)
				e.repo = fmt.Sprintf("o/r%d", i)
				fn(t, e, r)
			})
		}
	})
}

// fund funds a bounty from the platform.
func (e *env) fund(repo string, issue int, cents int64) Bounty {
	e.t.Helper()
	if _, err := e.s.Fund(e.ctx, FundInput{Repo: repo, Issue: issue, Title: fmt.Sprintf("issue %d", issue), Sponsor: "maint", AmountCents: cents, FromPlatform: true, Maintainer: true, RequestKey: fmt.Sprintf("fund-%s-%d-%d", repo, issue, cents)}); err != nil {
		e.t.Fatalf("fund %s#%d: %v", repo, issue, err)
	}
	b, err := liveBounty(e.db, repo, issue)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// veteran is a contributor the claim-flood rules let through.
func (e *env) veteran(l string) Contributor {
	return Contributor{Login: l, CreatedAt: e.clock.Now().AddDate(-3, 0, 0), MergedPRs: 5}
}

// onboard gives a contributor a Stripe account with payouts enabled.
func (e *env) onboard(l string) {
	e.t.Helper()
	r, err := e.s.Onboard(e.ctx, l)
	if err != nil {
		e.t.Fatalf("onboard %s: %v", l, err)
	}
	if a, _ := accountOf(e.db, l); a == nil || (r.Link == "" && !a.PayoutsEnabled) {
		e.t.Fatalf("onboard %s gave no link: %+v", l, r)
	}
	if err := e.db.Exec(`UPDATE bounty_accounts SET payouts_enabled = TRUE WHERE login = ?`, l).Error; err != nil {
		e.t.Fatal(err)
	}
}

// win makes a merged PR by author win the bounty on issue and returns its credits.
func (e *env) win(repo string, issue, pr int, author string, split ...string) []Credit {
	e.t.Helper()
	out, err := e.s.OnMerged(e.ctx, MergedPR{Repo: repo, Number: pr, Merged: true, Author: e.veteran(author), CoAuthors: split, Claims: []int{issue}, Split: split})
	if err != nil {
		e.t.Fatalf("merge #%d: %v", pr, err)
	}
	if len(out) != 1 || !out[0].Won {
		e.t.Fatalf("merge #%d: outcome %+v, want one win", pr, out)
	}
	return out[0].Credits
}

func (e *env) credit(id int64) Credit {
	e.t.Helper()
	c, err := creditByID(e.db, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// routes is the service's routes on a bare gin engine.
func routes(s *Service) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	s.Routes(r)
	return r
}

// idOf reads the "id" of a JSON object.
func idOf(t testing.TB, body []byte) string {
	t.Helper()
	var v struct{ ID string }
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		t.Fatalf("no id in %s: %v", body, err)
	}
	return v.ID
}

func (p *stripeProxy) keyUses(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[key]
}

// response is the first response Stripe gave to an idempotency key.
func (p *stripeProxy) response(key string) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cached[key].body
}

func mustSQLite(t *testing.T) *gorm.DB { return dbtest.SQLite(t) }
