package main

import (
	"testing"

	"github.com/gradforge/gradforge/migrations/dbtest"
)

func postgresDSN(t *testing.T) string { return dbtest.PostgresDSN(t) }
