package web

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

func TestBoard(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{DevLogin: true})
	c := h.client()
	for _, tc := range []struct {
		name, query  string
		want, absent []string
	}{
		{"open bounties by amount by default", "/", []string{"CUDA conv2d 2x faster", "Fuse reduce", "5 bounties match"}, []string{"Int8 matmul", "Old idea"}},
		{"search matches every word of the title", "/?q=onnx+resize", []string{"ONNX Resize op", "1 bounty matches"}, []string{"Fuse reduce"}},
		{"repository filter", "/?repo=gradforge/tools", []string{"Speed chart annotations"}, []string{"Fuse reduce"}},
		{"label filter", "/?label=cuda", []string{"CUDA conv2d"}, []string{"ONNX Resize"}},
		{"status filter", "/?status=claimed", []string{"Int8 matmul"}, []string{"CUDA conv2d"}},
		{"any status", "/?status=", []string{"Old idea", "Int8 matmul", "8 bounties match"}, nil},
		{"amount range in dollars", "/?min=300&max=500", []string{"Fuse reduce", "Winograd", "ONNX Resize"}, []string{"CUDA conv2d", "Speed chart"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.get(tc.query)
			must(t, r, http.StatusOK, tc.want...)
			mustNot(t, r, tc.absent...)
		})
	}
	t.Run("sort by amount puts the largest first", func(t *testing.T) {
		b := c.get("/?sort=amount").body
		if strings.Index(b, "CUDA conv2d") > strings.Index(b, "Fuse reduce") || strings.Index(b, "Fuse reduce") > strings.Index(b, "Speed chart") {
			t.Fatal("board is not ordered by amount")
		}
	})
	t.Run("sort by age puts the oldest first", func(t *testing.T) {
		b := c.get("/?sort=age").body
		if strings.Index(b, "ONNX Resize") > strings.Index(b, "CUDA conv2d") {
			t.Fatal("board is not ordered oldest first")
		}
	})
	for _, bad := range []string{"/?sort=random", "/?status=lost", "/?min=abc", "/?min=500&max=100", "/?page=0"} {
		t.Run("bad input "+bad, func(t *testing.T) { must(t, c.get(bad), http.StatusBadRequest) })
	}
}

func TestBoardPages(t *testing.T) {
	mem := newMem()
	for i := range 120 {
		mem.bounties = append(mem.bounties, Bounty{ID: int64(i + 1), Repo: "o/r", Issue: i + 1, Title: "bounty number " + strings.Repeat("x", i%3), AmountCents: int64(1000 + i), Status: "open"})
	}
	h := newHarnessWith(t, dbtest.SQLite(t), Config{}, mem)
	c := h.client()
	r := c.get("/")
	must(t, r, http.StatusOK, "Page 1 of 3", `rel="next"`)
	if n := count(r.body, `class="title"`); n != boardPageSize {
		t.Fatalf("first page shows %d bounties, want %d", n, boardPageSize)
	}
	r = c.get("/?page=3")
	must(t, r, http.StatusOK, "Page 3 of 3", `rel="prev"`)
	if n := count(r.body, `class="title"`); n != 20 {
		t.Fatalf("last page shows %d bounties, want 20", n)
	}
}

func TestPagesRender(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db, Config{DevLogin: true})
		c := h.client()
		must(t, c.get("/bounties/gradforge/gradforge/101"), http.StatusOK, "Fuse reduce into elementwise kernels", "$500", "@alice", "locked until", "#201", "opened the bounty")
		must(t, c.get("/bounties/gradforge/gradforge/999"), http.StatusNotFound, "No such bounty")
		must(t, c.get("/bounties/gradforge/gradforge/abc"), http.StatusBadRequest)
		must(t, c.get("/leaderboard"), http.StatusOK, "@carol", "$120", "@alice", "$80")
		must(t, c.get("/people/carol"), http.StatusOK, "proposer", "Pad op", "Metal backend")
		must(t, c.get("/runs"), http.StatusOK, "#1", "lines", "speed")
		must(t, c.get("/runs/1"), http.StatusOK, "framework/tensor/ops.go", "matmul_512", "[1.17, 1.25]", "report.json", "h200-a")
		must(t, c.get("/runs/1/jobs/11/log"), http.StatusOK, "== building", "/static/logs.js")
		must(t, c.get("/runs/1/jobs/99/log"), http.StatusNotFound)
		must(t, c.get("/runners"), http.StatusOK, "h200-a", "NVIDIA H200", "busy")
		must(t, c.get("/charts"), http.StatusOK, "/charts/speed.svg", "/charts/lines.svg", "/charts/paid.svg")
		must(t, c.get("/no/such/page"), http.StatusNotFound, "There is no page at this address")
		must(t, c.get("/healthz"), http.StatusOK, "ok")
		must(t, c.get("/readyz"), http.StatusOK, "ready")
		art := c.get("/runs/1/jobs/11/artifacts/report.json")
		must(t, art, http.StatusOK, "artifact report.json")
		if !strings.HasPrefix(art.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("artifact served inline: %q", art.header.Get("Content-Disposition"))
		}
		must(t, c.get("/runs/1/jobs/11/artifacts/other.bin"), http.StatusNotFound)
	})
}

func TestEscaping(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{DevLogin: true})
	c := h.client()
	for _, path := range []string{"/", "/bounties/gradforge/gradforge/105", "/bounties/gradforge/gradforge/101", "/runs/1", "/runs/1/jobs/11/log", "/people/carol"} {
		r := c.get(path)
		must(t, r, http.StatusOK)
		mustNot(t, r, "<script>alert", "<script>x</script>", "<img src=x", "<b>it</b>", "<i>kernels</i>")
	}
	must(t, c.get("/bounties/gradforge/gradforge/105"), http.StatusOK, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
	c.signIn("maint", "maintainer")
	r := c.get("/console/gradforge/gradforge")
	must(t, r, http.StatusOK, "Metal backend &lt;img src=x onerror=alert(1)&gt;")
	mustNot(t, r, "<img src=x")
	// The search box echoes the query escaped.
	r = c.get("/?q=" + url.QueryEscape(`"><script>alert(1)</script>`))
	must(t, r, http.StatusOK, `value="&#34;&gt;&lt;script&gt;`)
	mustNot(t, r, "<script>alert(1)")
}

func TestCSRF(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db, Config{DevLogin: true})
		anon := h.client()
		t.Run("sign-in form without token", func(t *testing.T) {
			must(t, anon.post("/login/dev", url.Values{"login": {"mallory"}, "role": {"maintainer"}}), http.StatusForbidden)
		})
		t.Run("sign-in form with a forged token", func(t *testing.T) {
			anon.get("/login")
			must(t, anon.post("/login/dev", url.Values{"csrf_token": {"forged"}, "login": {"mallory"}, "role": {"maintainer"}}), http.StatusForbidden)
		})
		m := h.client()
		m.signIn("maint", "maintainer")
		approve := "/console/gradforge/gradforge/payouts/1/approve"
		t.Run("approve without token", func(t *testing.T) {
			must(t, m.post(approve, nil), http.StatusForbidden)
		})
		t.Run("approve with a wrong token", func(t *testing.T) {
			must(t, m.post(approve, url.Values{"csrf_token": {"AAAA"}}), http.StatusForbidden)
		})
		t.Run("approve with another browser's token", func(t *testing.T) {
			other := h.client()
			other.signIn("maint", "maintainer")
			must(t, m.post(approve, url.Values{"csrf_token": {other.csrf("/console/gradforge/gradforge")}}), http.StatusForbidden)
		})
		t.Run("anonymous token does not survive sign-in", func(t *testing.T) {
			b := h.client()
			pre := b.csrf("/login")
			b.signIn("maint", "maintainer")
			must(t, b.post(approve, url.Values{"csrf_token": {pre}}), http.StatusForbidden)
		})
		if p, _ := h.mem.AwaitingPayouts(t.Context(), "gradforge/gradforge"); len(p) != 1 {
			t.Fatalf("a refused request changed the payout: %d awaiting", len(p))
		}
		t.Run("approve with the page's token", func(t *testing.T) {
			tok := m.csrf("/console/gradforge/gradforge")
			r := m.post(approve, url.Values{"csrf_token": {tok}})
			must(t, r, http.StatusSeeOther)
			if loc := r.header.Get("Location"); loc != "/console/gradforge/gradforge?done=approved" {
				t.Fatalf("redirect to %q", loc)
			}
			must(t, m.get("/console/gradforge/gradforge?done=approved"), http.StatusOK, "Payout approved.", "Nothing awaits approval")
			if got := h.mem.actions; len(got) != 1 || got[0] != "approved payout 1 by maint" {
				t.Fatalf("actions = %q", got)
			}
		})
		t.Run("header token works for scripts", func(t *testing.T) {
			tok := m.csrf("/console/gradforge/gradforge")
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/console/gradforge/tools/payouts/4/decline", strings.NewReader("reason=duplicate"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(csrfHeader, tok)
			must(t, m.do(req), http.StatusSeeOther)
		})
	})
}

func TestRoles(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{DevLogin: true})
	anon := h.client()
	r := anon.get("/console/gradforge/gradforge")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login?next=") {
		t.Fatalf("anonymous console: %d to %q", r.status, r.header.Get("Location"))
	}
	must(t, anon.get("/people/erin/offer"), http.StatusSeeOther)

	bob := h.client()
	bob.signIn("bob", "contributor")
	tok := bob.csrf("/")
	for _, path := range []string{"/console", "/console/gradforge/gradforge", "/console/pipeline", "/console/runners", "/people/erin/offer"} {
		t.Run("contributor GET "+path, func(t *testing.T) { must(t, bob.get(path), http.StatusForbidden) })
	}
	for _, path := range []string{"/console/gradforge/gradforge/payouts/1/approve", "/console/gradforge/gradforge/proposals/1/accept", "/console/pipeline/dave/offer", "/console/runners/tokens", "/console/gradforge/gradforge/settings"} {
		t.Run("contributor POST "+path, func(t *testing.T) {
			must(t, bob.post(path, url.Values{"csrf_token": {tok}, "reason": {"x"}, "ttl": {"1h"}}), http.StatusForbidden)
		})
	}
	if len(h.mem.actions) != 0 {
		t.Fatalf("a contributor's request acted: %q", h.mem.actions)
	}
	mustNot(t, bob.get("/"), `href="/console"`)

	erin := h.client()
	erin.signIn("erin", "contributor")
	must(t, erin.get("/people/erin/offer"), http.StatusOK, "$8,000 per month", "0.25 %")
	must(t, erin.get("/people/dave/offer"), http.StatusForbidden)
	must(t, erin.get("/people/erin"), http.StatusOK, `href="/people/erin/offer"`)
	mustNot(t, bob.get("/people/erin"), `/people/erin/offer`)

	m := h.client()
	m.signIn("maint", "maintainer")
	must(t, m.get("/people/erin/offer"), http.StatusOK, "$8,000 per month")
	must(t, m.get("/console"), http.StatusOK, "gradforge/gradforge", "gradforge/tools")
	must(t, m.get("/console/pipeline"), http.StatusOK, "@dave", "Record offer", "Mark candidate")
}

func TestRolesFromRepositoryPermission(t *testing.T) {
	mem := newMem()
	seed(mem)
	mem.perms["gradforge/tools admin"] = "admin"
	mem.perms["gradforge/tools writer"] = "write"
	mem.perms["gradforge/tools triager"] = "triage"
	h := newHarnessWith(t, dbtest.SQLite(t), Config{}, mem)
	for _, tc := range []struct {
		login      string
		tools, gf  int
		consoleNav bool
	}{
		{"admin", http.StatusOK, http.StatusForbidden, true},
		{"writer", http.StatusOK, http.StatusForbidden, true},
		{"triager", http.StatusForbidden, http.StatusForbidden, false},
	} {
		t.Run(tc.login, func(t *testing.T) {
			c := h.client()
			// A GitHub sign-in, made directly: these roles come from Permissions.
			if err := h.app.db.Create(&Session{TokenHash: hashToken("tok-" + tc.login), Login: tc.login, CreatedAt: now(), ExpiresAt: now().Add(3600e9)}).Error; err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(h.srv.URL)
			c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "tok-" + tc.login}})
			must(t, c.get("/console/gradforge/tools"), tc.tools)
			must(t, c.get("/console/gradforge/gradforge"), tc.gf)
			if got := strings.Contains(c.get("/").body, `href="/console"`); got != tc.consoleNav {
				t.Fatalf("console link shown = %v, want %v", got, tc.consoleNav)
			}
		})
	}
}

func TestConsoleActions(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{DevLogin: true, BaseURL: "http://forge.test"})
	m := h.client()
	m.signIn("maint", "maintainer")
	tok := m.csrf("/console/gradforge/gradforge")
	post := func(path string, v url.Values) resp {
		if v == nil {
			v = url.Values{}
		}
		v.Set("csrf_token", tok)
		return m.post(path, v)
	}
	must(t, post("/console/gradforge/gradforge/payouts/1/decline", nil), http.StatusBadRequest, "needs a reason")
	must(t, post("/console/gradforge/gradforge/payouts/1/decline", url.Values{"reason": {"not merged"}}), http.StatusSeeOther)
	must(t, post("/console/gradforge/gradforge/payouts/1/approve", nil), http.StatusBadRequest, "is declined")
	must(t, post("/console/gradforge/gradforge/payouts/77/approve", nil), http.StatusNotFound)
	must(t, post("/console/gradforge/gradforge/proposals/1/decline", url.Values{"reason": {"out of scope"}}), http.StatusSeeOther)
	policy := url.Values{"auto_approve": {"1"}, "max_active_attempts": {"3"}, "min_account_age_days": {"30"}, "attempt_days": {"10"}, "bounty_days": {"90"}}
	must(t, post("/console/gradforge/gradforge/settings", policy), http.StatusSeeOther)
	want := RepoSettings{Repo: "gradforge/gradforge", AutoApprove: true, MaxActiveAttempts: 3, MinAccountAgeDays: 30, AttemptDays: 10, BountyDays: 90}
	if s := h.mem.settings["gradforge/gradforge"]; s != want {
		t.Fatalf("saved settings %+v, want %+v", s, want)
	}
	must(t, m.get("/console/gradforge/gradforge"), http.StatusOK, `value="30"`, `value="90"`, "checked")
	policy.Set("attempt_days", "0")
	must(t, post("/console/gradforge/gradforge/settings", policy), http.StatusBadRequest, "Attempt lock length")
	must(t, post("/console/pipeline/carol/candidate", nil), http.StatusSeeOther)
	must(t, post("/console/pipeline/dave/offer", url.Values{"stipend": {"9000"}, "equity_bps": {"50"}, "vesting_start": {"2027-01-01"}, "cliff_months": {"12"}}), http.StatusSeeOther)
	if o := h.mem.offers["dave"]; o == nil || o.StipendCents != 900000 || o.EquityBps != 50 || o.RecordedBy != "maint" {
		t.Fatalf("offer %+v", o)
	}
	must(t, post("/console/pipeline/dave/offer", url.Values{"stipend": {"9000"}, "equity_bps": {"20000"}, "vesting_start": {"2027-01-01"}, "cliff_months": {"12"}}), http.StatusBadRequest, "basis points")
	r := post("/console/runners/tokens", url.Values{"ttl": {"24h"}})
	must(t, r, http.StatusOK, "gfr_testtoken", "--url http://forge.test")
	must(t, post("/console/runners/tokens", url.Values{"ttl": {"999h"}}), http.StatusBadRequest)
	must(t, post("/console/runners/1/revoke", nil), http.StatusSeeOther)
	must(t, m.get("/runners"), http.StatusOK, "revoked")
	wantActions := []string{"declined payout 1 by maint", "declined proposal 1 by maint", "settings gradforge/gradforge by maint", "candidate carol by maint", "offer for dave by maint", "token by maint"}
	if strings.Join(h.mem.actions, "|") != strings.Join(wantActions, "|") {
		t.Fatalf("actions\n got %q\nwant %q", h.mem.actions, wantActions)
	}
}

func TestSessionEndsOnLogout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db, Config{DevLogin: true})
		c := h.client()
		c.signIn("maint", "maintainer")
		must(t, c.get("/console"), http.StatusOK)
		u, _ := url.Parse(h.srv.URL)
		stolen := c.hc.Jar.Cookies(u)
		must(t, c.post("/logout", url.Values{"csrf_token": {c.csrf("/")}}), http.StatusSeeOther)
		// Replaying the old cookie must not work: the session is gone on the server.
		thief := h.client()
		thief.hc.Jar.SetCookies(u, stolen)
		must(t, thief.get("/console"), http.StatusSeeOther)
		var n int64
		db.Model(&Session{}).Count(&n)
		if n != 0 {
			t.Fatalf("%d sessions left after logout", n)
		}
	})
}

func TestDevLoginOffByDefault(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{})
	c := h.client()
	r := c.get("/login")
	must(t, r, http.StatusOK, "Sign-in is not configured")
	mustNot(t, r, "Dev-mode")
	// Even with a valid CSRF token the form's endpoint is not there.
	u, _ := url.Parse(h.srv.URL)
	pre := "a-pre-session-key-of-enough-length"
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: preCookie, Value: pre}})
	must(t, c.post("/login/dev", url.Values{"csrf_token": {h.app.sign("csrf", "p:"+pre)}, "login": {"x"}, "role": {"maintainer"}}), http.StatusNotFound)
}

func TestAPI(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{})
	c := h.client()
	var list struct {
		Bounties []Bounty `json:"bounties"`
		Total    int      `json:"total"`
	}
	r := c.get("/api/bounties?q=conv&status=any")
	must(t, r, http.StatusOK)
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	if list.Total != 2 || len(list.Bounties) != 2 || list.Bounties[0].Title != "CUDA conv2d 2x faster" || list.Bounties[0].AmountCents != 150000 {
		t.Fatalf("api bounties = %+v", list)
	}
	must(t, c.get("/api/bounties?sort=bogus"), http.StatusBadRequest, `"error"`)
	must(t, c.get("/api/bounties/gradforge/gradforge/101"), http.StatusOK, `"title":"Fuse reduce into elementwise kernels"`, `"attempts"`)
	must(t, c.get("/api/bounties/gradforge/gradforge/999"), http.StatusNotFound, `"error"`)
	must(t, c.get("/api/leaderboard"), http.StatusOK, `"login":"carol"`)
	must(t, c.get("/api/people/alice"), http.StatusOK, `"stage":"hunter"`)
	must(t, c.get("/api/runs/1"), http.StatusOK, `"conclusion":"failure"`)
	must(t, c.get("/api/runners"), http.StatusOK, `"gpu":"NVIDIA H200"`)
	must(t, c.get("/api/jobs/11/log?after=1"), http.StatusOK, `"seq":2`, `"done":false`)
	mustNot(t, c.get("/api/jobs/11/log?after=1"), `"seq":1`)
	must(t, c.get("/api/repos/gradforge/tools/badge"), http.StatusOK, `"open_cents":5000`, `"open_bounties":1`)
	must(t, c.get("/api/nothing"), http.StatusNotFound, `"error"`)
	must(t, c.get("/api/charts/paid"), http.StatusOK, `"cents":12000`)
	// The API never exposes offers.
	mustNot(t, c.get("/api/people/erin"), "stipend")
}

func TestSVG(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{})
	c := h.client()
	for path, want := range map[string][]string{
		"/badge/gradforge/gradforge.svg":             {"$2,720 open", "bounties"},
		"/badge/gradforge/empty":                     {"none open"},
		"/charts/speed.svg?repo=gradforge/gradforge": {"matmul_512", "conv2d_64", "<polyline"},
		"/charts/lines.svg":                          {"Framework core lines", "<polyline", "12 commits on main"},
		"/charts/paid.svg":                           {"Bounty money paid per month", "<rect", "$120"},
	} {
		t.Run(path, func(t *testing.T) {
			r := c.get(path)
			must(t, r, http.StatusOK, want...)
			if ct := r.header.Get("Content-Type"); ct != "image/svg+xml" {
				t.Fatalf("content type %q", ct)
			}
			d := xml.NewDecoder(strings.NewReader(r.body))
			for {
				_, err := d.Token()
				if err != nil {
					if err.Error() != "EOF" {
						t.Fatalf("not well-formed SVG: %v\n%s", err, r.body)
					}
					break
				}
			}
		})
	}
	must(t, c.get("/charts/nope.svg"), http.StatusNotFound)
}

func TestMoneyAndTicks(t *testing.T) {
	for cents, want := range map[int64]string{0: "$0", 5: "$0.05", 100: "$1", 123456: "$1,234.56", 100000000: "$1,000,000", -250: "−$2.50"} {
		if got := money(cents); got != want {
			t.Errorf("money(%d) = %q, want %q", cents, got, want)
		}
	}
	for in, want := range map[string]int64{"": 0, "250": 25000, "1,000": 100000, "$12.50": 1250, "0.01": 1} {
		if got, err := parseDollars(in, "x"); err != nil || got != want {
			t.Errorf("parseDollars(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-5", "abc", "1e12", "NaN"} {
		if _, err := parseDollars(bad, "x"); err == nil {
			t.Errorf("parseDollars(%q) accepted", bad)
		}
	}
	ticks := niceTicks(7000, 8000, 5)
	if ticks[0] > 7000 || ticks[len(ticks)-1] < 8000 || len(ticks) < 3 || len(ticks) > 8 {
		t.Errorf("niceTicks(7000, 8000) = %v", ticks)
	}
	for _, tc := range []struct{ in, want string }{{"/x", "/x"}, {"//evil.com", "/"}, {"https://evil.com", "/"}, {"/\\evil.com", "/"}, {"/\t/evil.com", "/"}, {"/a\\b", "/"}, {"", "/"}} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSignedIn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db, Config{DevLogin: true})
		now := time.Now().UTC()
		for _, s := range []Session{
			{TokenHash: hashToken("gh"), Login: "alice", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			{TokenHash: hashToken("old"), Login: "bob", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
			{TokenHash: hashToken("dev"), Login: "carol", DevRole: "contributor", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		} {
			if err := db.Create(&s).Error; err != nil {
				t.Fatal(err)
			}
		}
		for cookie, want := range map[string]string{"gh": "alice", "old": "", "dev": "", "unknown": "", "": ""} {
			r := httptest.NewRequest(http.MethodGet, "/stripe/onboard/alice", nil)
			if cookie != "" {
				r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
			}
			if got := h.app.SignedIn(r); got != want {
				t.Errorf("SignedIn with cookie %q = %q, want %q", cookie, got, want)
			}
		}
	})
}
