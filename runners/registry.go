package runners

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Token prefixes make leaked secrets recognisable (and greppable by secret scanners).
const (
	registrationPrefix = "gfreg_"
	credentialPrefix   = "gfrun_"
)

// Registration and authentication errors callers branch on.
var (
	ErrBadToken      = errors.New("registration token is unknown, used or expired")
	ErrUnauthorized  = errors.New("runner credential is unknown or revoked")
	ErrRunnerUnknown = errors.New("no such runner")
)

// Registry keeps registration tokens and registered runners. It stores only SHA-256 hashes
// of tokens and credentials: both are 256-bit random values, so a fast hash is enough and a
// database leak gives nobody a usable secret.
type Registry struct {
	db *gorm.DB
}

// NewRegistry returns a Registry on a migrated database.
func NewRegistry(db *gorm.DB) *Registry { return &Registry{db: db} }

// Runner is a registered runner as the dispatch code sees it.
type Runner struct {
	ID             int64
	Name           string
	Labels         []string
	AllowUntrusted bool
}

// Info is what a runner says about itself when it registers and on every poll.
type Info struct {
	Name           string   `json:"name"`
	Labels         []string `json:"labels"`
	Version        string   `json:"version"`
	GPU            string   `json:"gpu"`
	AllowUntrusted bool     `json:"allow_untrusted"`
}

func newSecret(prefix string) (secret, hash string) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	secret = prefix + hex.EncodeToString(b[:])
	return secret, hashSecret(secret)
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// CreateToken makes a one-time registration token that expires after ttl (the CLI's
// `gradforge runner token create` and the web console's maintainer page call it). The token
// itself is returned once and never stored.
func (r *Registry) CreateToken(ctx context.Context, ttl time.Duration, note, createdBy string) (token string, expires time.Time, err error) {
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("create registration token: %w: lifetime %v is not between 0 and 30 days", ErrBadRequest, ttl)
	}
	token, hash := newSecret(registrationPrefix)
	now := time.Now().UTC()
	expires = now.Add(ttl)
	err = r.db.WithContext(ctx).Exec(`INSERT INTO runner_registration_tokens (token_hash, note, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, hash, note, createdBy, now, expires).Error
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create registration token: %w", err)
	}
	return token, expires, nil
}

// Register trades a registration token for a runner credential. The token is spent in the
// same transaction that creates the runner, so two registrations racing on one token
// yield one runner.
func (r *Registry) Register(ctx context.Context, token string, info Info) (Runner, string, error) {
	info.Name = strings.TrimSpace(info.Name)
	if info.Name == "" || len(info.Name) > 100 {
		return Runner{}, "", fmt.Errorf("register runner: %w: name must be 1 to 100 characters", ErrBadRequest)
	}
	labels, err := normLabels(info.Labels)
	if err != nil {
		return Runner{}, "", fmt.Errorf("register runner: %w: %w", ErrBadRequest, err)
	}
	cred, credHash := newSecret(credentialPrefix)
	now := time.Now().UTC()
	var id int64
	err = r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		spend := tx.Exec(`UPDATE runner_registration_tokens SET used_at = ?
			WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`, now, hashSecret(token), now)
		if spend.Error != nil {
			return spend.Error
		}
		if spend.RowsAffected != 1 {
			return ErrBadToken
		}
		var ids []int64
		if err := tx.Raw(`INSERT INTO runners (name, credential_hash, labels, version, gpu, allow_untrusted, created_at, last_seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, info.Name, credHash, joinLabels(labels), info.Version, info.GPU,
			b2i(info.AllowUntrusted), now, now).Scan(&ids).Error; err != nil {
			return err
		}
		id = ids[0]
		return tx.Exec(`UPDATE runner_registration_tokens SET runner_id = ? WHERE token_hash = ?`, id, hashSecret(token)).Error
	})
	if err != nil {
		return Runner{}, "", fmt.Errorf("register runner %q: %w", info.Name, err)
	}
	return Runner{ID: id, Name: info.Name, Labels: labels, AllowUntrusted: info.AllowUntrusted}, cred, nil
}

// Authenticate finds the runner a credential belongs to, refusing revoked ones.
func (r *Registry) Authenticate(ctx context.Context, credential string) (Runner, error) {
	if !strings.HasPrefix(credential, credentialPrefix) {
		return Runner{}, ErrUnauthorized
	}
	var rows []struct {
		ID             int64
		Name           string
		Labels         string
		AllowUntrusted int
	}
	err := r.db.WithContext(ctx).Raw(`SELECT id, name, labels, allow_untrusted FROM runners
		WHERE credential_hash = ? AND revoked_at IS NULL`, hashSecret(credential)).Scan(&rows).Error
	if err != nil {
		return Runner{}, fmt.Errorf("authenticate runner: %w", err)
	}
	if len(rows) == 0 {
		return Runner{}, ErrUnauthorized
	}
	x := rows[0]
	return Runner{ID: x.ID, Name: x.Name, Labels: splitLabels(x.Labels), AllowUntrusted: x.AllowUntrusted == 1}, nil
}

// Seen records that a runner called in, with what it now says about itself (its labels,
// version and GPU may change between restarts), and returns the runner as updated.
func (r *Registry) Seen(ctx context.Context, rn Runner, info Info) (Runner, error) {
	labels, err := normLabels(info.Labels)
	if err != nil {
		return rn, fmt.Errorf("runner %d: %w: %w", rn.ID, ErrBadRequest, err)
	}
	err = r.db.WithContext(ctx).Exec(`UPDATE runners SET last_seen_at = ?, labels = ?, version = ?, gpu = ?, allow_untrusted = ?
		WHERE id = ?`, time.Now().UTC(), joinLabels(labels), info.Version, info.GPU, b2i(info.AllowUntrusted), rn.ID).Error
	if err != nil {
		return rn, fmt.Errorf("runner %d seen: %w", rn.ID, err)
	}
	rn.Labels, rn.AllowUntrusted = labels, info.AllowUntrusted
	return rn, nil
}

// Touch records that a runner is alive without changing what it says about itself, so a
// runner busy with a long job still shows as seen.
func (r *Registry) Touch(ctx context.Context, id int64) error {
	now := time.Now().UTC()
	// At most one write per runner every 15 s: heartbeats come every few seconds.
	if err := r.db.WithContext(ctx).Exec(`UPDATE runners SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)`,
		now, id, now.Add(-15*time.Second)).Error; err != nil {
		return fmt.Errorf("runner %d seen: %w", id, err)
	}
	return nil
}

// Revoke disables a runner's credential at once; its held jobs return to the queue when
// their leases lapse.
func (r *Registry) Revoke(ctx context.Context, id int64) error {
	res := r.db.WithContext(ctx).Exec(`UPDATE runners SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, time.Now().UTC(), id)
	if res.Error != nil {
		return fmt.Errorf("revoke runner %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := r.db.WithContext(ctx).Raw(`SELECT count(*) FROM runners WHERE id = ?`, id).Scan(&n).Error; err != nil {
			return fmt.Errorf("revoke runner %d: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("revoke runner %d: %w", id, ErrRunnerUnknown)
		}
	}
	return nil
}

// Status is a runner as the web app and `gradforge runner list` show it.
type Status struct {
	ID             int64
	Name           string
	Labels         []string
	Version        string
	GPU            string
	AllowUntrusted bool
	CreatedAt      time.Time
	LastSeen       time.Time
	Revoked        bool
	// Busy runners hold a job: JobID is the job.
	Busy  bool
	JobID int64
}

// Online reports whether the runner called in recently enough to be polling now (a long
// poll lasts at most 30 s).
func (s Status) Online(now time.Time) bool {
	return !s.Revoked && now.Sub(s.LastSeen) < 90*time.Second
}

// List returns every registered runner with whether it is busy, newest last.
func (r *Registry) List(ctx context.Context) ([]Status, error) {
	out, err := r.statuses(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list runners: %w", err)
	}
	return out, nil
}

// Get returns one registered runner, revoked or not, or ErrRunnerUnknown.
func (r *Registry) Get(ctx context.Context, id int64) (Status, error) {
	out, err := r.statuses(ctx, "WHERE r.id = ?", id)
	if err != nil {
		return Status{}, fmt.Errorf("get runner %d: %w", id, err)
	}
	if len(out) == 0 {
		return Status{}, fmt.Errorf("get runner %d: %w", id, ErrRunnerUnknown)
	}
	return out[0], nil
}

// statuses reads the runners a WHERE clause (or "" for all) selects, by id.
func (r *Registry) statuses(ctx context.Context, where string, args ...any) ([]Status, error) {
	var rows []struct {
		ID             int64
		Name           string
		Labels         string
		Version        string
		GPU            string `gorm:"column:gpu"`
		AllowUntrusted int
		CreatedAt      time.Time
		LastSeenAt     *time.Time
		RevokedAt      *time.Time
		JobID          *int64
	}
	err := r.db.WithContext(ctx).Raw(`SELECT r.id, r.name, r.labels, r.version, r.gpu, r.allow_untrusted, r.created_at,
		r.last_seen_at, r.revoked_at,
		(SELECT max(j.id) FROM runner_jobs j WHERE j.runner_id = r.id AND j.state = 'running') AS job_id
		FROM runners r `+where+` ORDER BY r.id`, args...).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(rows))
	for i, x := range rows {
		s := Status{ID: x.ID, Name: x.Name, Labels: splitLabels(x.Labels), Version: x.Version, GPU: x.GPU,
			AllowUntrusted: x.AllowUntrusted == 1, CreatedAt: x.CreatedAt, Revoked: x.RevokedAt != nil}
		if x.LastSeenAt != nil {
			s.LastSeen = *x.LastSeenAt
		}
		if x.JobID != nil {
			s.Busy, s.JobID = true, *x.JobID
		}
		out[i] = s
	}
	return out, nil
}
