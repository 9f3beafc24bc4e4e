package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
)

func TestUpDownUp(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": dbtest.SQLiteDSN, "postgres": dbtest.PostgresDSN} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, driver, err := migrations.Connect(ctx, dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			defer migrations.Close(db)
			if string(driver) != name {
				t.Fatalf("driver = %s, want %s", driver, name)
			}
			applied, err := migrations.Up(ctx, db, driver)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) == 0 {
				t.Fatal("first Up applied nothing")
			}
			again, err := migrations.Up(ctx, db, driver)
			if err != nil || len(again) != 0 {
				t.Fatalf("second Up applied %v, err %v; want nothing", again, err)
			}
			if err := db.Exec("INSERT INTO settings (key, value) VALUES ('k', 'v')").Error; err != nil {
				t.Fatalf("settings table missing after Up: %v", err)
			}
			if err := migrations.DownAll(ctx, db, driver); err != nil {
				t.Fatal(err)
			}
			st, err := migrations.Status(ctx, db, driver)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range st {
				if m.Applied {
					t.Errorf("migration %d still applied after DownAll", m.Version)
				}
			}
			if db.Migrator().HasTable("settings") {
				t.Error("settings table survives DownAll")
			}
			reapplied, err := migrations.Up(ctx, db, driver)
			if err != nil {
				t.Fatal(err)
			}
			if len(reapplied) != len(applied) {
				t.Fatalf("Up after DownAll applied %d migrations, want %d", len(reapplied), len(applied))
			}
			st, _ = migrations.Status(ctx, db, driver)
			for _, m := range st {
				if !m.Applied {
					t.Errorf("migration %d not applied after re-Up", m.Version)
				}
			}
		})
	}
}

func TestDownOneAtATime(t *testing.T) {
	ctx := context.Background()
	db := dbtest.SQLite(t)
	st, err := migrations.Status(ctx, db, migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(st) - 1; i >= 0; i-- {
		v, err := migrations.Down(ctx, db, migrations.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		if v != st[i].Version {
			t.Fatalf("Down rolled back %d, want %d", v, st[i].Version)
		}
	}
	if v, err := migrations.Down(ctx, db, migrations.SQLite); err != nil || v != 0 {
		t.Fatalf("Down on an empty schema = %d, %v; want 0, nil", v, err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		dsn    string
		driver migrations.Driver
		bad    bool
	}{
		{"gradforge.db", migrations.SQLite, false},
		{"sqlite:///tmp/x.db", migrations.SQLite, false},
		{"file:x.db?cache=shared", migrations.SQLite, false},
		{"postgres://u@h/db", migrations.Postgres, false},
		{"postgresql://u@h/db", migrations.Postgres, false},
		{"", "", true},
		{"mysql://u@h/db", "", true},
		{"sqlite://", "", true},
	} {
		d, _, err := migrations.Parse(tc.dsn)
		if (err != nil) != tc.bad || d != tc.driver {
			t.Errorf("Parse(%q) = %q, %v; want %q, error %v", tc.dsn, d, err, tc.driver, tc.bad)
		}
	}
}

// TestOpenCapsPostgresPool opens a pool capped at 3 and runs 30 queries at once: they all
// finish, and PostgreSQL never sees more than 3 of the pool's connections.
func TestOpenCapsPostgresPool(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.PostgresDSN(t)
	db, err := migrations.Open(ctx, dsn+"&pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	defer migrations.Close(db)
	sqlDB, _ := db.DB()
	if got := sqlDB.Stats().MaxOpenConnections; got != 3 {
		t.Fatalf("MaxOpenConnections = %d, want 3", got)
	}
	watch, _, err := migrations.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer migrations.Close(watch)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.Exec("SELECT pg_sleep(0.05)").Error
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	peak := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		var n int
		if err := watch.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		peak = max(peak, n)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if peak > 3 || peak == 0 {
		t.Errorf("PostgreSQL saw up to %d connections from a pool capped at 3 (0 means the watch saw none)", peak)
	}
}
