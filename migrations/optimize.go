package migrations

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
)

// analysisLimit bounds the rows SQLite's ANALYZE reads per index, so keeping statistics
// fresh costs milliseconds however large the database grows (SQLite suggests 100 to 1000).
const analysisLimit = 1000

// Optimize keeps the query planner's statistics fresh. On SQLite it runs PRAGMA optimize
// over every table, not only those the connection has used (the 0x10000 flag; a pooled
// connection sees a fraction of the queries), which analyzes a table never analyzed or one
// whose size changed many times over since, and does nothing otherwise. PostgreSQL's
// autovacuum analyzes a table once a tenth of its rows have changed, so there it does nothing.
func Optimize(ctx context.Context, db *gorm.DB) error {
	if DriverOf(db) != SQLite {
		return nil
	}
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	conn, err := sqlDB.Conn(ctx) // analysis_limit is per connection: set it on the one that analyzes
	if err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA analysis_limit=%d", analysisLimit)); err != nil {
		return fmt.Errorf("optimize: set analysis_limit: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA optimize=0x10002"); err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	return nil
}

// KeepOptimized runs Optimize every interval until ctx ends, as SQLite recommends for
// long-lived processes: tables that grow while the server runs get statistics without a restart.
func KeepOptimized(ctx context.Context, db *gorm.DB, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := Optimize(ctx, db); err != nil && ctx.Err() == nil {
				slog.WarnContext(ctx, "planner statistics not refreshed", "err", err)
			}
		}
	}
}
