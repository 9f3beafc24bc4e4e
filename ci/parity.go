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
	Ms        float64 `json:"ms"`
	Error     string  `json:"error,omitempty"`
	// Where the case is declared, found in the head's testops sources (for annotations).
	Path string `json:"path,omitempty"`
	Line int    `json:"line,omitempty"`
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

// Conclusion is failure when any case fails or the report is empty, success otherwise.
func (r *ParityReport) Conclusion() string {
	if len(r.Cases) == 0 || len(r.Failed()) > 0 {
		return Failure
	}
	return Success
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
	return fmt.Sprintf("%d failed, %d passed, %d skipped on %s", len(r.Failed()), pass, skip, r.Device)
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
	WorstFwd         float64 // largest forward max abs error among its cases
	WorstBwd         float64
}

func (r *ParityReport) families() []familyRow {
	rows := map[string]*familyRow{}
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
		row.WorstFwd = math.Max(row.WorstFwd, finite(c.FwdMaxAbs))
		row.WorstBwd = math.Max(row.WorstBwd, finite(c.BwdMaxAbs))
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
	b.WriteString("| family | cases | pass | fail | skip | worst fwd abs err | worst bwd abs err |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, f := range r.families() {
		fail := strconv.Itoa(f.Fail)
		if f.Fail > 0 {
			fail = "**" + fail + "**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %.3g | %.3g |\n", f.Family, f.Pass+f.Fail+f.Skip, f.Pass, fail, f.Skip, f.WorstFwd, f.WorstBwd)
	}
	if failed := r.Failed(); len(failed) > 0 {
		b.WriteString("\n**Failing cases**\n\n| case | fwd max abs | fwd max rel | bwd max abs | bwd max rel | error |\n| --- | ---: | ---: | ---: | ---: | --- |\n")
		for _, c := range failed {
			fmt.Fprintf(&b, "| `%s` | %.3g | %.3g | %.3g | %.3g | %s |\n", c.Name, c.FwdMaxAbs, c.FwdMaxRel, c.BwdMaxAbs, c.BwdMaxRel, oneLine(c.Error))
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
	fmt.Fprintf(w, "%-16s %6s %6s %6s %6s %12s %12s\n", "family", "cases", "pass", "fail", "skip", "worst fwd", "worst bwd")
	for _, f := range r.families() {
		fmt.Fprintf(w, "%-16s %6d %6d %6d %6d %12.3g %12.3g\n", f.Family, f.Pass+f.Fail+f.Skip, f.Pass, f.Fail, f.Skip, f.WorstFwd, f.WorstBwd)
	}
	for _, c := range r.Failed() {
		fmt.Fprintf(w, "FAIL %s: fwd %.3g (rel %.3g), bwd %.3g (rel %.3g) %s\n  replay: %s\n", c.Name, c.FwdMaxAbs, c.FwdMaxRel, c.BwdMaxAbs, c.BwdMaxRel, oneLine(c.Error), r.Replay(c))
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
		msg += fmt.Sprintf("\nseed %d; replay: %s", r.Seed, r.Replay(c))
		out = append(out, Annotation{Path: path, StartLine: line, EndLine: line, Level: LevelFailure, Title: "parity: " + c.Name, Message: msg})
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

// ParityOptions configure a local parity run.
type ParityOptions struct {
	Device string    // framework device (default CPU)
	Filter string    // TESTOPS_FILTER
	Seed   string    // TESTOPS_SEED, to replay
	Log    io.Writer // the suite's own output
}

// Parity builds gradforge at a commit and runs its testops suite, then reads the report. The
// suite exits non-zero when cases fail; that is a result, not an error, as long as it wrote
// its report.
func Parity(ctx context.Context, repo Repo, sha string, o ParityOptions) (*ParityReport, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	work, err := os.MkdirTemp("", "gradforge-parity-")
	if err != nil {
		return nil, fmt.Errorf("parity gate: %w", err)
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := repo.Export(ctx, sha, src); err != nil {
		return nil, err
	}
	bin := filepath.Join(work, "gradforge")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gradforge")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build gradforge at %s: %v\n%s", short(sha), err, tail(out, 4000))
	}
	report := filepath.Join(work, "report.json")
	args := []string{"testops", "--json", report}
	if o.Device != "" {
		args = append(args, "--device", o.Device)
	}
	run := exec.CommandContext(ctx, bin, args...)
	run.Dir = src
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
			return nil, fmt.Errorf("testops at %s wrote no report: %v\n%s", short(sha), runErr, tail(out.Bytes(), 4000))
		}
		return nil, fmt.Errorf("testops at %s: %w", short(sha), err)
	}
	defer f.Close()
	rep, err := ReadParity(f)
	if err != nil {
		return nil, err
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return nil, fmt.Errorf("testops at %s: %w", short(sha), runErr)
	}
	rep.HeadSHA = sha
	if err := rep.Locate(ctx, repo, sha); err != nil {
		return nil, err
	}
	return rep, nil
}
