// Package dbtest gives tests a fresh, migrated database of each kind: a SQLite file in the
// test's temporary folder and a new PostgreSQL database on the local server, dropped after.
//
// PostgreSQL tests run whenever the server answers. When it does not they skip with one line
// saying so, unless GRADFORGE_TEST_POSTGRES=require, in which case they fail.
// GRADFORGE_TEST_POSTGRES_URL points at another server (default: the local trust-auth one).
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations"
	"gorm.io/gorm"
)

// DefaultPostgresURL is the local development and CI server.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func adminURL() string {
	if u := os.Getenv("GRADFORGE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

var (
	pingOnce sync.Once
	pingErr  error
)

// SQLiteDSN returns the DSN of a new, empty SQLite file that lives as long as the test.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "gradforge.db")
}

// SQLite returns a migrated database in a new SQLite file.
func SQLite(t testing.TB) *gorm.DB {
	t.Helper()
	return open(t, SQLiteDSN(t))
}

// PostgresDSN creates a new, empty PostgreSQL database, drops it when the test ends, and
// returns its DSN. It skips or fails the test when no server answers (see the package doc).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := adminURL()
	pingOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var db *gorm.DB
		if db, _, pingErr = migrations.Connect(ctx, admin); pingErr == nil {
			migrations.Close(db)
		}
	})
	if pingErr != nil {
		msg := fmt.Sprintf("PostgreSQL at %s does not answer (%v)", admin, pingErr)
		if os.Getenv("GRADFORGE_TEST_POSTGRES") == "require" {
			t.Fatalf("%s and GRADFORGE_TEST_POSTGRES=require", msg)
		}
		t.Skipf("%s: skipping PostgreSQL test (set GRADFORGE_TEST_POSTGRES=require to fail instead)", msg)
	}
	ctx := context.Background()
	db, _, err := migrations.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer migrations.Close(db)
	var b [6]byte
	rand.Read(b[:])
	name := "gf_test_" + hex.EncodeToString(b[:])
	if err := db.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, _, err := migrations.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("connect to drop %s: %v", name, err)
			return
		}
		defer migrations.Close(db)
		if err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", admin, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres returns a migrated database in a new PostgreSQL database.
func Postgres(t testing.TB) *gorm.DB {
	t.Helper()
	return open(t, PostgresDSN(t))
}

// Each runs fn as two subtests, "sqlite" and "postgres", each with its own fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

func open(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := migrations.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { migrations.Close(db) })
	return db
}
