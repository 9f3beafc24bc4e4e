package ci

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// A tiny project with the same shape as gradforge: a framework function, testops cases that
// check it, and a cmd/gradforge whose `testops --json` writes issue 5's report.
const (
	parityOps = `package framework

// Add adds.
func Add(a, b float64) float64 { return a + b }

// Mul multiplies.
func Mul(a, b float64) float64 { return a * b }
`
	parityCases = `package testops

import "example.com/fw/framework"

// Case is one parity case.
type Case struct {
	Name, Family string
	Got, Want    float64
}

// Cases lists every case.
func Cases() []Case {
	return []Case{
		{"add_scalar", "binary", framework.Add(1, 2), 3},
		{"mul_scalar", "binary", framework.Mul(2, 3), 6},
		{"mul_neg", "binary", framework.Mul(-2, 3), -6},
	}
}
`
	parityMain = `package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"example.com/fw/testops"
)

func main() {
	if len(os.Args) < 4 || os.Args[1] != "testops" || os.Args[2] != "--json" {
		fmt.Fprintln(os.Stderr, "usage: gradforge testops --json FILE")
		os.Exit(2)
	}
	type res struct {
		Name      string  ` + "`json:\"name\"`" + `
		Family    string  ` + "`json:\"family\"`" + `
		Status    string  ` + "`json:\"status\"`" + `
		FwdMaxAbs float64 ` + "`json:\"fwd_max_abs\"`" + `
		FwdMaxRel float64 ` + "`json:\"fwd_max_rel\"`" + `
		BwdMaxAbs float64 ` + "`json:\"bwd_max_abs\"`" + `
		BwdMaxRel float64 ` + "`json:\"bwd_max_rel\"`" + `
		Ms        float64 ` + "`json:\"ms\"`" + `
	}
	rep := struct {
		Device string ` + "`json:\"device\"`" + `
		Seed   uint64 ` + "`json:\"seed\"`" + `
		Cases  []res  ` + "`json:\"cases\"`" + `
	}{Device: "CPU", Seed: 42}
	failed := 0
	for _, c := range testops.Cases() {
		e := math.Abs(c.Got - c.Want)
		st := "pass"
		if e > 1e-6 {
			st = "fail"
			failed++
		}
		rep.Cases = append(rep.Cases, res{Name: c.Name, Family: c.Family, Status: st, FwdMaxAbs: e, FwdMaxRel: e / math.Abs(c.Want)})
	}
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(os.Args[3], b, 0o644); err != nil {
		panic(err)
	}
	fmt.Printf("%d failed\n", failed)
	if failed > 0 {
		os.Exit(1)
	}
}
`
)

func TestParityGate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	r := newTestRepo(t)
	base := r.commit("base", map[string]string{
		"go.mod":                benchGoMod,
		"framework/ops.go":      parityOps,
		"testops/cases.go":      parityCases,
		"cmd/gradforge/main.go": parityMain,
	})
	head := r.commit("head breaks Mul", map[string]string{
		"framework/ops.go": strings.Replace(parityOps, "return a * b", "return a*b + 0.5", 1),
	})
	good, err := Parity(ctx(t), r.repo(), "", base, ParityOptions{CompareBase: true})
	if err != nil {
		t.Fatal(err)
	}
	if good.Conclusion() != Success || len(good.Cases) != 3 {
		t.Errorf("base: %s with %d cases, want success with 3", good.Conclusion(), len(good.Cases))
	}
	bad, err := Parity(ctx(t), r.repo(), base, head, ParityOptions{CompareBase: true})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Conclusion() != Failure || !strings.HasPrefix(bad.Title(), "2 (2 new) failed") {
		t.Fatalf("head: %s %q, want failure with two new failures", bad.Conclusion(), bad.Title())
	}
	anns := bad.Annotations()
	if len(anns) != 2 {
		t.Fatalf("annotations %+v, want the two mul cases", anns)
	}
	a := anns[0]
	if a.Path != "testops/cases.go" || a.StartLine != 15 || a.Level != LevelFailure || a.Title != "parity: mul_scalar" {
		t.Errorf("annotation at %s:%d %s %q", a.Path, a.StartLine, a.Level, a.Title)
	}
	for _, s := range []string{"forward max abs error 0.5", "seed 42", "TESTOPS_SEED=42 TESTOPS_FILTER='^mul_scalar$'", "passes at base: new failure"} {
		if !strings.Contains(a.Message, s) {
			t.Errorf("annotation message lacks %q: %s", s, a.Message)
		}
	}
	c := checkFor(t, GateParity, bad)
	if c.Conclusion != Failure || len(c.Annotations) != 2 || c.Annotations[0].GetPath() != "testops/cases.go" || c.Annotations[0].GetStartLine() != 15 ||
		!strings.HasPrefix(c.Title, "2 (2 new) failed, 1 passed") {
		t.Errorf("parity check run: %s %q, %d annotations", c.Conclusion, c.Title, len(c.Annotations))
	}
	if ok := checkFor(t, GateParity, good); ok.Conclusion != Success || len(ok.Annotations) != 0 {
		t.Errorf("base's parity check run: %s with %d annotations", ok.Conclusion, len(ok.Annotations))
	}
	// A later pull request on top of the broken commit did not break anything itself: its
	// failures also fail at its base, so the check is neutral and the annotations warnings.
	later := r.commit("unrelated change", map[string]string{"README.md": "hi\n"})
	again, err := Parity(ctx(t), r.repo(), head, later, ParityOptions{CompareBase: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Conclusion() != Neutral || !strings.HasPrefix(again.Title(), "2 (0 new) failed") || again.Annotations()[0].Level != LevelWarning {
		t.Errorf("pre-existing failures: %s %q %+v", again.Conclusion(), again.Title(), again.Annotations())
	}
	if !strings.Contains(again.Markdown(), "| fails at base too |") {
		t.Errorf("summary does not say the failures predate the pull request:\n%s", again.Markdown())
	}
	md := bad.Markdown()
	if !strings.Contains(md, "| binary | 3 | 1 | **2** | 0 | 0.5 | 0 |") || !strings.Contains(md, "`mul_neg`") {
		t.Errorf("summary:\n%s", md)
	}
}

func TestReadParity(t *testing.T) {
	tests := []struct {
		name, json, err string
	}{
		{"not json", "{", "parity report"},
		{"bad status", `{"cases":[{"name":"a","status":"ok"}]}`, `status "ok"`},
		{"nameless case", `{"cases":[{"status":"pass"}]}`, "no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadParity(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want one containing %q", err, tt.err)
			}
		})
	}
	rep, err := ReadParity(strings.NewReader(`{"device":"CPU","seed":7,"cases":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conclusion() != Failure {
		t.Error("an empty report must fail: no cases ran")
	}
}

func TestParityFamiliesAndManyFailures(t *testing.T) {
	rep := &ParityReport{Device: "CPU", Seed: 1}
	for i := range 120 {
		rep.Cases = append(rep.Cases, ParityCase{Name: fmt.Sprintf("conv2d_%d", i), Status: "fail", FwdMaxAbs: float64(i)})
	}
	rep.Cases = append(rep.Cases, ParityCase{Name: "relu/basic", Status: "pass"})
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "conv2d") || !strings.Contains(text.String(), "relu") {
		t.Errorf("families from names:\n%s", text.String()[:500])
	}
	outs := batches(&Output{Title: rep.Title(), Summary: rep.Markdown(), Annotations: rep.Annotations()})
	if len(outs) != 3 || len(outs[0].Annotations) != 50 || len(outs[1].Annotations) != 50 || len(outs[2].Annotations) != 20 {
		t.Errorf("120 annotations must go as 50+50+20, got %d requests", len(outs))
	}
}

func TestLocateGeneratedNames(t *testing.T) {
	r := newTestRepo(t)
	sha := r.commit("cases", map[string]string{"testops/cases.go": "package testops\n\nvar binary = []op{\n\t{\"add\", add},\n\t{\"mul\", mul},\n}\n\nvar whole = \"reduce/sum/all\"\n"})
	rep := &ParityReport{Cases: []ParityCase{
		{Name: "binary/mul/broadcast", Status: "fail"},
		{Name: "reduce/sum/all", Status: "fail"},
		{Name: "nowhere/zzz", Status: "fail"},
		{Name: "binary/add/x", Status: "pass"},
	}}
	if err := rep.Locate(ctx(t), r.repo(), sha); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path string
		line int
	}{{"testops/cases.go", 5}, {"testops/cases.go", 8}, {"", 0}, {"", 0}}
	for i, w := range want {
		if c := rep.Cases[i]; c.Path != w.path || c.Line != w.line {
			t.Errorf("%s located at %s:%d, want %s:%d", c.Name, c.Path, c.Line, w.path, w.line)
		}
	}
	if a := rep.Annotations(); len(a) != 3 || a[2].Path != "testops/doc.go" || a[2].StartLine != 1 {
		t.Errorf("an unlocated case is annotated at testops/doc.go:1, got %+v", a)
	}
}

// The family table compares errors as shares of each case's tolerance, so a family of large
// values (exp of big inputs) does not look worse than one of small values; reports from
// before tol_used was recorded keep their absolute errors, labelled as such.
func TestParityWorstErrorColumns(t *testing.T) {
	rep := &ParityReport{Device: "CUDA", Seed: 1, Cases: []ParityCase{
		{Name: "exp_big", Family: "unary", Status: "pass", FwdMaxAbs: 1.9e22, FwdTol: 0.25},
		{Name: "add", Family: "binary", Status: "pass", FwdMaxAbs: 2e-7, FwdTol: 0.02, BwdTol: 0.5},
	}}
	md := rep.Markdown()
	for _, want := range []string{"| worst fwd err/tol | worst bwd err/tol |", "| unary | 1 | 1 | 0 | 0 | 0.25 | 0 |", "| binary | 1 | 1 | 0 | 0 | 0.02 | 0.5 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	for i := range rep.Cases {
		rep.Cases[i].FwdTol, rep.Cases[i].BwdTol = 0, 0
	}
	if md := rep.Markdown(); !strings.Contains(md, "| worst fwd abs err |") || !strings.Contains(md, "| unary | 1 | 1 | 0 | 0 | 1.9e+22 |") {
		t.Errorf("an old report keeps absolute errors:\n%s", md)
	}
}
