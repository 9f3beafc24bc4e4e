// Command gradforge is the forge's single binary: the web server and GitHub App (serve), the
// runner agent, the gates, the parity suite, benchmarks, migrations and webhook replay.
//
// Every flag can also be set with an environment variable GRADFORGE_<FLAG> (upper case, dashes
// as underscores): --db is GRADFORGE_DB. A flag on the command line beats the environment,
// which beats the default.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commands holds the constructors of the subcommands; each subcommand's file registers its own
// in init, so adding one never edits this file.
var commands []func() *cobra.Command

func register(c func() *cobra.Command) { commands = append(commands, c) }

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gradforge:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:           "gradforge",
		Short:         "A tensor framework and the forge that tests it and pays for it",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error (env GRADFORGE_LOG_LEVEL)")
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

// EnvName is the environment variable that sets a flag.
func EnvName(flag string) string {
	return "GRADFORGE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv fills every flag that was not given on the command line from its environment
// variable, so the precedence is flag, then environment, then default.
func applyEnv(cmd *cobra.Command) error {
	var errs []string
	set := func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", EnvName(f.Name), v, err))
			}
		}
	}
	cmd.Flags().VisitAll(set)
	cmd.InheritedFlags().VisitAll(set)
	if len(errs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// envHelp appends the environment variable to each flag's help text.
func envHelp(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !strings.Contains(f.Usage, "GRADFORGE_") {
			f.Usage += " (env " + EnvName(f.Name) + ")"
		}
	})
	return cmd
}
