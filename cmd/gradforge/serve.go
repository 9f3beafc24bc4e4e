package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/web"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gorm.io/gorm"
)

// Server is what a part of the forge gets when serve starts: the migrated database, the
// router to add its routes to, and a WaitGroup for background workers, which must return
// once Ctx is done.
type Server struct {
	Ctx     context.Context
	DB      *gorm.DB
	Router  *gin.Engine
	Log     *slog.Logger
	URL     string // the server's own base URL, e.g. http://127.0.0.1:8080
	Workers *sync.WaitGroup
}

// servePart is one part of the forge inside `gradforge serve`: its flags and its start.
type servePart struct {
	name  string
	flags func(fs *pflag.FlagSet)
	start func(s *Server) error
}

var serveParts []servePart

// registerServePart adds a part to serve; each part's file calls it from init.
func registerServePart(p servePart) { serveParts = append(serveParts, p) }

func init() {
	register(func() *cobra.Command {
		var addr, dsn string
		var grace time.Duration
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "Run the forge's web server, GitHub App webhooks and background workers",
			Long: `serve runs the forge. With no configuration it opens ./gradforge.db (SQLite), applies
migrations, listens on 127.0.0.1:8080 and prints its URL. SIGINT or SIGTERM stops it
gracefully: it stops accepting, lets in-flight requests finish, then exits.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return serve(ctx, cmd, addr, dsn, grace)
			},
		}
		cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on, HOST:PORT (port 0 picks a free one)")
		cmd.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
		cmd.Flags().DurationVar(&grace, "shutdown-grace", 10*time.Second, "how long in-flight requests may run after a stop signal")
		for _, p := range serveParts {
			if p.flags != nil {
				p.flags(cmd.Flags())
			}
		}
		return envHelp(cmd)
	})
}

func serve(ctx context.Context, cmd *cobra.Command, addr, dsn string, grace time.Duration) error {
	log := slog.Default()
	db, err := migrations.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer migrations.Close(db)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	url := "http://" + ln.Addr().String()
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	s := &Server{Ctx: workCtx, DB: db, Router: web.NewRouter(db, log), Log: log, URL: url, Workers: &sync.WaitGroup{}}
	s.Workers.Add(1)
	go func() { // Open refreshed the planner's statistics; tables that grow while serving need it again
		defer s.Workers.Done()
		migrations.KeepOptimized(workCtx, db, time.Hour)
	}()
	for _, p := range serveParts {
		if err := p.start(s); err != nil {
			ln.Close()
			cancelWork()
			s.Workers.Wait()
			return fmt.Errorf("start %s: %w", p.name, err)
		}
	}
	srv := &http.Server{Handler: s.Router, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return workCtx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(cmd.OutOrStdout(), "gradforge listening on %s (database %s)\n", url, migrations.DriverOf(db))
	select {
	case err := <-errc:
		cancelWork()
		s.Workers.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = srv.Shutdown(sctx) // in-flight requests finish first
	cancelWork()
	s.Workers.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
