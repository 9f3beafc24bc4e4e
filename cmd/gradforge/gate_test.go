package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a real repository with a base and a head commit and returns its folder.
func gitRepo(t *testing.T, commits ...map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	for i, files := range commits {
		for p, c := range files {
			full := filepath.Join(dir, p)
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		git("add", "-A")
		git("commit", "-q", "-m", "commit "+string(rune('0'+i)))
	}
	return dir
}

// gradforge runs the built binary in dir and returns its output and exit code.
func gradforge(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestGateLines(t *testing.T) {
	dir := gitRepo(t,
		map[string]string{"framework/a.go": "package a\n\n// x is.\nvar x = 1\n", "framework/nn/l.go": "package nn\nvar y = 2\n"},
		map[string]string{"framework/a.go": "package a\n\n// x is.\nvar x = 1\nvar z = 3\n", "framework/b_test.go": "package a\nvar t = 1\n"})
	json := filepath.Join(t.TempDir(), "lines.json")
	out, code := gradforge(t, dir, "gate", "lines", "--json", json)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[len(lines)-1] != "total 3" {
		t.Errorf("last line %q, want %q\n%s", lines[len(lines)-1], "total 3", out)
	}
	if !strings.Contains(out, "framework/a.go") || !strings.Contains(out, "+1") || strings.Contains(out, "nn/l.go") || strings.Contains(out, "b_test.go") {
		t.Errorf("table:\n%s", out)
	}
	if b, err := os.ReadFile(json); err != nil || !strings.Contains(string(b), `"head_total": 3`) {
		t.Errorf("--json wrote %s (%v)", b, err)
	}

	out, code = gradforge(t, dir, "gate", "lines", "--budget", "2")
	if code != 1 || !strings.Contains(out, "OVER BUDGET by 1") || !strings.HasSuffix(strings.TrimSpace(strings.Split(out, "gradforge:")[0]), "total 3") {
		t.Errorf("over budget: exit %d\n%s", code, out)
	}
	cmd := exec.Command(bin, "gate", "lines") // the environment sets the flag too
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "GRADFORGE_BUDGET=2")
	if err := cmd.Run(); err == nil {
		t.Error("GRADFORGE_BUDGET=2 must fail the gate")
	}

	if err := os.WriteFile(filepath.Join(dir, "framework", "c.go"), []byte("package a\nvar c = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = gradforge(t, dir, "gate", "lines", "--head", "WORKTREE")
	if code != 0 || !strings.Contains(out, "total 5") {
		t.Errorf("working tree: exit %d\n%s", code, out)
	}

	out, code = gradforge(t, dir, "gate", "lines", "--base", "nope")
	if code == 0 || !strings.Contains(out, `--base: resolve "nope"`) {
		t.Errorf("bad ref: exit %d\n%s", code, out)
	}
}

func TestGateParityReport(t *testing.T) {
	dir := gitRepo(t, map[string]string{"testops/cases.go": "package testops\n\nvar cases = []string{\n\t\"exp_big\",\n}\n"})
	report := filepath.Join(t.TempDir(), "r.json")
	os.WriteFile(report, []byte(`{"device":"CPU","seed":3,"cases":[{"name":"add","family":"binary","status":"pass"},
		{"name":"exp_big","family":"unary","status":"fail","fwd_max_abs":0.3}]}`), 0o644)
	result := filepath.Join(t.TempDir(), "parity.json")
	out, code := gradforge(t, dir, "gate", "parity", "--report", report, "--json", result)
	if code != 1 || !strings.Contains(out, "FAIL exp_big") || !strings.Contains(out, "TESTOPS_SEED=3 TESTOPS_FILTER='^exp_big$'") {
		t.Errorf("exit %d\n%s", code, out)
	}
	var got struct {
		Cases []struct {
			Name, Path string
			Line       int
		}
	}
	b, _ := os.ReadFile(result)
	if err := json.Unmarshal(b, &got); err != nil || len(got.Cases) != 2 || got.Cases[1].Path != "testops/cases.go" || got.Cases[1].Line != 4 {
		t.Errorf("result %s (%v): the failing case must be located at testops/cases.go:4", b, err)
	}
}

// The speed job passes its settings as the flags' environment variables.
func TestGateSpeedSettingsFromEnvironment(t *testing.T) {
	dir := gitRepo(t, map[string]string{"go.mod": "module example.com/x\n\ngo 1.22\n"}, map[string]string{"framework/a.go": "package a\n"})
	cmd := exec.Command(bin, "gate", "speed", "-q")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "GRADFORGE_PAIRS=3")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "at least 6 pairs for a 95 % interval, got 3") {
		t.Errorf("GRADFORGE_PAIRS=3: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "gate", "speed", "-q")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "GRADFORGE_BENCH=(")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--bench") {
		t.Errorf("GRADFORGE_BENCH=(: %v\n%s", err, out)
	}
}
