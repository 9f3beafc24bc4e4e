package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// fixturesDir holds the real webhook payloads (octokit/webhooks), shared by every package.
const fixturesDir = "../../shared/fixtures/github-webhooks"

// fixture loads a payload and lets edit derive a variant from it in memory; the file on disk
// is never changed.
func fixture(t testing.TB, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(fixturesDir, name))
	if err != nil {
		if os.Getenv("GRADFORGE_TEST_FIXTURES") == "require" {
			t.Fatalf("fixture %s: %v", name, err)
		}
		t.Skipf("webhook fixtures not found (%v): skipping (set GRADFORGE_TEST_FIXTURES=require to fail)", err)
	}
	var m map[string]any
	if err := json.Unmarshal(src, &m); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// obj walks a decoded payload: obj(m, "issue", "user")["login"].
func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

const testSecret = "s3cret-for-tests"

// intakeServer serves POST /webhooks/github on a loopback port.
func intakeServer(t testing.TB, db *gorm.DB, cfg IntakeConfig) (*httptest.Server, *Intake) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if cfg.Secrets == nil {
		cfg.Secrets = []string{testSecret}
	}
	in, err := NewIntake(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	in.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, in
}

// post sends one delivery; headers override the defaults (a signed JSON delivery).
func post(t testing.TB, url, event, delivery string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", Sign(testSecret, body))
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

func countRows(t testing.TB, db *gorm.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}
