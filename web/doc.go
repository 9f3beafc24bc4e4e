// Package web is the gin HTTP server: pages, the JSON API, the runner API routes, auth and
// static assets.
package web
