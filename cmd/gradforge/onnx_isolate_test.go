package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/onnx"
)

// A stand-in worker: answers every case, writes a stray line first, and dies by SIGSEGV
// on a case whose folder says "crash", as a fault in generated C would.
const fakeWorker = `while read dir; do
  case "$dir" in
    *crash*) echo "fatal error: unexpected signal during runtime execution [signal SIGSEGV]" >&2; kill -SEGV $$ ;;
    *) echo "stray DEBUG line"; printf 'gradforge-case-result\t{"status":"pass","ns":5}\n' ;;
  esac
done`

func TestIsolatedCrashFailsOnlyItsCase(t *testing.T) {
	p := &isolated{argv: []string{"sh", "-c", fakeWorker}}
	defer p.Close()
	ctx := context.Background()
	var got []onnx.Result
	for _, name := range []string{"test_a", "test_crash", "test_b"} {
		got = append(got, p.Run(ctx, onnx.Case{Name: name, Dir: "/suite/" + name}))
	}
	if got[0].Status != onnx.Pass || got[2].Status != onnx.Pass {
		t.Fatalf("cases around the crash: %v, %v; want both to pass", got[0], got[2])
	}
	if got[1].Status != onnx.Fail || got[1].Err == nil {
		t.Fatalf("crashing case: %+v, want a failure", got[1])
	}
	for _, want := range []string{"crashed", "segmentation fault", "SIGSEGV"} {
		if !strings.Contains(got[1].Err.Error(), want) {
			t.Errorf("crash report %q does not say %q", got[1].Err, want)
		}
	}
	if len(p.idle) != 1 {
		t.Errorf("%d idle workers after the run, want 1 (the crashed one replaced, not kept)", len(p.idle))
	}
}

func TestCaseWorkerReportsEachCase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "test_broken")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := caseWorker(context.Background(), strings.NewReader(dir+"\n"+dir+"\n"), &out, onnx.SuiteOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d result lines, want 2: %q", len(lines), out.String())
	}
	var w wireResult
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[0], resultPrefix)), &w); err != nil {
		t.Fatalf("result line %q: %v", lines[0], err)
	}
	if w.Status != onnx.Fail || w.Err == "" {
		t.Errorf("unreadable model: %+v, want a failure with its error", w)
	}
}
