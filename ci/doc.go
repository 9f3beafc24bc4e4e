// Package ci owns conformance CI: check suites and check runs, the parity, lines and speed
// gates, job specs for runners, and the pull-request summaries.
package ci
