package bot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// DefaultMaxBody is the largest webhook body accepted: GitHub caps payloads at 25 MB.
const DefaultMaxBody = 25 << 20

// ErrNoSecret is returned when the intake is configured without a webhook secret: accepting
// unsigned deliveries would let anyone on the internet drive the bot.
var ErrNoSecret = errors.New("no webhook secret configured: set --webhook-secret (GRADFORGE_WEBHOOK_SECRET); refusing to accept unsigned webhooks")

// Delivery is one webhook delivery as stored.
type Delivery struct {
	ID             string // X-GitHub-Delivery
	Event          string // X-GitHub-Event
	Action         string
	InstallationID int64
	Repo           string // owner/name, "" for events without a repository
	Payload        []byte
}

// Intake is POST /webhooks/github: it checks each delivery, stores it durably exactly once
// and answers only after the store committed, so an acknowledged delivery is never lost.
// Writes are group-committed: deliveries that arrive together share one transaction, which
// is what lets one SQLite file or one PostgreSQL connection absorb bursts.
type Intake struct {
	db      *gorm.DB
	secrets [][]byte
	maxBody int64
	log     *slog.Logger
	queue   chan ack
	wake    func()
}

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	// Secrets are the webhook secrets; a delivery signed with any of them is accepted, so a
	// secret can be rotated by configuring old and new together. At least one, none empty.
	Secrets []string
	// MaxBody caps a request body in bytes (default DefaultMaxBody).
	MaxBody int64
	Log     *slog.Logger
	// Wake is called after deliveries were stored, to wake idle workers (optional).
	Wake func()
}

type ack struct {
	d    Delivery
	done chan ackResult
}

type ackResult struct {
	duplicate bool
	err       error
}

// ParseSecrets splits a comma-separated secret list, trimming spaces, and refuses an empty
// list or an empty member.
func ParseSecrets(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, ErrNoSecret
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("webhook secret list %q has an empty member: %w", "…", ErrNoSecret)
		}
		out = append(out, p)
	}
	return out, nil
}

// NewIntake checks the configuration and starts the group-commit writer, which stops when
// ctx is done.
func NewIntake(ctx context.Context, db *gorm.DB, cfg IntakeConfig) (*Intake, error) {
	if len(cfg.Secrets) == 0 {
		return nil, ErrNoSecret
	}
	in := &Intake{db: db, maxBody: cfg.MaxBody, log: cfg.Log, queue: make(chan ack, 1024), wake: cfg.Wake}
	for _, s := range cfg.Secrets {
		if s == "" {
			return nil, ErrNoSecret
		}
		in.secrets = append(in.secrets, []byte(s))
	}
	if in.maxBody <= 0 {
		in.maxBody = DefaultMaxBody
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	if in.wake == nil {
		in.wake = func() {}
	}
	go in.writer(ctx)
	return in, nil
}

// Routes adds POST /webhooks/github.
func (in *Intake) Routes(r gin.IRouter) { r.POST("/webhooks/github", in.Handle) }

// Sign returns the X-Hub-Signature-256 value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// verify checks a sha256= signature against every secret in constant time per secret.
func (in *Intake) verify(sig string, body []byte) bool {
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	match := false
	for _, s := range in.secrets {
		m := hmac.New(sha256.New, s)
		m.Write(body)
		if hmac.Equal(got, m.Sum(nil)) {
			match = true // no early exit: the time taken does not depend on which secret matched
		}
	}
	return match
}

func refuse(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// Handle is the gin handler for one delivery.
func (in *Intake) Handle(c *gin.Context) {
	r := c.Request
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		refuse(c, http.StatusUnsupportedMediaType, "content type must be application/json (set the webhook's content type to JSON in the App settings)")
		return
	}
	event, id := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	if event == "" || id == "" {
		refuse(c, http.StatusBadRequest, "missing X-GitHub-Event or X-GitHub-Delivery header")
		return
	}
	if len(id) > 100 || len(event) > 100 || strings.ContainsFunc(id+event, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		refuse(c, http.StatusBadRequest, "malformed X-GitHub-Event or X-GitHub-Delivery header")
		return
	}
	sig := r.Header.Get("X-Hub-Signature-256")
	if sig == "" {
		msg := "missing X-Hub-Signature-256"
		if r.Header.Get("X-Hub-Signature") != "" {
			msg = "only a SHA-1 signature (X-Hub-Signature) was sent; SHA-1 is not accepted, X-Hub-Signature-256 is required"
		}
		refuse(c, http.StatusUnauthorized, msg)
		return
	}
	if r.ContentLength > in.maxBody {
		refuse(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", in.maxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, in.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			refuse(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", in.maxBody))
			return
		}
		refuse(c, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if !in.verify(sig, body) {
		in.log.WarnContext(r.Context(), "webhook signature mismatch", "delivery", id, "event", event, "remote", c.ClientIP())
		refuse(c, http.StatusUnauthorized, "signature does not match")
		return
	}
	var head struct {
		Action       string `json:"action"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		refuse(c, http.StatusBadRequest, "body is not a JSON object: "+err.Error())
		return
	}
	if event == "ping" {
		c.JSON(http.StatusOK, gin.H{"status": "pong", "delivery": id})
		return
	}
	d := Delivery{ID: id, Event: event, Action: head.Action, InstallationID: head.Installation.ID, Repo: head.Repository.FullName, Payload: body}
	dup, err := in.Store(r.Context(), d)
	if err != nil {
		in.log.ErrorContext(r.Context(), "store webhook delivery", "delivery", id, "err", err)
		refuse(c, http.StatusServiceUnavailable, "could not store the delivery; redeliver it")
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"delivery": id, "duplicate": dup})
}

// Store durably records a delivery and its job, once per delivery ID; duplicate reports that
// the ID was already stored (and nothing was written).
func (in *Intake) Store(ctx context.Context, d Delivery) (duplicate bool, err error) {
	a := ack{d: d, done: make(chan ackResult, 1)}
	select {
	case in.queue <- a:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case res := <-a.done:
		return res.duplicate, res.err
	case <-ctx.Done():
		// The write may still commit; GitHub's redelivery would then be deduplicated.
		return false, ctx.Err()
	}
}

// writer group-commits queued deliveries until ctx is done.
func (in *Intake) writer(ctx context.Context) {
	const maxBatch = 256
	for {
		var batch []ack
		select {
		case <-ctx.Done():
			return
		case a := <-in.queue:
			batch = append(batch, a)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case a := <-in.queue:
				batch = append(batch, a)
			default:
				break fill
			}
		}
		dups, err := in.write(context.WithoutCancel(ctx), batch)
		for i, a := range batch {
			a.done <- ackResult{duplicate: err == nil && dups[i], err: err}
		}
		if err == nil {
			in.wake()
		}
	}
}

func (in *Intake) write(ctx context.Context, batch []ack) ([]bool, error) {
	dups := make([]bool, len(batch))
	now := time.Now().UTC()
	err := in.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i, a := range batch {
			d := a.d
			res := tx.Exec(`INSERT INTO bot_deliveries (delivery_id, event, action, installation_id, repo, payload, received_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING`,
				d.ID, d.Event, d.Action, d.InstallationID, d.Repo, d.Payload, now)
			if res.Error != nil {
				return fmt.Errorf("insert delivery %s: %w", d.ID, res.Error)
			}
			if res.RowsAffected == 0 {
				dups[i] = true
				continue
			}
			if err := tx.Exec(`INSERT INTO bot_jobs (delivery_id, run_after, updated_at) VALUES (?, ?, ?)`, d.ID, now, now).Error; err != nil {
				return fmt.Errorf("insert job for delivery %s: %w", d.ID, err)
			}
		}
		return nil
	})
	return dups, err
}
