// Package ci owns conformance CI: the three gates a pull request must pass — parity, lines and
// speed — their check runs on GitHub, the runner jobs that compute them, and the pull-request
// summaries. The same gates run locally with `gradforge gate lines|parity|speed`.
//
// The gates:
//
//   - Lines (Lines): the framework core's non-blank, non-comment Go lines, counted with
//     go/scanner per file at base and head, against a budget (9,000). Files are read from git
//     objects, never checked out.
//   - Parity (Parity, ReadParity): the testops suite's JSON report, summarised by op family;
//     failing cases become annotations at their declaration with the seed that replays them.
//   - Speed (Speed, RatioCI, Judge): base and head benchmark binaries built on one machine and
//     run interleaved; each benchmark's head/base ratio gets a Wilcoxon signed-rank interval on
//     log ratios, and only an interval wholly beyond the threshold fails. Process replay
//     (ParseKernels, DiffKernels) lists the generated kernels that changed.
//
// A pull request never judges itself: each runner job builds gradforge from the BASE checkout
// and points it at the head commit. The lines gate only reads the head's bytes; the parity and
// speed gates run the head's suite and benchmarks, which are the code under test.
//
// Service drives CI for pull requests. It creates check runs through Checks (the bot's
// installation client implements it), queues jobs through Dispatcher (RunnerQueue adapts the
// runners' queue) and concludes the checks when runners hand results back (Results). Trust
// follows Prow: an untrusted author's pull request gets the needs-ok-to-test label and
// action_required checks, and nothing runs until a maintainer comments /ok-to-test. A push
// cancels the previous commit's jobs; /retest and the Re-run buttons start new attempts.
// Everything it knows lives in the ci_pulls and ci_runs tables (migration 00300).
package ci
