package runners

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// On PostgreSQL, replicas tell each other about new and requeued jobs with NOTIFY, so a
// runner long-polling one replica gets a job enqueued through another at once rather than
// at its next poll. The payload is "replica|trusted|labels" ("*" for "wake everyone").

const notifyChannel = "gradforge_runner_jobs"

func newReplicaID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// notify tells the other replicas; errors only cost latency, so they are logged.
func (q *Queue) notify(ctx context.Context, trusted bool, labels []string, all bool) {
	if !q.pg {
		return
	}
	payload := fmt.Sprintf("%s|%d|%s", q.replica, b2i(trusted), joinLabels(labels))
	if all {
		payload = q.replica + "|*|"
	}
	if err := q.db.WithContext(ctx).Exec(`SELECT pg_notify(?, ?)`, notifyChannel, payload).Error; err != nil {
		q.Log.WarnContext(ctx, "notify other replicas of a job", "err", err)
	}
}

// listen wakes this replica's held polls on other replicas' notifications until ctx ends,
// reconnecting with backoff when the connection drops.
func (q *Queue) listen(ctx context.Context) {
	sqlDB, err := q.db.DB()
	if err != nil {
		q.Log.ErrorContext(ctx, "listen for jobs from other replicas", "err", err)
		return
	}
	backoff := time.Second
	for ctx.Err() == nil {
		err := q.listenOnce(ctx, sqlDB)
		if ctx.Err() != nil {
			return
		}
		q.Log.WarnContext(ctx, "listening for jobs from other replicas; reconnecting", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(jitter(backoff)):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (q *Queue) listenOnce(ctx context.Context, sqlDB *sql.DB) error {
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T, not pgx", dc)
		}
		pc := c.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
			return fmt.Errorf("%w: listen: %w", driver.ErrBadConn, err)
		}
		// A fresh listener may have missed jobs while it was away: look once.
		q.wakeAll()
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The connection still LISTENs (or is broken): never hand it back to the pool.
				return fmt.Errorf("%w: wait for notification: %w", driver.ErrBadConn, err)
			}
			replica, rest, _ := strings.Cut(n.Payload, "|")
			if replica == q.replica {
				continue // this replica woke its own polls already
			}
			trusted, labels, _ := strings.Cut(rest, "|")
			if trusted == "*" {
				q.wakeAll()
				continue
			}
			q.wake(splitLabels(labels), trusted == "1")
		}
	})
}
