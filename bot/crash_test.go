package bot

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
)

// TestMain doubles as a real webhook server process for the crash test: with
// GRADFORGE_BOT_CHILD set, the test binary serves intake and workers on the database in
// GRADFORGE_BOT_CHILD_DB until it is killed.
func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	if os.Getenv("GRADFORGE_BOT_CHILD") == "1" {
		if err := childServer(); err != nil {
			fmt.Fprintln(os.Stderr, "child server:", err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

func childServer() error {
	ctx := context.Background()
	db, err := migrations.Open(ctx, os.Getenv("GRADFORGE_BOT_CHILD_DB"))
	if err != nil {
		return err
	}
	clients, err := NewStatic(os.Getenv("GRADFORGE_BOT_CHILD_GITHUB"), "")
	if err != nil {
		return err
	}
	b := &Bot{DB: db, Clients: clients, Login: "gradforge[bot]"}
	w := &Workers{DB: db, Handler: b.Handle, Poll: 20 * time.Millisecond, Lease: time.Second}
	in, err := NewIntake(ctx, db, IntakeConfig{Secrets: []string{testSecret}, Wake: w.Wake})
	if err != nil {
		return err
	}
	r := gin.New()
	in.Routes(r)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if d, _ := time.ParseDuration(os.Getenv("GRADFORGE_BOT_CHILD_WORKER_DELAY")); d > 0 {
		go func() { time.Sleep(d); w.Run(ctx) }()
	} else {
		go w.Run(ctx)
	}
	fmt.Printf("READY http://%s\n", ln.Addr())
	return http.Serve(ln, r)
}

// startChild runs the server process and returns its URL.
func startChild(t *testing.T, dsn, github, workerDelay string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GRADFORGE_BOT_CHILD=1", "GRADFORGE_BOT_CHILD_DB="+dsn,
		"GRADFORGE_BOT_CHILD_GITHUB="+github, "GRADFORGE_BOT_CHILD_WORKER_DELAY="+workerDelay)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- u
			}
		}
	}()
	select {
	case u := <-ready:
		return cmd, u
	case <-time.After(60 * time.Second):
		t.Fatal("child server did not start within 60s")
	}
	return nil, ""
}

// TestAckedDeliverySurvivesKill acknowledges a delivery, kills the server with SIGKILL before
// any worker ran it, restarts the server, and checks the command was carried out once.
func TestAckedDeliverySurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": dbtest.SQLiteDSN, "postgres": dbtest.PostgresDSN} {
		t.Run(name, func(t *testing.T) {
			dsn := dsn(t)
			gh := githubtest.New(t)
			gh.SetPermission(repo, "maint", "write")
			first, url := startChild(t, dsn, gh.URL, "1h") // workers never start in the first life
			body := comment(t, "maint", "/label survived-kill", false)
			status, reply := post(t, url, "issue_comment", "crash-1", body, nil)
			if status != http.StatusAccepted {
				t.Fatalf("ack: %d %s", status, reply)
			}
			if err := first.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			first.Wait()
			if n := len(gh.Calls("POST", "/repos/"+repo+"/issues/1/labels")); n != 0 {
				t.Fatalf("label applied before the kill (%d calls): the test proves nothing", n)
			}
			_, url = startChild(t, dsn, gh.URL, "")
			deadline := time.Now().Add(30 * time.Second)
			for len(gh.Labels(repo, 1)) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if l := gh.Labels(repo, 1); len(l) != 1 || l[0] != "survived-kill" {
				t.Fatalf("after restart labels = %q, want [survived-kill]", l)
			}
			// The same delivery again after the restart is a duplicate and changes nothing.
			status, reply = post(t, url, "issue_comment", "crash-1", body, nil)
			if status != http.StatusAccepted || !strings.Contains(reply, `"duplicate":true`) {
				t.Fatalf("redelivery after restart: %d %s", status, reply)
			}
			time.Sleep(100 * time.Millisecond)
			if n := len(gh.Calls("POST", "/repos/"+repo+"/issues/1/labels")); n != 1 {
				t.Fatalf("label added %d times, want once", n)
			}
		})
	}
}
