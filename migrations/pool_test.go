package migrations

import (
	"strings"
	"testing"
	"time"
)

func TestSplitPool(t *testing.T) {
	const base = "postgres://postgres@127.0.0.1:5432/forge?sslmode=disable"
	for _, tc := range []struct {
		name, query string
		want        Pool
		bad         string
	}{
		{"defaults without parameters", "", DefaultPool, ""},
		{"a smaller cap lowers idle too", "&pool_max_conns=4", Pool{4, 4, DefaultPool.MaxLifetime, DefaultPool.MaxIdleTime}, ""},
		{"every parameter", "&pool_max_conns=50&pool_max_idle_conns=10&pool_max_conn_lifetime=1h&pool_max_conn_idle_time=30s",
			Pool{50, 10, time.Hour, 30 * time.Second}, ""},
		{"zero connections", "&pool_max_conns=0", Pool{}, "pool_max_conns"},
		{"not a number", "&pool_max_idle_conns=many", Pool{}, "pool_max_idle_conns"},
		{"not a duration", "&pool_max_conn_lifetime=10", Pool{}, "pool_max_conn_lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, conn, err := splitPool(base + tc.query)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("splitPool(%q) error %v, want one naming %s", tc.query, err, tc.bad)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("splitPool(%q) = %+v, %v; want %+v", tc.query, got, err, tc.want)
			}
			if strings.Contains(conn, "pool_") || !strings.Contains(conn, "sslmode=disable") {
				t.Errorf("DSN for the driver = %q: want the pool parameters out and the rest kept", conn)
			}
		})
	}
}
