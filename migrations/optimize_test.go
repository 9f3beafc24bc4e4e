package migrations_test

import (
	"context"
	"testing"

	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// fillScratch makes an indexed table of n rows, as a bulk load would.
func fillScratch(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	for _, q := range []string{
		"CREATE TABLE scratch (id INTEGER PRIMARY KEY, state TEXT NOT NULL)",
		"CREATE INDEX scratch_state ON scratch (state)",
		"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < ?) INSERT INTO scratch (id, state) SELECT i, CASE WHEN i % 10 = 0 THEN 'open' ELSE 'paid' END FROM s",
	} {
		if err := db.Exec(q, n).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// analyzed reports whether sqlite_stat1 holds statistics for the scratch table's index.
func analyzed(t *testing.T, db *gorm.DB) bool {
	t.Helper()
	var n int64
	if err := db.Raw("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").Scan(&n).Error; err != nil || n == 0 {
		return false
	}
	if err := db.Raw("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'scratch' AND idx = 'scratch_state'").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestOptimize(t *testing.T) {
	ctx := context.Background()
	t.Run("a table filled after open gets statistics", func(t *testing.T) {
		db := dbtest.SQLite(t)
		fillScratch(t, db, 5000)
		if analyzed(t, db) {
			t.Fatal("scratch analyzed before Optimize")
		}
		if err := migrations.Optimize(ctx, db); err != nil {
			t.Fatal(err)
		}
		if !analyzed(t, db) {
			t.Fatal("Optimize left scratch without statistics")
		}
	})
	t.Run("open analyzes a table loaded while closed", func(t *testing.T) {
		dsn := dbtest.SQLiteDSN(t)
		db, _, err := migrations.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		fillScratch(t, db, 5000)
		migrations.Close(db)
		db, err = migrations.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer migrations.Close(db)
		if !analyzed(t, db) {
			t.Fatal("Open left scratch without statistics")
		}
	})
	t.Run("postgres is left to autovacuum", func(t *testing.T) {
		if err := migrations.Optimize(ctx, dbtest.Postgres(t)); err != nil {
			t.Fatal(err)
		}
	})
}
