package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin is the gradforge binary built once for the tests that run it as a user would.
var bin string

func TestMain(m *testing.M) {
	// A machine without Go (the GPU device) runs this test binary with a prebuilt gradforge.
	if bin = os.Getenv("GRADFORGE_TEST_BIN"); bin != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "gradforge-bin")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "gradforge")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic("build gradforge: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startServe runs `gradforge serve` on a free port in dir and returns the process and its URL.
func startServe(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL line from serve: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[3], "http://") {
		t.Fatalf("serve printed %q, want 'gradforge listening on http://…'", line)
	}
	go io.Copy(io.Discard, stdout)
	return cmd, f[3]
}

// cleanEnv is the environment without any GRADFORGE_ setting of the developer's.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRADFORGE_") {
			env = append(env, kv)
		}
	}
	return env
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeHealthAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	cmd, url := startServe(t, dir, nil)
	if code := get(t, url+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code := get(t, url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "gradforge.db")); err != nil {
		t.Fatalf("zero-config serve did not create ./gradforge.db: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want a clean exit", err)
		}
	case <-time.After(time.Second):
		t.Fatal("serve still running one second after SIGTERM")
	}
}

func TestServeOnPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	_, url := startServe(t, t.TempDir(), nil, "--db", dsn)
	if code := get(t, url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz on PostgreSQL = %d", code)
	}
}

func TestConfigPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		wantDB string
	}{
		{"default", nil, nil, "gradforge.db"},
		{"env beats default", []string{"GRADFORGE_DB=env.db"}, nil, "env.db"},
		{"flag beats env", []string{"GRADFORGE_DB=env.db"}, []string{"--db", "flag.db"}, "flag.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin, append([]string{"migrate", "up"}, tc.args...)...)
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(), tc.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("migrate up: %v\n%s", err, out)
			}
			entries, _ := os.ReadDir(dir)
			var dbs []string
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".db") {
					dbs = append(dbs, e.Name())
				}
			}
			if len(dbs) != 1 || dbs[0] != tc.wantDB {
				t.Fatalf("databases created: %v, want [%s]", dbs, tc.wantDB)
			}
		})
	}
}

func TestBadEnvIsAClearError(t *testing.T) {
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), "GRADFORGE_SHUTDOWN_GRACE=soon")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "GRADFORGE_SHUTDOWN_GRACE") {
		t.Fatalf("bad env value: err %v, output %q; want an error naming the variable", err, out)
	}
}

func TestMigrateStatusDown(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("migrate", "up")
	if out := run("migrate", "status"); !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Fatalf("status after up:\n%s", out)
	}
	run("migrate", "down")
	if out := run("migrate", "status"); !strings.Contains(out, "pending") {
		t.Fatalf("status after down shows nothing pending:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, bin, "migrate", "sideways").Run(); err == nil {
		t.Fatal("migrate sideways succeeded; want a usage error")
	}
}
