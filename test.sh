#!/usr/bin/env bash
# test.sh runs every gradforge test on a fresh machine: it installs what the tests need when
# it is missing (Debian packages, Go tools), checks formatting and vet, builds every binary
# without cgo, and runs the whole suite. Extra arguments go to `go test` (e.g. -run X).
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$(go env GOPATH)/bin:$PATH"

debs=()
need_deb() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || debs+=("$p"); done; }
need_go_tool() { command -v "$1" >/dev/null 2>&1 || { echo "== installing $2"; go install "$2"; }; }

# --- What the tests need. One line per need; add yours here. ---
need_deb gcc
need_deb g++ # codegen runs the generated CUDA tile kernels on the host (TestTileKernelsOnHost)
need_deb git
need_deb python3-numpy
need_deb python3-torch
need_deb dataset-fashion-mnist
need_deb bubblewrap
need_deb chromium
need_deb ocl-icd-libopencl1
need_deb pocl-opencl-icd
need_go_tool stripe-mock github.com/stripe/stripe-mock@latest
# --- end of needs ---

if [ ${#debs[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${debs[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${debs[@]}"
fi

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== build (CGO_ENABLED=0)"
CGO_ENABLED=0 go build ./...
echo "== framework core line budget"
go run ./cmd/gradforge gate lines --head HEAD --budget 9000
echo "== go test"
go test -count=1 -timeout 45m "$@" ./...
