package ci

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stubGradforge stands in for gradforge in a repository: it writes what it was asked and
// which checkout it was built from to the --json file, and exits 1 like a failing gate.
const stubGradforge = `package main

import (
	"encoding/json"
	"os"
)

const side = "SIDE"

func main() {
	out := ""
	for i, a := range os.Args {
		if a == "--json" && i+1 < len(os.Args) {
			out = os.Args[i+1]
		}
	}
	wd, _ := os.Getwd()
	b, _ := json.Marshal(map[string]any{"built_from": side, "args": os.Args[1:], "env_device": os.Getenv("DEVICE"), "wd": wd})
	if err := os.WriteFile(out, b, 0o644); err != nil {
		panic(err)
	}
	os.Exit(1)
}
`

// TestJobSteps runs each gate's job steps with sh, laid out as a runner lays a job out (head
// in src, base as a worktree beside it), and checks that the judging binary is the base's.
func TestJobSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	r := newTestRepo(t)
	base := r.commit("base", map[string]string{"go.mod": benchGoMod, "cmd/gradforge/main.go": strings.Replace(stubGradforge, "SIDE", "base", 1)})
	head := r.commit("head", map[string]string{"cmd/gradforge/main.go": strings.Replace(stubGradforge, "SIDE", "head", 1)})
	ws := t.TempDir()
	r.git("worktree", "add", "-q", "--detach", filepath.Join(ws, "base"), base)

	svc := &Service{Config: Config{SpeedBench: "Fused|Matmul'$(x)", SpeedPairs: 12}}
	p := pullRow{Repo: "o/r", Number: 1, HeadSHA: head, BaseSHA: base, BaseRef: "main", CloneURL: "file://" + r.dir}
	for _, gate := range Gates {
		t.Run(gate, func(t *testing.T) {
			results := filepath.Join(ws, "results-"+gate)
			os.MkdirAll(results, 0o755)
			j := svc.job(p, Run{ID: 7, Gate: gate, Attempt: 1})
			env := append(os.Environ(), "GRADFORGE_WORKSPACE="+ws, "GRADFORGE_BASE_DIR="+filepath.Join(ws, "base"),
				"GRADFORGE_BASE_SHA="+base, "GRADFORGE_HEAD_SHA="+head, "GRADFORGE_RESULTS="+results, "GRADFORGE_SRC="+r.dir)
			for k, v := range j.Env {
				env = append(env, k+"="+v)
			}
			for _, st := range j.Steps {
				cmd := exec.Command("sh", "-c", st.Run)
				cmd.Dir, cmd.Env = r.dir, env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("step %q failed: %v\n%s\n%s", st.Name, err, st.Run, out)
				}
			}
			b, err := os.ReadFile(filepath.Join(results, gate+".json"))
			if err != nil {
				t.Fatalf("no %s.json in the results: %v", gate, err)
			}
			var got struct {
				BuiltFrom string   `json:"built_from"`
				Args      []string `json:"args"`
				Device    string   `json:"env_device"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.BuiltFrom != "base" {
				t.Errorf("the %s gate was judged by a gradforge built from %s, want base", gate, got.BuiltFrom)
			}
			args := strings.Join(got.Args, " ")
			if !strings.HasPrefix(args, "gate "+gate+" --repo . ") || !strings.Contains(args, "--head "+head) {
				t.Errorf("args %q", args)
			}
			switch gate {
			case GateLines:
				if !strings.Contains(args, "--base "+base+" --head "+head+" --budget 9000") {
					t.Errorf("lines args %q", args)
				}
			case GateSpeed:
				if got.Device != "CUDA" || !strings.Contains(args, "--threshold 0.05") {
					t.Errorf("speed: DEVICE=%q args %q", got.Device, args)
				}
				if j.Env["GRADFORGE_BENCH"] != "Fused|Matmul'$(x)" || j.Env["GRADFORGE_PAIRS"] != "12" || strings.Contains(args, "Fused") {
					t.Errorf("speed settings must travel in the environment, not the shell line: env %v, args %q", j.Env, args)
				}
			case GateParity:
				// The suite itself is the head's code under test.
				tb, err := os.ReadFile(filepath.Join(ws, "testops.json"))
				if err != nil || !strings.Contains(string(tb), `"built_from":"head"`) || !strings.Contains(string(tb), `"--device","CUDA"`) {
					t.Errorf("testops report %s (%v): want the head's suite on CUDA", tb, err)
				}
			}
		})
	}
}
