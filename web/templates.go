package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var funcs = template.FuncMap{
	"money":    money,
	"ago":      ago,
	"date":     func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"datetime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short":    func(sha string) string { return shortSHA(sha) },
	"issueURL": issueURL,
	"prURL":    func(repo string, n int) string { return "https://github.com/" + repo + "/pull/" + strconv.Itoa(n) },
	"join":     strings.Join,
	"bytes":    humanBytes,
	"add":      func(a, b int) int { return a + b },
	"bps":      func(b int) string { return fmt.Sprintf("%.2f %%", float64(b)/100) },
	"title":    func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"stage":    stageName,
	"expired":  func(t time.Time) bool { return !t.IsZero() && time.Now().After(t) },
}

// parsePages parses every page template with the layout, once at start.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web template %s: %w", base, err)
		}
		out[base] = t.Lookup("layout")
		if out[base] == nil {
			return nil, fmt.Errorf("web template %s: no layout", base)
		}
	}
	return out, nil
}

// static serves the embedded assets. Their names never change meaning within a release, so
// browsers may keep them a day.
func (a *App) static(c *gin.Context) {
	name := path.Clean("static/" + strings.TrimPrefix(c.Param("file"), "/"))
	if !strings.HasPrefix(name, "static/") {
		c.Status(http.StatusNotFound)
		return
	}
	b, err := staticFS.ReadFile(name)
	if err != nil {
		c.Status(http.StatusNotFound)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	c.Header("Cache-Control", "public, max-age=86400")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, ct, b)
}

// money shows integer cents as dollars: whole dollars without cents, thousands grouped.
func money(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	d := strconv.FormatInt(cents/100, 10)
	for i := len(d) - 3; i > 0; i -= 3 {
		d = d[:i] + "," + d[i:]
	}
	s := "$" + d
	if c := cents % 100; c != 0 {
		s += fmt.Sprintf(".%02d", c)
	}
	if neg {
		s = "−" + s
	}
	return s
}

// ago says how long ago t was, in the largest whole unit.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	case d < 60*24*time.Hour:
		s = plural(int(d/(24*time.Hour)), "day")
	case d < 730*24*time.Hour:
		s = plural(int(d/(30*24*time.Hour)), "month")
	default:
		s = plural(int(d/(365*24*time.Hour)), "year")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func issueURL(repo string, n int) string {
	return "https://github.com/" + repo + "/issues/" + strconv.Itoa(n)
}

func humanBytes(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}
