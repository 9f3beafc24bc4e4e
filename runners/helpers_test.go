package runners

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// TestMain doubles as a runner process: with GRADFORGE_TEST_AGENT_URL set, the test binary
// runs an Agent instead of the tests, so end-to-end tests start real runner processes they
// can kill -9.
func TestMain(m *testing.M) {
	if url := os.Getenv("GRADFORGE_TEST_AGENT_URL"); url != "" {
		labels, _ := ParseLabels(os.Getenv("GRADFORGE_TEST_AGENT_LABELS"))
		a := &Agent{
			Client:    &Client{URL: url, Credential: os.Getenv("GRADFORGE_TEST_AGENT_CRED")},
			Info:      Info{Name: os.Getenv("GRADFORGE_TEST_AGENT_NAME"), Labels: labels, Version: "test", AllowUntrusted: os.Getenv("GRADFORGE_TEST_AGENT_UNTRUSTED") == "1"},
			WorkDir:   os.Getenv("GRADFORGE_TEST_AGENT_WORKDIR"),
			KillGrace: 500 * time.Millisecond,
			Wait:      5 * time.Second,
			LogEvery:  50 * time.Millisecond,
			Hide:      filepath.SplitList(os.Getenv("GRADFORGE_TEST_AGENT_HIDE")),
			Log:       slog.New(slog.NewTextHandler(os.Stderr, nil)),
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := a.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "agent:", err)
			os.Exit(1)
		}
		stop()
		os.Exit(0)
	}
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// forge is a dispatch server on loopback for tests.
type forge struct {
	q       *Queue
	reg     *Registry
	url     string
	results *recorder
}

// newForge starts the runner API on a test server with short leases, so lapsed leases are
// noticed in about a second and a half.
func newForge(t *testing.T, db *gorm.DB) *forge { return newForgeTB(t, db) }

func newForgeTB(t testing.TB, db *gorm.DB) *forge {
	t.Helper()
	q := NewQueue(db)
	q.Lease, q.HeartbeatEvery, q.Poll, q.Hold = 1500*time.Millisecond, 250*time.Millisecond, 200*time.Millisecond, 5*time.Second
	q.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := &recorder{got: map[int64]int{}, ch: make(chan Job, 2000)}
	q.SetResults(rec)
	reg := NewRegistry(db)
	r := gin.New()
	(&API{Queue: q, Registry: reg}).Routes(r)
	srv := httptest.NewServer(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx, 200*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return &forge{q: q, reg: reg, url: srv.URL, results: rec}
}

// register makes a runner through the real registration flow and returns its credential.
func (f *forge) register(t *testing.T, name string, labels ...string) (int64, string) {
	return f.registerTB(t, name, labels...)
}

func (f *forge) registerTB(t testing.TB, name string, labels ...string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	tok, _, err := f.reg.CreateToken(ctx, time.Minute, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	id, cred, err := Register(ctx, f.url, tok, Info{Name: name, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	return id, cred
}

// recorder is a Results that remembers every delivery.
type recorder struct {
	mu  sync.Mutex
	got map[int64]int
	ch  chan Job
}

func (r *recorder) JobFinished(_ context.Context, j Job, _ Result) error {
	r.mu.Lock()
	r.got[j.ID]++
	r.mu.Unlock()
	r.ch <- j
	return nil
}

// wait returns the delivered job with id, failing after timeout.
func (r *recorder) wait(t *testing.T, id int64, timeout time.Duration) Job {
	t.Helper()
	deadline := time.After(timeout)
	var others []Job
	defer func() {
		for _, j := range others {
			r.ch <- j
		}
	}()
	for {
		select {
		case j := <-r.ch:
			if j.ID == id {
				return j
			}
			others = append(others, j)
		case <-deadline:
			t.Fatalf("job %d not delivered within %v", id, timeout)
		}
	}
}

// source is a git repository in t.TempDir() served over smart HTTP by git http-backend,
// answering only requests that carry a clone token the forge minted for a job.
type source struct {
	url        string
	head, base string // commits: base on main, head one commit later
	mu         sync.Mutex
	tokens     map[string]bool
	minted     []string
}

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func newSource(t *testing.T) *source {
	t.Helper()
	root := t.TempDir()
	repo := filepath.Join(root, "repo.git")
	work := filepath.Join(root, "work")
	os.MkdirAll(work, 0o755)
	gitRun(t, root, "init", "-q", "--bare", "-b", "main", repo)
	gitRun(t, repo, "config", "uploadpack.allowAnySHA1InWant", "true")
	gitRun(t, root, "clone", "-q", repo, work)
	os.WriteFile(filepath.Join(work, "base.txt"), []byte("base\n"), 0o644)
	gitRun(t, work, "add", ".")
	gitRun(t, work, "commit", "-q", "-m", "base")
	gitRun(t, work, "push", "-q", "origin", "HEAD:main")
	base := gitRun(t, work, "rev-parse", "HEAD")
	os.WriteFile(filepath.Join(work, "head.txt"), []byte("head\n"), 0o644)
	gitRun(t, work, "add", ".")
	gitRun(t, work, "commit", "-q", "-m", "head")
	gitRun(t, work, "push", "-q", "origin", "HEAD:refs/pull/1/head")
	head := gitRun(t, work, "rev-parse", "HEAD")

	s := &source{head: head, base: base, tokens: map[string]bool{}}
	backend := &cgi.Handler{Path: "/usr/lib/git-core/git-http-backend", Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		s.mu.Lock()
		valid := ok && user == "x-access-token" && s.tokens[pass]
		s.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "clone token required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/repo.git"
	return s
}

// CloneToken mints a token the source accepts, as a GitHub installation token would be.
func (s *source) CloneToken(_ context.Context, _ Job) (string, error) {
	var b [16]byte
	rand.Read(b[:])
	tok := "ghs_" + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.tokens[tok] = true
	s.minted = append(s.minted, tok)
	s.mu.Unlock()
	return tok, nil
}

// secrets are every token minted so far, raw and in their basic-auth form.
func (s *source) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, t := range s.minted {
		out = append(out, t, base64.StdEncoding.EncodeToString([]byte("x-access-token:"+t)))
	}
	return out
}

// runnerProc is a runner running as its own process (the test binary in agent mode).
type runnerProc struct {
	name string
	id   int64
	cmd  *exec.Cmd
	log  *os.File
}

// startRunner starts a runner process; hide is a folder sandboxed jobs must not see.
func startRunner(t *testing.T, f *forge, name string, untrusted bool, hide string, labels ...string) *runnerProc {
	t.Helper()
	id, cred := f.register(t, name, labels...)
	work := filepath.Join(t.TempDir(), "work")
	// Untrusted jobs run as nobody, who must be able to reach the workspace.
	for d := work; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.MkdirAll(d, 0o755)
		os.Chmod(d, 0o755)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	u := "0"
	if untrusted {
		u = "1"
	}
	cmd.Env = append(os.Environ(), "GRADFORGE_TEST_AGENT_URL="+f.url, "GRADFORGE_TEST_AGENT_CRED="+cred,
		"GRADFORGE_TEST_AGENT_LABELS="+strings.Join(labels, ","), "GRADFORGE_TEST_AGENT_NAME="+name,
		"GRADFORGE_TEST_AGENT_WORKDIR="+work, "GRADFORGE_TEST_AGENT_UNTRUSTED="+u, "GRADFORGE_TEST_AGENT_HIDE="+hide)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &runnerProc{name: name, id: id, cmd: cmd, log: logf}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("runner %s log:\n%s", name, b)
		}
	})
	return p
}

// stop sends SIGTERM, a graceful stop, and waits for the process to exit.
func (p *runnerProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runner %s after SIGTERM: %v", p.name, err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("runner %s still running 15 s after SIGTERM", p.name)
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *runnerProc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// logText is a job attempt's whole stored log.
func logText(t *testing.T, q *Queue, id int64, attempt int) string {
	t.Helper()
	chunks, err := q.Logs(context.Background(), id, attempt, -1)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, c := range chunks {
		if c.Seq != i {
			t.Fatalf("job %d log chunks out of order or missing: chunk %d has seq %d", id, i, c.Seq)
		}
		b.Write(c.Data)
	}
	return b.String()
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
