#!/usr/bin/env bash
# build.sh builds everything the GPU checks need on a machine with Go, for a GPU machine
# without it: gradforge and the test binaries (cgo-free, stripped, gzipped), the webhook
# fixture and the ONNX conformance data, in .gpu/final (git-ignored). Carry that folder to the
# GPU machine's copy of this checkout and run `bash .gpu/final/run.sh` there (results go to $OUT).
#
#   SHARED=../shared scripts/gpu/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${SHARED:-../shared}
out=.gpu/final tmp=$(mktemp -d)
rm -rf "$out"; mkdir -p "$out/conf" "$out/fixtures/pull_request"
export CGO_ENABLED=0
go build -ldflags='-s -w' -o "$tmp/gradforge" ./cmd/gradforge
go test -c -ldflags='-s -w' -o "$tmp/cmd.test" ./cmd/gradforge
for p in framework/tensor framework/codegen framework/examples/bench framework/onnx framework/jit runners; do
  go test -c -ldflags='-s -w' -o "$tmp/$(basename $p).test" ./$p
done
for f in "$tmp"/*; do gzip -c "$f" > "$out/$(basename "$f").gz"; done
rm -rf "$tmp"
cp "$shared/fixtures/github-webhooks/pull_request/synchronize.payload.json" "$out/fixtures/pull_request/"
cp -r "$shared/conformance/onnx-node-dev.tgz" "$shared/conformance/onnx-light" "$out/conf/"
cp scripts/gpu/run.sh "$out/run.sh"
git log --oneline -1 > "$out/COMMIT"
du -sh "$out"
