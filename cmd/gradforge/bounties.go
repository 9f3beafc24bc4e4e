package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/gradforge/gradforge/bounties"
	"github.com/gradforge/gradforge/migrations"
	"github.com/spf13/cobra"
)

// `gradforge bounties audit|ledger` lets an operator prove where every cent is without the
// server running.
func init() {
	register(func() *cobra.Command {
		var dsn, prefix, stripeKey, stripeURL string
		var limit, auditLimit int
		cmd := &cobra.Command{Use: "bounties", Short: "Audit the bounties ledger"}
		audit := &cobra.Command{
			Use:   "audit",
			Short: "Check that every ledger transaction sums to zero and money states agree with the ledger",
			Long: `audit checks the bounties ledger: every transaction's rows sum to zero, every paid payout
and every funded pledge has its ledger transaction, and no pool or payable balance is negative.
It prints the balances of the platform and of every pool with money, and exits non-zero when
anything is wrong. With --stripe-key it also compares the newest paid payouts with Stripe's
record of their transfers (amount, destination, reversals) and lists payouts stuck in flight.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				db, err := migrations.Open(ctx, dsn)
				if err != nil {
					return err
				}
				defer migrations.Close(db)
				cfg := bounties.Config{}
				if stripeKey != "" {
					if cfg.Stripe, err = bounties.NewStripe(bounties.StripeOptions{Key: stripeKey, APIURL: stripeURL}); err != nil {
						return err
					}
				}
				svc := bounties.New(db, cfg)
				problems, err := svc.Audit(ctx)
				if err != nil {
					return err
				}
				if cfg.Stripe != nil {
					more, err := svc.Reconcile(ctx, auditLimit)
					if err != nil {
						return err
					}
					problems = append(problems, more...)
				}
				out := cmd.OutOrStdout()
				platform, err := svc.Balance(ctx, "platform")
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "platform balance: %s (negative: money the forge has put in)\n", bounties.Cents(platform))
				for _, p := range problems {
					fmt.Fprintln(out, "PROBLEM:", p)
				}
				if len(problems) > 0 {
					return fmt.Errorf("ledger audit found %d problem(s)", len(problems))
				}
				fmt.Fprintln(out, "ledger balanced: every transaction sums to zero")
				return nil
			},
		}
		ledger := &cobra.Command{
			Use:   "ledger",
			Short: "List ledger rows, newest first",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				db, err := migrations.Open(ctx, dsn)
				if err != nil {
					return err
				}
				defer migrations.Close(db)
				rows, err := bounties.New(db, bounties.Config{}).Ledger(ctx, prefix, limit)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "TXN\tWHEN\tKIND\tKEY\tACCOUNT\tAMOUNT\t")
				for _, r := range rows {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t\n", r.TxnID, r.CreatedAt.UTC().Format("2006-01-02 15:04"), r.Kind, r.Key, r.Account, bounties.Cents(r.AmountCents))
				}
				return tw.Flush()
			},
		}
		ledger.Flags().StringVar(&prefix, "account", "", "only accounts starting with this, e.g. paid: or bounty:12")
		ledger.Flags().IntVar(&limit, "limit", 100, "rows to show (at most 1000)")
		audit.Flags().StringVar(&stripeKey, "stripe-key", "", "Stripe secret key: also reconcile paid payouts with Stripe's transfers")
		audit.Flags().StringVar(&stripeURL, "stripe-api-url", "", "Stripe API root (default https://api.stripe.com)")
		audit.Flags().IntVar(&auditLimit, "limit", 1000, "with --stripe-key: how many of the newest paid payouts to check")
		for _, c := range []*cobra.Command{audit, ledger} {
			c.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
			cmd.AddCommand(envHelp(c))
		}
		return cmd
	})
}
