package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/gradforge/gradforge/migrations"
	"github.com/spf13/cobra"
)

const defaultDB = "gradforge.db"

func init() {
	register(func() *cobra.Command {
		var dsn string
		cmd := &cobra.Command{
			Use:   "migrate up|down|status",
			Short: "Apply, roll back or list the database migrations",
			Long: `migrate applies the embedded migrations (up), rolls back the newest applied one (down),
or lists every migration and whether it is applied (status). The same migrations run on
SQLite and PostgreSQL; the DSN picks the database.`,
			Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
			ValidArgs: []string{"up", "down", "status"},
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				db, driver, err := migrations.Connect(ctx, dsn)
				if err != nil {
					return err
				}
				defer migrations.Close(db)
				out := cmd.OutOrStdout()
				switch args[0] {
				case "up":
					applied, err := migrations.Up(ctx, db, driver)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "applied %d migration(s) %v\n", len(applied), applied)
				case "down":
					v, err := migrations.Down(ctx, db, driver)
					if err != nil {
						return err
					}
					if v == 0 {
						fmt.Fprintln(out, "nothing to roll back")
					} else {
						fmt.Fprintf(out, "rolled back %d\n", v)
					}
				case "status":
					st, err := migrations.Status(ctx, db, driver)
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tFILE")
					for _, m := range st {
						state, at := "pending", ""
						if m.Applied {
							state, at = "applied", m.AppliedAt.UTC().Format("2006-01-02 15:04:05")
						}
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Version, state, at, m.File)
					}
					return tw.Flush()
				}
				return nil
			},
		}
		cmd.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
		return envHelp(cmd)
	})
}
