package web

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseFilter feeds arbitrary query strings to the board's filter parser: it must never
// panic, and what it accepts must be within the bounds the sources rely on.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "q=kernel&sort=age", "min=1,000&max=$2500.50", "page=99999&limit=500", "status=", "status=any&repo=o/r&label=cuda", "min=1e309", "page=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		fl, err := parseFilter(q)
		if err != nil {
			if _, ok := err.(badInput); !ok {
				t.Fatalf("parseFilter(%q) error %v is not a bad-input message", raw, err)
			}
			return
		}
		if fl.Limit < 1 || fl.Limit > 500 || fl.Offset < 0 || fl.MinCents < 0 || fl.MaxCents < 0 || len(fl.Query) > 200 {
			t.Fatalf("parseFilter(%q) = %+v out of bounds", raw, fl)
		}
		if fl.MaxCents > 0 && fl.MinCents > fl.MaxCents {
			t.Fatalf("parseFilter(%q) accepted min above max", raw)
		}
	})
}

// FuzzSafeNext checks the redirect after sign-in never leaves the site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "//evil.com", "/\\evil.com", "https://evil.com", "/console?x=1", "/a\r\nSet-Cookie: x", "/\t/evil.com", "/\\/evil.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		// What a browser would make of it: tabs and newlines dropped, backslashes as slashes.
		browser := strings.ReplaceAll(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(got), "\\", "/")
		if !strings.HasPrefix(browser, "/") || strings.HasPrefix(browser, "//") || err == nil && u.Host != "" {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
	})
}
