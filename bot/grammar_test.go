package bot

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // Invocation.String of each
	}{
		{"one command", "/label bug", []string{"/label bug"}},
		{"name is case-insensitive", "/LABEL Bug", []string{"/label Bug"}},
		{"several per comment, in order", "/hold\nsome words\n/assign @me\n/cc @a @b", []string{"/hold", "/assign @me", "/cc @a @b"}},
		{"leading spaces up to three", "   /lgtm", []string{"/lgtm"}},
		{"four spaces is indented code", "    /lgtm", nil},
		{"tab is indented code", "\t/lgtm", nil},
		{"fenced block ignored", "```\n/close\n```\n/reopen", []string{"/reopen"}},
		{"tilde fence ignored", "~~~sh\n/close\n~~~\n/hold", []string{"/hold"}},
		{"longer fence needs a longer closer", "````\n```\n/close\n````\n/hold", []string{"/hold"}},
		{"unclosed fence swallows the rest", "```\n/close", nil},
		{"block quote ignored", "> /approve\n/lgtm", []string{"/lgtm"}},
		{"nested quote ignored", "> > /approve", nil},
		{"html comment ignored", "<!-- /close -->\n<!--\n/close\n-->\n/hold", []string{"/hold"}},
		{"command mid-line is not a command", "please /close this", nil},
		{"path is not a command", "/usr/bin/env python", nil},
		{"inline code is not a command", "`/close`", nil},
		{"windows line ends", "/hold\r\n/lgtm\r\n", []string{"/hold", "/lgtm"}},
		{"trailing spaces trimmed", "/label   bug   ", []string{"/label bug"}},
		{"bare slash is nothing", "/\n/ label", nil},
		{"dashes in names", "/remove-label x\n/ok-to-test", []string{"/remove-label x", "/ok-to-test"}},
		{"unknown names are still found", "/frobnicate", []string{"/frobnicate"}},
		{"bounty amount kept raw", "/bounty $1,000.50", []string{"/bounty $1,000.50"}},
		{"empty text", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, inv := range Parse(tc.text) {
				got = append(got, inv.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
	if inv := Parse("x\n\n/hold"); len(inv) != 1 || inv[0].Line != 3 {
		t.Fatalf("line numbers: %+v, want /hold on line 3", inv)
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in    string
		cents int64
		bad   string // part of the error, "" when valid
	}{
		{"$1,000.50", 100050, ""},
		{"1000", 100000, ""},
		{"$5", 500, ""},
		{"25.5", 2550, ""},
		{"0.01", 1, ""},
		{"$1,234,567", 123456700, ""},
		{"100 USD", 10000, ""},
		{"usd 100", 10000, ""},
		{"$100usd", 10000, ""},
		{"$0", 0, "more than zero"},
		{"-5", 0, "no sign"},
		{"$-5", 0, "no sign"},
		{"+5", 0, "no sign"},
		{"1.234", 0, "two decimals"},
		{"1,00", 0, "groups of three"},
		{"10,000,0", 0, "groups of three"},
		{",100", 0, "groups of three"},
		{"1e5", 0, "US dollars"},
		{"€100", 0, "US dollars"},
		{"100 EUR", 0, "US dollars"},
		{"$", 0, "not an amount"},
		{"", 0, "not an amount"},
		{"1.", 0, "not an amount"},
		{".5", 0, "not an amount"},
		{"99999999999999999999", 0, "absurdly large"},
		{"$10,000,000,001", 0, "absurdly large"},
	} {
		cents, err := ParseAmount(tc.in)
		switch {
		case tc.bad == "" && (err != nil || cents != tc.cents):
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", tc.in, cents, err, tc.cents)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("ParseAmount(%q) = %d, %v; want an error about %q", tc.in, cents, err, tc.bad)
		}
	}
	for _, c := range []int64{1, 99, 100, 100050, 123456700} {
		if back, err := ParseAmount(FormatCents(c)); err != nil || back != c {
			t.Errorf("FormatCents(%d) = %q does not parse back: %d, %v", c, FormatCents(c), back, err)
		}
	}
}

func TestParseRefAndLogins(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		bad  bool
	}{
		{"#12", Ref{"o/r", 12}, false},
		{"other/repo#3", Ref{"other/repo", 3}, false},
		{"https://github.com/other/repo/issues/44", Ref{"other/repo", 44}, false},
		{"https://github.com/other/repo/pull/45#issuecomment-1", Ref{"other/repo", 45}, false},
		{"#0", Ref{}, true},
		{"12", Ref{}, true},
		{"#12abc", Ref{}, true},
		{"https://example.com/o/r/issues/1", Ref{}, true},
		{"#99999999999", Ref{}, true},
	} {
		got, err := ParseRef(tc.in, "o/r")
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseRef(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
	users, err := ParseLogins("@Alice, bob @alice dependabot[bot]")
	if err != nil || !reflect.DeepEqual(users, []string{"alice", "bob", "dependabot[bot]"}) {
		t.Errorf("ParseLogins = %q, %v", users, err)
	}
	for _, bad := range []string{"", "@", "@-x", "@a--b", "@" + strings.Repeat("a", 40), "@a/b"} {
		if _, err := ParseLogins(bad); err == nil {
			t.Errorf("ParseLogins(%q) accepted", bad)
		}
	}
	f, err := Fields(`bug "good first issue", area/ci`)
	if err != nil || !reflect.DeepEqual(f, []string{"bug", "good first issue", "area/ci"}) {
		t.Errorf("Fields = %q, %v", f, err)
	}
	if _, err := Fields(`"open`); err == nil {
		t.Error("Fields accepted an unclosed quote")
	}
}

// FuzzParse checks that no comment text makes the parser or the argument readers panic, and
// that what it finds always has the command shape.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/label bug", "```\n/close\n```", "> /x", "<!--\n/y\n-->", "/bounty $1,000.50",
		"/claim https://github.com/o/r/issues/1", "/tip $5 @u", "\t/x", "/a\r\n/b", "~~~~\n/c", "/split @a, @b", `/label "x`,
		"/extend #12 3 days", "/extend o/r#4 1d", "/shares @a=60 @b=40", "/shares @a=1,@b=1000", "/bounty-unban @u", "/retry-payout"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, inv := range Parse(text) {
			if inv.Name == "" || inv.Name != strings.ToLower(inv.Name) || strings.ContainsAny(inv.Name, " /\n") {
				t.Fatalf("bad command name %q from %q", inv.Name, text)
			}
			if strings.Contains(inv.Args, "\n") {
				t.Fatalf("arguments span lines: %q", inv.Args)
			}
			ParseAmount(inv.Args)
			ParseRef(inv.Args, "o/r")
			ParseLogins(inv.Args)
			Fields(inv.Args)
			amountArg(inv.Args)
			if ref, days, err := ParseExtend(inv.Args, "o/r"); err == nil && (days < 1 || days > 365 || ref != nil && ref.Number < 1) {
				t.Fatalf("ParseExtend(%q) accepted %v days, ref %+v", inv.Args, days, ref)
			}
			if sh, err := ParseShares(inv.Args); err == nil {
				for l, w := range sh {
					if l == "" || w < 1 || w > 1000 {
						t.Fatalf("ParseShares(%q) accepted %q=%d", inv.Args, l, w)
					}
				}
			}
		}
	})
}
