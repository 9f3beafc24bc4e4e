package web

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Charts are drawn here as plain SVG: a few hundred bytes of markup per chart, no fonts or
// plotting library at run time, and they scale with the page. Each point carries a <title>
// so hovering shows the commit and the value.

const (
	chartW, chartH           = 760, 320
	padL, padR, padT, padB   = 64, 16, 36, 72
	plotW, plotH             = chartW - padL - padR, chartH - padT - padB
	chartStyle               = `<style>text{font:12px system-ui,sans-serif;fill:#5c6675}.t{font-size:14px;font-weight:600;fill:#1d2430}.g{stroke:#dde1e7}.a{stroke:#9aa3ae}@media (prefers-color-scheme:dark){.t{fill:#e6e9ef}text{fill:#a3acb9}.g{stroke:#2e343e}}</style>`
	chartEmptyMessage        = "No data yet"
	chartMaxLegendCharacters = 28
)

// palette is colour-blind-safe (Okabe–Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	if len(out) > 0 && out[len(out)-1] < hi {
		out = append(out, out[len(out)-1]+step)
	}
	return out
}

func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func svgStart(b *bytes.Buffer, title, desc string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="ct cd">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<title id="ct">%s</title><desc id="cd">%s</desc>%s`, html.EscapeString(title), html.EscapeString(desc), chartStyle)
	fmt.Fprintf(b, `<text class="t" x="%d" y="22">%s</text>`, padL, html.EscapeString(title))
}

func svgEmpty(b *bytes.Buffer) {
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text></svg>`, chartW/2, chartH/2, chartEmptyMessage)
}

// yAxis draws the horizontal grid and labels and returns the value→y mapping.
func yAxis(b *bytes.Buffer, lo, hi float64, label string) func(float64) float64 {
	ticks := niceTicks(lo, hi, 5)
	lo, hi = ticks[0], ticks[len(ticks)-1]
	y := func(v float64) float64 { return padT + plotH - (v-lo)/(hi-lo)*plotH }
	for _, t := range ticks {
		fmt.Fprintf(b, `<line class="g" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, padL+plotW, y(t), y(t), padL-6, y(t)+4, fmtTick(t))
	}
	fmt.Fprintf(b, `<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`, padT+plotH/2, padT+plotH/2, html.EscapeString(label))
	return y
}

// lineChart draws series over a shared x axis of commits, in time order. With relative set,
// each series is divided by its first value so benchmarks of different sizes share an axis
// and a regression reads as a step up.
func lineChart(title, ylabel string, series []Series, relative bool) []byte {
	var b bytes.Buffer
	svgStart(&b, title, fmt.Sprintf("%d series over commits on main", len(series)))
	// The x axis is the union of commits, ordered by time.
	type commit struct {
		sha string
		at  time.Time
	}
	var commits []commit
	idx := map[string]int{}
	for _, s := range series {
		for _, p := range s.Points {
			if _, ok := idx[p.SHA]; !ok {
				idx[p.SHA] = -1
				commits = append(commits, commit{p.SHA, p.At})
			}
		}
	}
	if len(commits) == 0 {
		svgEmpty(&b)
		return b.Bytes()
	}
	sortCommits := func(i, j int) bool { return commits[i].at.Before(commits[j].at) }
	for i := 1; i < len(commits); i++ { // insertion sort: inputs are nearly sorted already
		for j := i; j > 0 && sortCommits(j, j-1); j-- {
			commits[j], commits[j-1] = commits[j-1], commits[j]
		}
	}
	for i, c := range commits {
		idx[c.sha] = i
	}
	val := func(s Series, v float64) float64 {
		if relative && len(s.Points) > 0 && s.Points[0].Value != 0 {
			return v / s.Points[0].Value
		}
		return v
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			v := val(s, p.Value)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if !relative && lo > 0 && lo < hi*0.5 {
		lo = 0 // start at zero unless the values sit in a narrow band far from it
	}
	y := yAxis(&b, lo, hi, ylabel)
	x := func(i int) float64 {
		if len(commits) == 1 {
			return padL + plotW/2
		}
		return padL + float64(i)/float64(len(commits)-1)*plotW
	}
	// First and last commit under the axis.
	fmt.Fprintf(&b, `<line class="a" x1="%d" x2="%d" y1="%d" y2="%d"/>`, padL, padL+plotW, padT+plotH, padT+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, padL, padT+plotH+18, html.EscapeString(shortSHA(commits[0].sha)))
	if len(commits) > 1 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, padL+plotW, padT+plotH+18, html.EscapeString(shortSHA(commits[len(commits)-1].sha)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%d commits on main</text>`, padL+plotW/2, padT+plotH+36, len(commits))
	for si, s := range series {
		col := palette[si%len(palette)]
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(idx[p.SHA]), y(val(s, p.Value))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, col, strings.Join(pts, " "))
		for _, p := range s.Points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %s %s</title></circle>`,
				x(idx[p.SHA]), y(val(s, p.Value)), col, html.EscapeString(s.Name), html.EscapeString(shortSHA(p.SHA)), fmtTick(p.Value), html.EscapeString(s.Unit))
		}
		if len(series) > 1 && si < 8 { // legend under the axis: four per row, two rows
			name := s.Name
			if len(name) > chartMaxLegendCharacters {
				name = name[:chartMaxLegendCharacters-1] + "…"
			}
			if si == 7 && len(series) > 8 {
				name = fmt.Sprintf("and %d more (hover the points)", len(series)-7)
			}
			lx, ly := padL+(si%4)*170, padT+plotH+52+(si/4)*16
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`, lx, ly-9, col, lx+14, ly, html.EscapeString(name))
		}
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

// barChart draws money per month as bars labelled with the month.
func barChart(title string, months []MonthTotal) []byte {
	var b bytes.Buffer
	svgStart(&b, title, fmt.Sprintf("%d months", len(months)))
	if len(months) == 0 {
		svgEmpty(&b)
		return b.Bytes()
	}
	months = fillMonths(months)
	hi := 0.0
	for _, m := range months {
		hi = math.Max(hi, float64(m.Cents)/100)
	}
	y := yAxis(&b, 0, hi, "US dollars")
	slot := float64(plotW) / float64(len(months))
	w := math.Min(56, math.Max(2, slot*0.7))
	every := 1 + len(months)/12 // at most about twelve month labels
	for i, m := range months {
		x := padL + float64(i)*slot + (slot-w)/2
		top := y(float64(m.Cents) / 100)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			x, top, w, padT+plotH-top, palette[2], m.Month.Format("Jan 2006"), money(m.Cents))
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+w/2, padT+plotH+18, m.Month.Format("Jan 2006"))
		}
	}
	fmt.Fprintf(&b, `<line class="a" x1="%d" x2="%d" y1="%d" y2="%d"/></svg>`, padL, padL+plotW, padT+plotH, padT+plotH)
	return b.Bytes()
}

type chartsData struct {
	Repo  string
	Repos []string
}

func (a *App) chartsPage(c *gin.Context) {
	repos := a.knownRepos(c.Request.Context())
	repo := c.Query("repo")
	if repo == "" && len(repos) > 0 {
		repo = repos[0]
	}
	a.render(c, http.StatusOK, "charts.html", "Charts", "charts", chartsData{Repo: repo, Repos: repos})
}

// chartData fetches what one chart shows; it returns the SVG and the data behind it.
func (a *App) chartData(c *gin.Context, name string) ([]byte, any, error) {
	ctx, repo := c.Request.Context(), c.Query("repo")
	switch name {
	case "speed":
		if a.ci == nil {
			return nil, nil, errUnavailable("CI")
		}
		s, err := a.ci.SpeedHistory(ctx, repo)
		if err != nil {
			return nil, nil, err
		}
		return lineChart("Benchmark time relative to the first commit shown", "time ÷ first", s, true), s, nil
	case "lines":
		if a.ci == nil {
			return nil, nil, errUnavailable("CI")
		}
		s, err := a.ci.LineHistory(ctx, repo)
		if err != nil {
			return nil, nil, err
		}
		if s.Name == "" {
			s.Name = "framework core"
		}
		return lineChart("Framework core lines", "lines", []Series{s}, false), s, nil
	case "paid":
		if a.bounties == nil {
			return nil, nil, errUnavailable("bounties")
		}
		m, err := a.bounties.PaidPerMonth(ctx, repo)
		if err != nil {
			return nil, nil, err
		}
		return barChart("Bounty money paid per month", m), m, nil
	}
	return nil, nil, ErrNotFound
}

type errUnavailable string

func (e errUnavailable) Error() string { return "the " + string(e) + " part is not running" }

func (a *App) chartSVG(c *gin.Context) {
	name, ok := strings.CutSuffix(c.Param("chart"), ".svg")
	if !ok {
		a.failErr(c, "chart", ErrNotFound)
		return
	}
	svg, _, err := a.chartData(c, name)
	if err != nil {
		a.failErr(c, "chart", err)
		return
	}
	c.Header("Cache-Control", "public, max-age=60")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "image/svg+xml", svg)
}

func (a *App) apiChart(c *gin.Context) {
	_, data, err := a.chartData(c, c.Param("chart"))
	if err != nil {
		a.failErr(c, "chart", err)
		return
	}
	c.JSON(http.StatusOK, data)
}

// fillMonths puts the months without payouts back in, as zero bars, so the x axis is time.
func fillMonths(in []MonthTotal) []MonthTotal {
	if len(in) < 2 {
		return in
	}
	by := map[time.Time]int64{}
	for _, m := range in {
		by[m.Month] += m.Cents
	}
	var out []MonthTotal
	last := in[len(in)-1].Month
	for t := in[0].Month; !t.After(last) && len(out) < 240; t = t.AddDate(0, 1, 0) {
		out = append(out, MonthTotal{Month: t, Cents: by[t]})
	}
	return out
}
