package web

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gradforge/gradforge/bounties"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/gradforge/gradforge/runners"
)

// browser starts headless Chromium for one test. Without Chromium the test skips, unless
// GRADFORGE_TEST_BROWSER=require, in which case it fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("GRADFORGE_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		if os.Getenv("GRADFORGE_TEST_BROWSER") == "require" {
			t.Fatal("no Chromium found (apt-get install chromium) and GRADFORGE_TEST_BROWSER=require")
		}
		t.Skip("no Chromium found: skipping browser test (apt-get install chromium; GRADFORGE_TEST_BROWSER=require makes this fail)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium at %s: %v", path, err)
	}
	return ctx
}

// artifactDir is where browser tests leave screenshots: $GRADFORGE_TEST_ARTIFACTS, or
// gradforge-test-artifacts in the system temp folder.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("GRADFORGE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "gradforge-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowser walks the site in headless Chromium over the real bounties and runners
// packages (seeded with the demo data plus a bounty with a hostile title), with CI runs and
// live logs from test data.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	db := dbtest.SQLite(t)
	svc, reg := bounties.New(db, bounties.Config{}), runners.NewRegistry(db)
	if err := SeedDemo(t.Context(), svc, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Fund(t.Context(), bounties.FundInput{Repo: "gradforge/gradforge", Issue: 150, Title: "Winograd conv <script>alert('x')</script>", Sponsor: "maint",
		AmountCents: 420_00, FromPlatform: true, Maintainer: true, RequestKey: "browser:hostile"}); err != nil {
		t.Fatal(err)
	}
	mem := newMem()
	seed(mem)
	bs := BountySource{S: svc}
	h := newHarnessSources(t, db, Config{DevLogin: true}, Sources{Bounties: bs, Console: bs, Settings: bs, CI: mem, Runners: mem})
	h.mem = mem
	u := h.srv.URL
	awaiting := func() []bounties.Credit {
		cs, err := svc.Payouts(t.Context(), "gradforge/gradforge")
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	before := awaiting()
	if len(before) != 2 {
		t.Fatalf("demo has %d payouts awaiting, want 2", len(before))
	}
	first := fmt.Sprint("payout-", before[0].ID)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(js string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return n
	}

	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		shot := filepath.Join(artifactDir(t), name)
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	}

	// Sign in with the dev-mode form, as a maintainer.
	do("sign in",
		chromedp.Navigate(u+"/login"),
		chromedp.SendKeys(chromedp.ID("login"), "maint"),
		chromedp.Click(chromedp.CSS(`input[name=role][value=maintainer]`)),
		chromedp.Click(chromedp.CSS(`form[action="/login/dev"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.bounties`)),
	)
	if who := text(`.who a`); who != "@maint" {
		t.Fatalf("header says %q after sign-in", who)
	}

	// The board, as a screenshot artifact.
	screenshot("board.png")

	// Filter by an issue label: type it in the label field, then follow a label link.
	do("filter by label",
		chromedp.SendKeys(chromedp.ID("label"), "cuda"),
		chromedp.Submit(chromedp.ID("label")),
		chromedp.WaitVisible(chromedp.Search(`//p[contains(., "2 bounties match")]`)),
	)
	if titles := text(`table.bounties tbody`); !strings.Contains(titles, "CUDA conv2d") || !strings.Contains(titles, "Flash-attention") || strings.Contains(titles, "ONNX") {
		t.Fatalf("label cuda shows %q", titles)
	}
	screenshot("board-label.png")
	do("follow a label link",
		chromedp.Click(chromedp.Search(`//a[@class="label"][.="speed"]`)),
		chromedp.WaitVisible(chromedp.Search(`//p[contains(., "1 bounty matches")]`)),
	)
	if title, field := text(`a.title`), eval(`document.getElementById("label").value === "speed" ? 1 : 0`); !strings.HasPrefix(title, "CUDA conv2d") || field != 1 {
		t.Fatalf("label link shows %q (label field filled: %d)", title, field)
	}
	do("clear the filters", chromedp.Navigate(u+"/"), chromedp.WaitVisible(chromedp.ID("q")))

	// Find a bounty by search and open it; its hostile title shows as text.
	do("search",
		chromedp.SendKeys(chromedp.ID("q"), "winograd"),
		chromedp.Submit(chromedp.ID("q")),
		chromedp.WaitVisible(chromedp.Search(`//p[contains(., "1 bounty matches")]`)),
	)
	if rows := eval(`document.querySelectorAll("table.bounties tbody tr").length`); rows != 1 {
		t.Fatalf("search shows %d rows, want 1", rows)
	}
	do("open the bounty", chromedp.Click(chromedp.CSS(`a.title`)), chromedp.WaitVisible(chromedp.CSS(`div.bounty-summary`)))
	if title, scripts := text(`h1`), eval(`document.querySelectorAll("main script").length`); title != "Winograd conv <script>alert('x')</script>" || scripts != 0 {
		t.Fatalf("bounty title %q, %d script elements in main", title, scripts)
	}

	// Approve a payout from the console: a real form post carrying the page's CSRF token.
	do("open the console", chromedp.Navigate(u+"/console/gradforge/gradforge"), chromedp.WaitVisible(chromedp.ID(first)))
	screenshot("console.png")
	do("approve a payout",
		chromedp.Click(chromedp.CSS(`#`+first+` button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	if flash, left := text(`p.flash`), awaiting(); flash != "Payout approved." || len(left) != 1 || left[0].ID != before[1].ID {
		t.Fatalf("after approving: flash %q, awaiting %+v", flash, left)
	}

	// A form whose token was tampered with is refused, and the payout still awaits.
	second := fmt.Sprint("payout-", before[1].ID)
	do("tampered token",
		chromedp.Navigate(u+"/console/gradforge/gradforge"),
		chromedp.WaitVisible(chromedp.ID(second)),
		chromedp.SetAttributeValue(chromedp.CSS(`#`+second+` form input[name=csrf_token]`), "value", "forged"),
		chromedp.Click(chromedp.CSS(`#`+second+` button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`section.error`)),
	)
	if status := text(`section.error h1`); !strings.HasPrefix(status, "403") || len(awaiting()) != 1 {
		t.Fatalf("tampered form: %q, awaiting %d", status, len(awaiting()))
	}

	// The charts load as images with real sizes.
	do("charts",
		chromedp.Navigate(u+"/charts"),
		chromedp.WaitVisible(chromedp.CSS(`figure.chart img`)),
		chromedp.Poll[chromedp.Void](`Array.from(document.images).every(i => i.complete)`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if n := eval(`Array.from(document.querySelectorAll("figure.chart img")).filter(i => i.naturalWidth >= 700 && i.naturalHeight >= 300).length`); n != 3 {
		t.Fatalf("%d of 3 charts rendered", n)
	}
	screenshot("charts.png")

	// Live logs: a chunk that arrives after the page loaded appears without a reload.
	do("open a running job's log", chromedp.Navigate(u+"/runs/1/jobs/11/log"), chromedp.WaitVisible(chromedp.ID("log")))
	h.mem.mu.Lock()
	h.mem.logs[11] = append(h.mem.logs[11], LogChunk{Seq: 3, Text: "== parity: 412 cases passed\n"})
	h.mem.mu.Unlock()
	do("follow the log", chromedp.Poll[chromedp.Void](`document.getElementById("log").textContent.includes("412 cases passed")`, chromedp.WithPollingTimeout(10*time.Second)))
	if state := text(`#log-state`); state != "The job has finished." {
		t.Fatalf("log state %q after the last chunk", state)
	}
}
