package runners

import (
	"slices"
	"strings"
	"testing"
)

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v // the last value wins, as in os/exec
	}
	return m
}

func TestStepEnv(t *testing.T) {
	t.Setenv("GRADFORGE_CONFIG", "/secret/runner.json")
	t.Setenv("CUDA_VISIBLE_DEVICES", "0")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "runner-owner-secret")
	t.Setenv("GOCACHE", "")
	t.Setenv("GOMODCACHE", "")
	job := func(trusted bool) *wireJob {
		return &wireJob{ID: 9, Attempt: 2, Repo: "o/r", HeadSHA: sha1, Trusted: trusted, BaseSHA: sha1,
			Env: map[string]string{"DEVICE": "CUDA", "GOFLAGS": "-count=1"}}
	}
	trusted := envMap(stepEnv(job(true), "/w", "/w/src", "/w/base", "/w/results", "/w/home", "/c"))
	untrusted := envMap(stepEnv(job(false), "/w", "/w/src", "/w/base", "/w/results", "/w/home", "/c"))
	for _, c := range []struct {
		name string
		env  map[string]string
		key  string
		want string
	}{
		{"runner settings never reach a job", trusted, "GRADFORGE_CONFIG", ""},
		{"job variables are set", trusted, "GRADFORGE_JOB_ID", "9"},
		{"base dir is set when a base is", trusted, "GRADFORGE_BASE_DIR", "/w/base"},
		{"home is the workspace's", trusted, "HOME", "/w/home"},
		{"trusted jobs share the build cache", trusted, "GOCACHE", "/c/gobuild"},
		{"trusted jobs share the module cache", trusted, "GOMODCACHE", "/c/gomod"},
		{"trusted jobs inherit the runner's environment", trusted, "AWS_SECRET_ACCESS_KEY", "runner-owner-secret"},
		{"the job's own env wins", trusted, "GOFLAGS", "-count=1"},
		{"untrusted jobs keep GPU settings", untrusted, "CUDA_VISIBLE_DEVICES", "0"},
		{"untrusted jobs do not see the runner's secrets", untrusted, "AWS_SECRET_ACCESS_KEY", ""},
		{"untrusted jobs build with their own cache", untrusted, "GOCACHE", "/w/home/.cache/go-build"},
		{"untrusted jobs read the shared module cache", untrusted, "GOMODCACHE", "/c/gomod"},
		{"untrusted jobs download nothing", untrusted, "GOPROXY", "off"},
	} {
		if got := c.env[c.key]; got != c.want {
			t.Errorf("%s: %s=%q, want %q", c.name, c.key, got, c.want)
		}
	}
	if !slices.Contains(stepEnv(job(true), "/w", "/w/src", "", "/w/results", "/w/home", "/c"), "CI=true") {
		t.Error("CI=true missing")
	}
}
