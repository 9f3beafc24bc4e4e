package bot

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Invocation is one command found in a comment, PR body or review body.
type Invocation struct {
	Name string // lower case, without the slash
	Args string // the rest of the line, trimmed
	Line int    // 1-based line in the text
}

// String renders the invocation the way a person would type it.
func (i Invocation) String() string {
	if i.Args == "" {
		return "/" + i.Name
	}
	return "/" + i.Name + " " + i.Args
}

var commandLine = regexp.MustCompile(`^/([A-Za-z][A-Za-z0-9-]*)(?:[ \t]+(.*))?$`)

// Parse finds the commands in a Markdown text. The grammar, one for every place commands
// are read:
//
//   - a command is a line that starts (after up to three spaces) with /name, where name is
//     letters, digits and dashes; the rest of the line is its arguments;
//   - names are case-insensitive; a text may hold any number of commands, run in order;
//   - lines inside fenced code blocks (``` or ~~~), indented code blocks, block quotes
//     (> …) and HTML comments are ignored, so quoting someone's command does not repeat it;
//   - a line such as "/usr/bin/env" is not a command, because a name ends at a space.
func Parse(text string) []Invocation {
	var out []Invocation
	var fence string // the opening fence while inside a fenced block
	inComment := false
	for i, raw := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line := strings.TrimRight(raw, " \t\r")
		// Four spaces or a tab make an indented code block (or a list's continuation): never
		// a command.
		indented := strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case inComment:
			if strings.Contains(line, "-->") {
				inComment = false
			}
		case fence != "":
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
			}
		case indented:
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			fence = trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, trimmed[:1]))]
		case strings.HasPrefix(trimmed, "<!--"):
			inComment = !strings.Contains(trimmed[4:], "-->")
		case strings.HasPrefix(trimmed, ">"):
		default:
			if m := commandLine.FindStringSubmatch(trimmed); m != nil {
				out = append(out, Invocation{Name: strings.ToLower(m[1]), Args: strings.TrimSpace(m[2]), Line: i + 1})
			}
		}
	}
	return out
}

// MaxCents is the largest amount the grammar accepts ($10 billion); the bounties package
// applies its own, lower limit.
const MaxCents = 1_000_000_000_000

// ParseAmount reads a USD amount as people write it: "$1,000.50", "1000", "25.5", "$5",
// "100 USD", "USD 100". It refuses signs, more than two decimals, misplaced commas, other
// currencies and absurd sizes, each with a message that says why.
func ParseAmount(s string) (int64, error) {
	t := strings.TrimSpace(s)
	orig := t
	if u, ok := cutFold(t, "usd", true); ok {
		t = strings.TrimSpace(u)
	} else if u, ok := cutFold(t, "usd", false); ok {
		t = strings.TrimSpace(u)
	}
	t = strings.TrimPrefix(t, "$")
	if t == "" {
		return 0, fmt.Errorf("%q is not an amount: write it like $100 or $1,000.50", orig)
	}
	if strings.ContainsAny(t, "€£¥") || strings.ContainsFunc(t, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }) {
		return 0, fmt.Errorf("%q: only US dollars are supported; write it like $100", orig)
	}
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		return 0, fmt.Errorf("%q: an amount has no sign", orig)
	}
	whole, frac, hasFrac := strings.Cut(t, ".")
	if strings.Contains(whole, ",") {
		groups := strings.Split(whole, ",")
		if len(groups[0]) == 0 || len(groups[0]) > 3 {
			return 0, fmt.Errorf("%q: commas must separate groups of three digits", orig)
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, fmt.Errorf("%q: commas must separate groups of three digits", orig)
			}
		}
		whole = strings.Join(groups, "")
	}
	if whole == "" || !digits(whole) || hasFrac && (frac == "" || len(frac) > 2 || !digits(frac)) {
		if hasFrac && len(frac) > 2 && digits(frac) {
			return 0, fmt.Errorf("%q: at most two decimals (cents)", orig)
		}
		return 0, fmt.Errorf("%q is not an amount: write it like $100 or $1,000.50", orig)
	}
	if len(whole) > 13 {
		return 0, fmt.Errorf("%q is absurdly large", orig)
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	cents := w * 100
	if hasFrac {
		f, _ := strconv.ParseInt((frac + "0")[:2], 10, 64)
		cents += f
	}
	if cents > MaxCents {
		return 0, fmt.Errorf("%q is absurdly large", orig)
	}
	if cents == 0 {
		return 0, fmt.Errorf("%q: an amount must be more than zero", orig)
	}
	return cents, nil
}

// FormatCents writes cents as "$1,000.50" or "$12".
func FormatCents(c int64) string {
	whole := strconv.FormatInt(c/100, 10)
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if c%100 != 0 {
		return fmt.Sprintf("$%s.%02d", b.String(), c%100)
	}
	return "$" + b.String()
}

func cutFold(s, word string, prefix bool) (string, bool) {
	if len(s) < len(word) {
		return s, false
	}
	if prefix && strings.EqualFold(s[:len(word)], word) {
		return s[len(word):], true
	}
	if !prefix && strings.EqualFold(s[len(s)-len(word):], word) {
		return s[:len(s)-len(word)], true
	}
	return s, false
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

var loginRE = regexp.MustCompile(`^@?([A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38})(\[bot\])?$`)

// ParseLogin reads "@user" or "user" and returns the login in lower case (GitHub logins are
// case-insensitive).
func ParseLogin(s string) (string, error) {
	m := loginRE.FindStringSubmatch(strings.TrimRight(strings.TrimSpace(s), ",;"))
	if m == nil {
		return "", fmt.Errorf("%q is not a GitHub user: write it like @octocat", s)
	}
	return strings.ToLower(m[1] + m[2]), nil
}

// ParseLogins reads one or more logins separated by spaces or commas.
func ParseLogins(s string) ([]string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("name at least one user, like @octocat")
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range fields {
		l, err := ParseLogin(f)
		if err != nil {
			return nil, err
		}
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out, nil
}

// Ref names an issue or pull request.
type Ref struct {
	Repo   string // owner/name
	Number int
}

func (r Ref) String() string { return fmt.Sprintf("%s#%d", r.Repo, r.Number) }

var (
	refHash = regexp.MustCompile(`^(?:([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+))?#([0-9]{1,9})$`)
	refURL  = regexp.MustCompile(`^https?://github\.com/([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)/(?:issues|pull)/([0-9]{1,9})(?:[/?#].*)?$`)
)

// ParseRef reads "#12", "owner/repo#12" or an issue or pull request URL on github.com; a bare
// "#12" refers to repo.
func ParseRef(s, repo string) (Ref, error) {
	s = strings.TrimSpace(s)
	var r Ref
	var num string
	if m := refHash.FindStringSubmatch(s); m != nil {
		r.Repo, num = m[1], m[2]
	} else if m := refURL.FindStringSubmatch(s); m != nil {
		r.Repo, num = m[1], m[2]
	} else {
		return Ref{}, fmt.Errorf("%q is not an issue: write #12, owner/repo#12 or the issue's URL", s)
	}
	if r.Repo == "" {
		r.Repo = repo
	}
	r.Number, _ = strconv.Atoi(num)
	if r.Number <= 0 {
		return Ref{}, fmt.Errorf("%q: issue numbers start at 1", s)
	}
	return r, nil
}

// Fields splits arguments on spaces and commas, keeping "double quoted" words together, so
// a label with spaces can be named: /label "good first issue" bug.
func Fields(args string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQuote, quoted := false, false
	flush := func() {
		if cur.Len() > 0 || quoted {
			out = append(out, cur.String())
		}
		cur.Reset()
		quoted = false
	}
	for _, r := range args {
		switch {
		case r == '"' || r == '“' || r == '”':
			if inQuote {
				inQuote = false
				quoted = true
				flush()
			} else {
				flush()
				inQuote = true
			}
		case !inQuote && (r == ' ' || r == '\t' || r == ','):
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return nil, errors.New("a quote is not closed")
	}
	flush()
	return out, nil
}
