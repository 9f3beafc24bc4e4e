package migrations

import (
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Pool bounds one process's PostgreSQL connections. Every replica of the server and every
// CLI command opens its own pool, so replicas × MaxOpen must stay under the server's
// max_connections (100 by default) with room to spare for tools.
type Pool struct {
	MaxOpen     int           // connections open at once; callers past it wait for one
	MaxIdle     int           // connections kept open while unused
	MaxLifetime time.Duration // a connection is replaced after this long (lets PgBouncer and failovers rebalance)
	MaxIdleTime time.Duration // an unused connection is closed after this long
}

// DefaultPool is the pool a postgres:// DSN gets unless it says otherwise: five replicas
// stay under PostgreSQL's default 100 connections. Held long polls wait in memory, not on a
// connection, so hundreds of runners need no more than this.
var DefaultPool = Pool{MaxOpen: 16, MaxIdle: 8, MaxLifetime: 30 * time.Minute, MaxIdleTime: 5 * time.Minute}

// poolParams are the DSN query parameters that set a Pool, named as pgxpool names them;
// they are taken out of the DSN before it reaches the driver, which would send them to the
// server as settings.
var poolParams = []string{"pool_max_conns", "pool_max_idle_conns", "pool_max_conn_lifetime", "pool_max_conn_idle_time"}

// splitPool reads the pool parameters of a postgres:// DSN, over DefaultPool, and returns
// the DSN without them.
func splitPool(dsn string) (Pool, string, error) {
	p := DefaultPool
	u, err := url.Parse(dsn)
	if err != nil {
		return p, "", fmt.Errorf("parse postgres DSN: %w", err)
	}
	q := u.Query()
	for _, k := range poolParams {
		v := q.Get(k)
		if !q.Has(k) {
			continue
		}
		q.Del(k)
		var perr error
		switch k {
		case "pool_max_conns":
			p.MaxOpen, perr = strconv.Atoi(v)
			if perr == nil && p.MaxOpen < 1 {
				perr = fmt.Errorf("want at least 1")
			}
			p.MaxIdle = min(p.MaxIdle, p.MaxOpen)
		case "pool_max_idle_conns":
			p.MaxIdle, perr = strconv.Atoi(v)
			if perr == nil && p.MaxIdle < 0 {
				perr = fmt.Errorf("want 0 or more")
			}
		case "pool_max_conn_lifetime":
			p.MaxLifetime, perr = time.ParseDuration(v)
		case "pool_max_conn_idle_time":
			p.MaxIdleTime, perr = time.ParseDuration(v)
		}
		if perr != nil {
			return p, "", fmt.Errorf("postgres DSN parameter %s=%q: %w", k, v, perr)
		}
	}
	u.RawQuery = q.Encode()
	return p, u.String(), nil
}

func (p Pool) apply(db *sql.DB) {
	db.SetMaxOpenConns(p.MaxOpen)
	db.SetMaxIdleConns(min(p.MaxIdle, p.MaxOpen))
	db.SetConnMaxLifetime(p.MaxLifetime)
	db.SetConnMaxIdleTime(p.MaxIdleTime)
}
