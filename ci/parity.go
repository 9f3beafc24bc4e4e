package ci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ParityCase is one case of the testops report (issue 5's format).
type ParityCase struct {
	Name      string  `json:"name"`
	Family    string  `json:"family"`
	Status    string  `json:"status"` // pass, fail or skip
	FwdMaxAbs float64 `json:"fwd_max_abs"`
	FwdMaxRel float64 `json:"fwd_max_rel"`
	BwdMaxAbs float64 `json:"bwd_max_abs"`
	BwdMaxRel float64 `json:"bwd_max_rel"`
	FwdTol    float64 `json:"fwd_tol_used"` // worst element's error over its tolerance (≤ 1 passes)
	BwdTol    float64 `json:"bwd_tol_used"`
	Ms        float64 `json:"ms"`
	Error     string  `json:"error,omitempty"`
	// Where the case is declared, found in the head's testops sources (for annotations).
	Path string `json:"path,omitempty"`
	Line int    `json:"line,omitempty"`
	// BaseStatus is the failing case's status when the base's suite replays it with the same
	// seed: "fail" (already broken before this pull request), "pass" (a new failure) or
	// "missing" (a new case); empty when base was not compared.
	BaseStatus string `json:"base_status,omitempty"`
}

// ParityReport is `gradforge testops --json`'s report plus what the gate adds.
type ParityReport struct {
	HeadSHA string       `json:"head_sha,omitempty"`
	Device  string       `json:"device"`
	Seed    uint64       `json:"seed"`
	Torch   string       `json:"torch,omitempty"`
	Cases   []ParityCase `json:"cases"`
}

// ReadParity decodes and checks a testops report.
func ReadParity(r io.Reader) (*ParityReport, error) {
	var rep ParityReport
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("parity report: %w", err)
	}
	for i, c := range rep.Cases {
		if c.Name == "" {
			return nil, fmt.Errorf("parity report: case %d has no name", i)
		}
		switch c.Status {
		case "pass", "fail", "skip":
		default:
			return nil, fmt.Errorf("parity report: case %q has status %q, want pass, fail or skip", c.Name, c.Status)
		}
	}
	return &rep, nil
}

// Failed returns the failing cases.
func (r *ParityReport) Failed() []ParityCase {
	var out []ParityCase
	for _, c := range r.Cases {
		if c.Status == "fail" {
			out = append(out, c)
		}
	}
	return out
}

// Conclusion is failure when a case fails that base did not already fail (or the report is
// empty), neutral when every failure also fails at base (this pull request broke nothing),
// success otherwise.
func (r *ParityReport) Conclusion() string {
	if len(r.Cases) == 0 {
		return Failure
	}
	failed := r.Failed()
	if len(failed) == 0 {
		return Success
	}
	for _, c := range failed {
		if c.BaseStatus != "fail" {
			return Failure
		}
	}
	return Neutral
}

// CompareBase records, for each failing case, how the same case did at base (a report from
// the base's suite run with the same seed, usually filtered to these cases).
func (r *ParityReport) CompareBase(base *ParityReport) {
	at := map[string]string{}
	for _, c := range base.Cases {
		at[c.Name] = c.Status
	}
	for i, c := range r.Cases {
		if c.Status != "fail" {
			continue
		}
		if st, ok := at[c.Name]; ok {
			r.Cases[i].BaseStatus = st
		} else {
			r.Cases[i].BaseStatus = "missing"
		}
	}
}

// FailingFilter is a TESTOPS_FILTER that selects exactly the failing cases.
func (r *ParityReport) FailingFilter() string {
	var names []string
	for _, c := range r.Failed() {
		names = append(names, regexpQuote(c.Name))
	}
	return "^(" + strings.Join(names, "|") + ")$"
}

// newFailures counts failing cases that base did not already fail.
func (r *ParityReport) newFailures() (n int, compared bool) {
	for _, c := range r.Failed() {
		if c.BaseStatus != "" {
			compared = true
		}
		if c.BaseStatus != "fail" {
			n++
		}
	}
	return n, compared
}

// atBase says how a failing case did at base, for tables and annotations.
func (c ParityCase) atBase() string {
	switch c.BaseStatus {
	case "fail":
		return "fails at base too"
	case "pass":
		return "passes at base: new failure"
	case "missing":
		return "new case"
	case "skip":
		return "skipped at base"
	}
	return ""
}

// Title is the one-line outcome.
func (r *ParityReport) Title() string {
	if len(r.Cases) == 0 {
		return "the parity report has no cases"
	}
	pass, skip := 0, 0
	for _, c := range r.Cases {
		switch c.Status {
		case "pass":
			pass++
		case "skip":
			skip++
		}
	}
	failed := fmt.Sprint(len(r.Failed()))
	if n, ok := r.newFailures(); ok {
		failed = fmt.Sprintf("%d (%d new)", len(r.Failed()), n)
	}
	return fmt.Sprintf("%s failed, %d passed, %d skipped on %s", failed, pass, skip, r.Device)
}

// family is a case's op family; reports without one group by the name's first word.
func (c ParityCase) family() string {
	if c.Family != "" {
		return c.Family
	}
	name := c.Name
	if i := strings.IndexAny(name, "/_ .["); i > 0 {
		name = name[:i]
	}
	return name
}

// familyRow is one row of the summary.
type familyRow struct {
	Family           string
	Pass, Fail, Skip int
	WorstFwd         float64 // largest share of its tolerance a case's forward error used
	WorstBwd         float64 // (largest absolute error for reports from before tol_used)
}

// worstHeaders name the family table's error columns: the share of the tolerance used, which
// compares across families, or absolute errors for a report written before that was recorded.
func (r *ParityReport) worstHeaders() (fwd, bwd string) {
	if r.tolUsed() {
		return "worst fwd err/tol", "worst bwd err/tol"
	}
	return "worst fwd abs err", "worst bwd abs err"
}

func (r *ParityReport) tolUsed() bool {
	for _, c := range r.Cases {
		if c.FwdTol > 0 || c.BwdTol > 0 {
			return true
		}
	}
	return false
}

func (r *ParityReport) families() []familyRow {
	rows, tol := map[string]*familyRow{}, r.tolUsed()
	for _, c := range r.Cases {
		f := c.family()
		row := rows[f]
		if row == nil {
			row = &familyRow{Family: f}
			rows[f] = row
		}
		switch c.Status {
		case "pass":
			row.Pass++
		case "fail":
			row.Fail++
		case "skip":
			row.Skip++
		}
		fwd, bwd := c.FwdMaxAbs, c.BwdMaxAbs
		if tol {
			fwd, bwd = c.FwdTol, c.BwdTol
		}
		row.WorstFwd = math.Max(row.WorstFwd, finite(fwd))
		row.WorstBwd = math.Max(row.WorstBwd, finite(bwd))
	}
	out := make([]familyRow, 0, len(rows))
	for _, row := range rows {
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Fail > 0) != (out[j].Fail > 0) {
			return out[i].Fail > 0 // failing families first
		}
		return out[i].Family < out[j].Family
	})
	return out
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return math.Inf(1)
	}
	return x
}

// Replay is the command that reruns one case with the same inputs.
func (r *ParityReport) Replay(c ParityCase) string {
	return fmt.Sprintf("TESTOPS_SEED=%d TESTOPS_FILTER='^%s$' gradforge testops --device %s", r.Seed, regexpQuote(c.Name), r.Device)
}

// regexpQuote escapes regexp metacharacters (regexp.QuoteMeta, kept short for shells).
func regexpQuote(s string) string {
	var b strings.Builder
	for _, ch := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, ch) {
			b.WriteByte('\\')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// Markdown renders the summary: a table by op family, then the failing cases.
func (r *ParityReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**\n\n", r.Title())
	fmt.Fprintf(&b, "Device `%s`, PyTorch `%s`, `TESTOPS_SEED=%d`.\n\n", r.Device, r.Torch, r.Seed)
	fwd, bwd := r.worstHeaders()
	fmt.Fprintf(&b, "| family | cases | pass | fail | skip | %s | %s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n", fwd, bwd)
	for _, f := range r.families() {
		fail := strconv.Itoa(f.Fail)
		if f.Fail > 0 {
			fail = "**" + fail + "**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %.3g | %.3g |\n", f.Family, f.Pass+f.Fail+f.Skip, f.Pass, fail, f.Skip, f.WorstFwd, f.WorstBwd)
	}
	if failed := r.Failed(); len(failed) > 0 {
		b.WriteString("\n**Failing cases**\n\n| case | fwd max abs | fwd max rel | bwd max abs | bwd max rel | at base | error |\n| --- | ---: | ---: | ---: | ---: | --- | --- |\n")
		for _, c := range failed {
			at := c.atBase()
			if at == "" {
				at = "not compared"
			}
			fmt.Fprintf(&b, "| `%s` | %.3g | %.3g | %.3g | %.3g | %s | %s |\n", c.Name, c.FwdMaxAbs, c.FwdMaxRel, c.BwdMaxAbs, c.BwdMaxRel, at, oneLine(c.Error))
		}
		fmt.Fprintf(&b, "\nReplay one: `%s`\n", r.Replay(failed[0]))
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// WriteText prints the family table and failing cases for a terminal.
func (r *ParityReport) WriteText(w io.Writer) error {
	fwd, bwd := r.worstHeaders()
	fmt.Fprintf(w, "%-16s %6s %6s %6s %6s %18s %18s\n", "family", "cases", "pass", "fail", "skip", fwd, bwd)
	for _, f := range r.families() {
		fmt.Fprintf(w, "%-16s %6d %6d %6d %6d %18.3g %18.3g\n", f.Family, f.Pass+f.Fail+f.Skip, f.Pass, f.Fail, f.Skip, f.WorstFwd, f.WorstBwd)
	}
	for _, c := range r.Failed() {
		at := ""
		if c.BaseStatus != "" {
			at = " [" + c.atBase() + "]"
		}
		fmt.Fprintf(w, "FAIL %s%s: fwd %.3g (rel %.3g), bwd %.3g (rel %.3g) %s\n  replay: %s\n", c.Name, at, c.FwdMaxAbs, c.FwdMaxRel, c.BwdMaxAbs, c.BwdMaxRel, oneLine(c.Error), r.Replay(c))
	}
	_, err := fmt.Fprintf(w, "parity: %s (TESTOPS_SEED=%d)\n", r.Title(), r.Seed)
	return err
}

// Annotations turns failing cases into check-run annotations at the line that declares each
// case (or the top of the testops package when it cannot be found).
func (r *ParityReport) Annotations() []Annotation {
	var out []Annotation
	for _, c := range r.Failed() {
		path, line := c.Path, c.Line
		if path == "" {
			path, line = "testops/doc.go", 1
		}
		msg := fmt.Sprintf("forward max abs error %.3g (rel %.3g), backward %.3g (rel %.3g)", c.FwdMaxAbs, c.FwdMaxRel, c.BwdMaxAbs, c.BwdMaxRel)
		if c.Error != "" {
			msg += "\n" + c.Error
		}
		if at := c.atBase(); at != "" {
			msg += "\n" + at
		}
		msg += fmt.Sprintf("\nseed %d; replay: %s", r.Seed, r.Replay(c))
		level := LevelFailure
		if c.BaseStatus == "fail" {
			level = LevelWarning // not this pull request's doing
		}
		out = append(out, Annotation{Path: path, StartLine: line, EndLine: line, Level: level, Title: "parity: " + c.Name, Message: msg})
	}
	return out
}

// Locate fills each failing case's Path and Line with where its name is written in the
// testops sources of a commit, so annotations land on the case's declaration: the whole name
// as a Go string literal, or else the most specific part of a generated name
// ("binary/add/number" → the line holding "add").
func (r *ParityReport) Locate(ctx context.Context, repo Repo, sha string) error {
	files, err := repo.Files(ctx, sha, "testops", func(p string) bool { return strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") })
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for i, c := range r.Cases {
		if c.Status != "fail" || c.Path != "" {
			continue
		}
		// The whole name as a string literal, else its parts from the last: generated names
		// such as "binary/add/number" are written as an op table row {name: "add", …}.
		words := []string{c.Name}
		parts := strings.FieldsFunc(c.Name, func(r rune) bool { return r == '/' || r == ' ' })
		for j := len(parts) - 1; j >= 0 && len(parts) > 1; j-- {
			words = append(words, parts[j])
		}
	search:
		for _, w := range words {
			quoted := []byte(strconv.Quote(w))
			for _, p := range paths {
				if at := bytes.Index(files[p], quoted); at >= 0 {
					r.Cases[i].Path, r.Cases[i].Line = p, 1+bytes.Count(files[p][:at], []byte{'\n'})
					break search
				}
			}
		}
	}
	return nil
}

// ParityOptions configure a parity run.
type ParityOptions struct {
	Device string    // framework device (default CPU)
	Filter string    // TESTOPS_FILTER
	Seed   string    // TESTOPS_SEED, to replay
	Log    io.Writer // the suite's own output
	// CompareBase replays the failing cases on the base commit with the same seed, so each
	// failure says whether this pull request caused it.
	CompareBase bool
}

// Parity builds gradforge at head and runs its testops suite, then reads the report; with
// CompareBase it builds base too and replays the failures there.
func Parity(ctx context.Context, repo Repo, baseSHA, headSHA string, o ParityOptions) (*ParityReport, error) {
	work, err := os.MkdirTemp("", "gradforge-parity-")
	if err != nil {
		return nil, fmt.Errorf("parity gate: %w", err)
	}
	defer os.RemoveAll(work)
	bin, err := buildAt(ctx, repo, headSHA, filepath.Join(work, "head"))
	if err != nil {
		return nil, err
	}
	rep, err := RunSuite(ctx, bin, filepath.Join(work, "head.json"), o)
	if err != nil {
		return nil, fmt.Errorf("testops at %s: %w", short(headSHA), err)
	}
	rep.HeadSHA = headSHA
	if err := rep.Locate(ctx, repo, headSHA); err != nil {
		return nil, err
	}
	if o.CompareBase && len(rep.Failed()) > 0 && baseSHA != "" {
		baseBin, err := buildAt(ctx, repo, baseSHA, filepath.Join(work, "base"))
		if err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
		if err := rep.ReplayAtBase(ctx, baseBin, filepath.Join(work, "base.json"), o); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// ReplayAtBase runs the failing cases with the base's gradforge (bin) and the same seed and
// device, and records how each did there.
func (r *ParityReport) ReplayAtBase(ctx context.Context, bin, report string, o ParityOptions) error {
	if len(r.Failed()) == 0 {
		return nil
	}
	o.Filter, o.Seed = r.FailingFilter(), strconv.FormatUint(r.Seed, 10)
	if o.Device == "" {
		o.Device = r.Device
	}
	base, err := RunSuite(ctx, bin, report, o)
	if err != nil {
		return fmt.Errorf("replay failures at base: %w", err)
	}
	r.CompareBase(base)
	return nil
}

// buildAt exports a commit into dir and builds its gradforge there.
func buildAt(ctx context.Context, repo Repo, sha, dir string) (string, error) {
	if err := repo.Export(ctx, sha, dir); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, ".gradforge-bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gradforge")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build gradforge at %s: %v\n%s", short(sha), err, tail(out, 4000))
	}
	return bin, nil
}

// RunSuite runs `bin testops --json report` and reads the report. The suite exits non-zero
// when cases fail; that is a result, not an error, as long as it wrote its report.
func RunSuite(ctx context.Context, bin, report string, o ParityOptions) (*ParityReport, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	args := []string{"testops", "--json", report}
	if o.Device != "" {
		args = append(args, "--device", o.Device)
	}
	run := exec.CommandContext(ctx, bin, args...)
	run.Dir = filepath.Dir(report)
	run.Env = os.Environ()
	if o.Filter != "" {
		run.Env = append(run.Env, "TESTOPS_FILTER="+o.Filter)
	}
	if o.Seed != "" {
		run.Env = append(run.Env, "TESTOPS_SEED="+o.Seed)
	}
	var out bytes.Buffer
	run.Stdout, run.Stderr = io.MultiWriter(&out, o.Log), io.MultiWriter(&out, o.Log)
	runErr := run.Run()
	f, err := os.Open(report)
	if err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("testops wrote no report: %v\n%s", runErr, tail(out.Bytes(), 4000))
		}
		return nil, fmt.Errorf("testops: %w", err)
	}
	defer f.Close()
	rep, err := ReadParity(f)
	if err != nil {
		return nil, err
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return nil, fmt.Errorf("testops: %w", runErr)
	}
	return rep, nil
}
