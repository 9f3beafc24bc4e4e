// Package runners owns self-hosted runners: the agent that runs jobs and the server side of
// dispatch (registration, leases, heartbeats, logs and cancels).
package runners
