package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeDemo is the newcomer's path: `gradforge serve --demo` with no other
// configuration, the board with the demo bounties, the dev-mode sign-in (CSRF token and
// all) and the maintainer console with the demo's payouts awaiting approval.
func TestServeDemo(t *testing.T) {
	_, base := startServe(t, t.TempDir(), nil, "--demo")
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %.500s", resp.Request.URL, resp.StatusCode, b)
		}
		return string(b)
	}
	if b := page(hc.Get(base + "/")); !strings.Contains(b, "Flash-attention") || !strings.Contains(b, "$2,500") {
		t.Fatalf("board without the demo bounties:\n%.2000s", b)
	}
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page(hc.Get(base + "/login")))
	if m == nil {
		t.Fatal("no dev-mode sign-in form on /login")
	}
	b := page(hc.PostForm(base+"/login/dev", url.Values{"csrf_token": {m[1]}, "login": {"maint"}, "role": {"maintainer"}, "next": {"/console/gradforge/gradforge"}}))
	for _, want := range []string{"Payouts awaiting approval", "@bob", "@dave"} {
		if !strings.Contains(b, want) {
			t.Fatalf("console lacks %q:\n%.3000s", want, b)
		}
	}
}
