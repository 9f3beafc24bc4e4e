package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

func TestSignatureMatrix(t *testing.T) {
	db := dbtest.SQLite(t)
	srv, _ := intakeServer(t, db, IntakeConfig{Secrets: []string{"old-secret", testSecret}, MaxBody: 4096})
	body := []byte(`{"action":"created","installation":{"id":7},"repository":{"full_name":"o/r"}}`)
	sha1sig := func() string {
		m := hmac.New(sha1.New, []byte(testSecret))
		m.Write(body)
		return "sha1=" + hex.EncodeToString(m.Sum(nil))
	}()
	big := []byte(`{"pad":"` + strings.Repeat("x", 5000) + `"}`)
	for i, tc := range []struct {
		name    string
		body    []byte
		headers map[string]string
		want    int
		stored  bool
	}{
		{"valid signature is stored", body, nil, http.StatusAccepted, true},
		{"rotation: the other configured secret is accepted", body, map[string]string{"X-Hub-Signature-256": Sign("old-secret", body)}, http.StatusAccepted, true},
		{"wrong secret is refused", body, map[string]string{"X-Hub-Signature-256": Sign("guess", body)}, http.StatusUnauthorized, false},
		{"signature of another body is refused", body, map[string]string{"X-Hub-Signature-256": Sign(testSecret, []byte(`{}`))}, http.StatusUnauthorized, false},
		{"malformed hex is refused", body, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, http.StatusUnauthorized, false},
		{"missing signature is refused", body, map[string]string{"X-Hub-Signature-256": ""}, http.StatusUnauthorized, false},
		{"sha1-only signature is refused", body, map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": sha1sig}, http.StatusUnauthorized, false},
		{"sha1 value in the sha256 header is refused", body, map[string]string{"X-Hub-Signature-256": sha1sig}, http.StatusUnauthorized, false},
		{"oversized body is refused", big, map[string]string{"X-Hub-Signature-256": Sign(testSecret, big)}, http.StatusRequestEntityTooLarge, false},
		{"form content type is refused", body, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, false},
		{"missing content type is refused", body, map[string]string{"Content-Type": ""}, http.StatusUnsupportedMediaType, false},
		{"json with charset is fine", body, map[string]string{"Content-Type": "application/json; charset=utf-8"}, http.StatusAccepted, true},
		{"missing event header is refused", body, map[string]string{"X-GitHub-Event": ""}, http.StatusBadRequest, false},
		{"missing delivery header is refused", body, map[string]string{"X-GitHub-Delivery": ""}, http.StatusBadRequest, false},
		{"signed non-JSON body is refused", []byte("not json"), map[string]string{"X-Hub-Signature-256": Sign(testSecret, []byte("not json"))}, http.StatusBadRequest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("delivery-%d", i)
			status, reply := post(t, srv.URL, "issue_comment", id, tc.body, tc.headers)
			if status != tc.want {
				t.Fatalf("status %d (%s), want %d", status, reply, tc.want)
			}
			var n int64
			db.Table("bot_deliveries").Where("delivery_id = ?", id).Count(&n)
			if (n == 1) != tc.stored {
				t.Fatalf("stored = %v, want %v", n == 1, tc.stored)
			}
		})
	}
}

func TestEmptySecretRefused(t *testing.T) {
	db := dbtest.SQLite(t)
	for _, secrets := range [][]string{nil, {}, {""}, {"ok", ""}} {
		if _, err := NewIntake(context.Background(), db, IntakeConfig{Secrets: secrets}); !errors.Is(err, ErrNoSecret) {
			t.Errorf("NewIntake(%q) = %v, want ErrNoSecret", secrets, err)
		}
	}
	for _, s := range []string{"", "  ", "a,,b", "a, "} {
		if _, err := ParseSecrets(s); !errors.Is(err, ErrNoSecret) {
			t.Errorf("ParseSecrets(%q) = %v, want ErrNoSecret", s, err)
		}
	}
	if got, err := ParseSecrets(" new , old "); err != nil || len(got) != 2 || got[0] != "new" || got[1] != "old" {
		t.Errorf("ParseSecrets rotation list = %q, %v", got, err)
	}
}

func TestPingIsAnsweredNotStored(t *testing.T) {
	db := dbtest.SQLite(t)
	srv, _ := intakeServer(t, db, IntakeConfig{})
	body := fixture(t, "ping/payload.json", nil)
	if status, reply := post(t, srv.URL, "ping", "p1", body, nil); status != http.StatusOK || !strings.Contains(reply, "pong") {
		t.Fatalf("ping: %d %s", status, reply)
	}
	if n := countRows(t, db, "bot_deliveries"); n != 0 {
		t.Fatalf("ping stored %d deliveries, want 0", n)
	}
}

func TestDedupe(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		srv, _ := intakeServer(t, db, IntakeConfig{})
		body := fixture(t, "issue_comment/created.with-installation.payload.json", nil)
		status, reply := post(t, srv.URL, "issue_comment", "same-id", body, nil)
		if status != http.StatusAccepted || !strings.Contains(reply, `"duplicate":false`) {
			t.Fatalf("first delivery: %d %s", status, reply)
		}
		status, reply = post(t, srv.URL, "issue_comment", "same-id", body, nil)
		if status != http.StatusAccepted || !strings.Contains(reply, `"duplicate":true`) {
			t.Fatalf("repeated delivery: %d %s, want 202 duplicate", status, reply)
		}
		// A burst of the same delivery at once, in one group commit, still stores one.
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				post(t, srv.URL, "issue_comment", "burst-id", body, nil)
			}()
		}
		wg.Wait()
		if d, j := countRows(t, db, "bot_deliveries"), countRows(t, db, "bot_jobs"); d != 2 || j != 2 {
			t.Fatalf("%d deliveries and %d jobs stored, want 2 and 2", d, j)
		}
		var got Delivery
		db.Raw(`SELECT delivery_id AS id, event, payload FROM bot_deliveries WHERE delivery_id = 'same-id'`).Scan(&got)
		if err := got.ParseHead(); err != nil {
			t.Fatal(err)
		}
		if got.Event != "issue_comment" || got.Action != "created" || got.InstallationID != 1 || got.Repo != "Codertocat/Hello-World" {
			t.Fatalf("stored delivery = %+v", got)
		}
	})
}

// readBody returns exactly the bytes sent whether Content-Length is absent (chunked), exact,
// or a wrong hint, and ackBody is valid JSON for any ID the intake accepts.
func TestReadBodyAndAckBody(t *testing.T) {
	body := bytes.Repeat([]byte(`{"k":"0123456789"}`), 1000)
	for _, hint := range []int64{-1, 0, 1, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 7, 2 << 20} {
		got, err := readBody(iotest.OneByteReader(bytes.NewReader(body)), hint)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("hint %d: %d bytes, %v; want the %d bytes sent", hint, len(got), err, len(body))
		}
		got, err = readBody(bytes.NewReader(body), hint)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("hint %d (whole reads): %d bytes, %v", hint, len(got), err)
		}
	}
	if _, err := readBody(iotest.ErrReader(errors.New("reset")), 10); err == nil {
		t.Error("a read error was swallowed")
	}
	for _, id := range []string{"72d3162e-cc78-11e3-81ab-4c9367dc0958", `a"b\c`, "~!{}"} {
		var got struct {
			Delivery  string `json:"delivery"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(ackBody(id, true), &got); err != nil || got.Delivery != id || !got.Duplicate {
			t.Errorf("ackBody(%q) = %s: %+v %v", id, ackBody(id, true), got, err)
		}
	}
}
