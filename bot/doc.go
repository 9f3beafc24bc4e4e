// Package bot is the GitHub App: webhook intake and signature checks, durable jobs,
// installation auth, the comment-command grammar, permissions and the bot's replies.
//
// # Intake
//
// Intake serves POST /webhooks/github. A delivery needs X-GitHub-Event, X-GitHub-Delivery,
// a JSON content type, a body within the size cap, and an X-Hub-Signature-256 that matches
// one of the configured secrets (HMAC-SHA256, compared in constant time; several secrets
// allow rotation; SHA-1 signatures are refused; an empty secret refuses to start). It is
// then stored with its job in one transaction, deduplicated by delivery ID, and only then
// answered 202, so an acknowledged delivery survives a crash. Concurrent deliveries are
// group-committed: one transaction, two statements, for a whole burst.
//
// # Jobs
//
// Workers claim jobs atomically (FOR UPDATE SKIP LOCKED on PostgreSQL, a single conditional
// UPDATE on SQLite, whose writers are serialised) as leases, retry failures with jittered
// exponential backoff, fail Permanent errors at once, and pick up after a restart whatever
// was acknowledged but not finished. Handlers are idempotent: each command occurrence
// (delivery, source, line) is recorded when done and never runs twice; replies are keyed
// the same way; labels and the one comment converge to the same state when repeated.
//
// # Commands
//
// Parse is the one grammar for issue and PR comments, issue and PR bodies and review bodies:
// a line starting with /name; case-insensitive; several per text; lines in code blocks,
// quotes and HTML comments ignored; on an edit only commands that are new run. Each command
// lives in its own file (cmd_*.go) with its usage, its Who rule, where it applies, its
// handler and its help, and registers itself. Unknown commands get a reply listing the valid
// ones.
//
// # Trust
//
// TrustOf is the one answer about a user in a repository: the permission from the API
// (admin, maintain or write make a maintainer; triage a triager), membership of the owning
// organization, and the repository's .gradforge.yml (maintainers, trusted_users,
// auto_approve_payouts, required_checks, bounty policy). Refusals say who may.
//
// # Configuration
//
// A repository configures the bot in .gradforge.yml on its default branch (RepoConfig). A
// missing file, or a key left out, takes DefaultConfig's value; a file that does not parse
// is told to people rather than retried.
//
//	maintainers: [alice]          # maintainers besides write/maintain/admin access; default none
//	trusted_users: [carol]        # may /retest and /lgtm; their PRs run CI without /ok-to-test
//	auto_approve_payouts: false   # true: merged claims pay without /approve-payout
//	required_checks: [parity, lines, speed]
//	bounties:
//	  min_account_age_days: 0     # refuse attempts and claims from younger GitHub accounts
//	  max_active_attempts: 2      # bounties one person may lock at once (0: the default, 2)
//	  first_pr_cannot_claim: true # a contributor's first merged PR cannot win a bounty
//
// The bounty keys are handed to the bounties package with each request and stored as the
// repository's policy; their defaults are the bounties package's DefaultPolicy, so the
// first-PR rule (tinygrad's) is on unless a repository writes first_pr_cannot_claim: false.
//
// # Replies
//
// The bot keeps one comment per issue or pull request, found by Marker, with named sections
// (bounty, ci, lines, …, then a log of recent command replies) that it edits in place.
// Bot.Post is what the bounties notifier calls; Checks implements ci.Checks.
//
// # Other packages
//
// The bot hands work to the ci and bounties packages through the CI and Bounties interfaces
// declared here (adapters live in cmd/gradforge). The fake GitHub API for tests is
// bot/githubtest.
package bot
