package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

//go:embed sql/*.sql
var embedded embed.FS

// Driver names the database a DSN selects.
type Driver string

const (
	SQLite   Driver = "sqlite"
	Postgres Driver = "postgres"
)

// Parse tells which driver a DSN selects and returns the DSN that driver expects.
// postgres:// and postgresql:// URLs select PostgreSQL, and may bound the connection pool
// with pool_max_conns, pool_max_idle_conns, pool_max_conn_lifetime and
// pool_max_conn_idle_time (see Pool; DefaultPool otherwise); sqlite://PATH, file:PATH and plain
// paths select SQLite, opened in WAL mode with a busy timeout, foreign keys on, and
// immediate write transactions so concurrent writers queue instead of failing.
func Parse(dsn string) (Driver, string, error) {
	switch {
	case dsn == "":
		return "", "", errors.New("empty database DSN: give a file path, sqlite://PATH or postgres://…")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		_, conn, err := splitPool(dsn)
		if err != nil {
			return "", "", err
		}
		return Postgres, conn, nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "file:")
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if path == "" {
		return "", "", fmt.Errorf("sqlite DSN %q names no file", dsn)
	}
	if strings.Contains(dsn, "://") && !strings.HasPrefix(dsn, "sqlite://") {
		return "", "", fmt.Errorf("unknown database scheme in %q: use sqlite:// or postgres://", dsn)
	}
	params := []string{"_pragma=busy_timeout(10000)", "_pragma=journal_mode(WAL)", "_pragma=foreign_keys(1)", "_pragma=synchronous(NORMAL)", "_txlock=immediate"}
	if query != "" {
		params = append(params, query)
	}
	return SQLite, "file:" + path + "?" + strings.Join(params, "&"), nil
}

// Connect opens the database a DSN names without touching its schema.
func Connect(ctx context.Context, dsn string) (*gorm.DB, Driver, error) {
	driver, conn, err := Parse(dsn)
	if err != nil {
		return nil, "", err
	}
	cfg := &gorm.Config{Logger: logger.Discard, NowFunc: func() time.Time { return time.Now().UTC() }}
	var db *gorm.DB
	if driver == Postgres {
		db, err = gorm.Open(postgres.Open(conn), cfg)
	} else {
		db, err = gorm.Open(sqlite.Open(conn), cfg)
	}
	if err != nil {
		return nil, "", fmt.Errorf("open %s database: %w", driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, "", fmt.Errorf("open %s database: %w", driver, err)
	}
	if driver == SQLite {
		// One writer at a time is SQLite's rule; a small pool keeps readers concurrent under WAL.
		sqlDB.SetMaxOpenConns(4)
	} else {
		pool, _, _ := splitPool(dsn) // Parse has checked it
		pool.apply(sqlDB)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, "", fmt.Errorf("ping %s database: %w", driver, err)
	}
	return db, driver, nil
}

// Open connects to the database a DSN names, applies every pending migration and refreshes
// stale planner statistics (Optimize), so the *gorm.DB it returns is ready for use.
func Open(ctx context.Context, dsn string) (*gorm.DB, error) {
	db, driver, err := Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if _, err := Up(ctx, db, driver); err != nil {
		Close(db)
		return nil, err
	}
	if err := Optimize(ctx, db); err != nil {
		Close(db)
		return nil, err
	}
	return db, nil
}

// Close closes the connection pool under db.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// DriverOf reports which database db talks to.
func DriverOf(db *gorm.DB) Driver {
	if db.Dialector.Name() == "postgres" {
		return Postgres
	}
	return SQLite
}

func provider(db *gorm.DB, driver Driver) (*goose.Provider, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(embedded, "sql")
	if err != nil {
		return nil, err
	}
	// Versions come from per-package ranges, so a later package's migration may carry a lower
	// number than one already applied.
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true), goose.WithDisableGlobalRegistry(true)}
	dialect := goose.DialectSQLite3
	if driver == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker)) // replicas starting together migrate once
	}
	return goose.NewProvider(dialect, sqlDB, dialectFS{FS: sub, postgres: driver == Postgres}, opts...)
}

// Up applies every pending migration and returns the versions it applied.
func Up(ctx context.Context, db *gorm.DB, driver Driver) ([]int64, error) {
	p, err := provider(db, driver)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate up: %w", err)
	}
	var applied []int64
	for _, r := range res {
		applied = append(applied, r.Source.Version)
		slog.DebugContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return applied, nil
}

// Down rolls back the newest applied migration and returns its version, or 0 when none was.
func Down(ctx context.Context, db *gorm.DB, driver Driver) (int64, error) {
	p, err := provider(db, driver)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("migrate down: %w", err)
	}
	return res.Source.Version, nil
}

// DownAll rolls back every applied migration.
func DownAll(ctx context.Context, db *gorm.DB, driver Driver) error {
	p, err := provider(db, driver)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		return fmt.Errorf("migrate down to 0: %w", err)
	}
	return nil
}

// Migration is one migration's state in a database.
type Migration struct {
	Version   int64
	File      string
	Applied   bool
	AppliedAt time.Time
}

// Status lists every known migration and whether it is applied.
func Status(ctx context.Context, db *gorm.DB, driver Driver) ([]Migration, error) {
	p, err := provider(db, driver)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]Migration, len(st))
	for i, s := range st {
		out[i] = Migration{Version: s.Source.Version, File: s.Source.Path, Applied: s.State == goose.StateApplied, AppliedAt: s.AppliedAt}
	}
	return out, nil
}

// Ping checks that the database answers, for readiness probes.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}
