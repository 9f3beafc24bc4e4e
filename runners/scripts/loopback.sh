#!/usr/bin/env bash
# loopback.sh runs a forge server, one runner and one job on this machine's loopback, using
# only a built gradforge binary and git (no Go toolchain), then prints the job's log and
# result and exits with 0 only if the job succeeded.
#
#   GRADFORGE=/path/to/gradforge runners/scripts/loopback.sh 'testops=./gradforge testops --json "$GRADFORGE_RESULTS/testops.json"'
#
# Each argument is one step, NAME=SHELL COMMAND, run in a checkout of REPO at SHA.
# Environment:
#   GRADFORGE  the binary (default: gradforge on PATH)
#   REPO, SHA  the git repository (a path) and commit to run at (default: a one-commit
#              repository made here, holding a copy of the binary as ./gradforge)
#   LABELS     runner labels (default cuda); the job asks for JOB_LABELS (default cuda)
#   DB         database DSN (default: a SQLite file in the scratch folder)
#   PORT       server port (default: a free one)
#   TIMEOUT    job timeout (default 30m)
#   ENV_*      ENV_DEVICE=CUDA becomes DEVICE=CUDA in every step
set -euo pipefail
bin=$(command -v "${GRADFORGE:-gradforge}")
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
work=$(mktemp -d /tmp/gradforge-loopback.XXXXXX)
db=${DB:-$work/forge.db}
port=${PORT:-0}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if [ -z "${REPO:-}" ]; then
  REPO=$work/repo
  git init -q "$REPO"
  cp "$bin" "$REPO/gradforge"
  git -C "$REPO" add gradforge
  git -C "$REPO" -c user.name=loopback -c user.email=loopback@localhost commit -q -m "loopback job"
fi
SHA=${SHA:-$(git -C "$REPO" rev-parse HEAD)}

"$bin" serve --db "$db" --addr "127.0.0.1:$port" >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.:]*' "$work/serve.out" 2>/dev/null | head -1 || true)
  [ -n "$url" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "gradforge serve failed:"; cat "$work/serve.log"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "gradforge serve printed no URL"; cat "$work/serve.log"; exit 1; }
echo "== server at $url (database $db)"

token=$("$bin" runner token create --db "$db" --ttl 10m --note loopback 2>/dev/null)
"$bin" runner register --url "$url" --token "$token" --labels "${LABELS:-cuda}" --name "loopback-$(hostname)" --config "$work/runner.json"
"$bin" runner run --config "$work/runner.json" --work-dir "$work/jobs" >"$work/runner.log" 2>&1 &
pids+=($!)

steps=()
for s in "$@"; do steps+=(--step "$s"); done
[ ${#steps[@]} -gt 0 ] || steps=(--step 'hello=echo "hello from $(hostname) at $GRADFORGE_HEAD_SHA"; nvidia-smi -L || true')
envs=()
while IFS='=' read -r k v; do envs+=(--env "${k#ENV_}=$v"); done < <(env | grep '^ENV_' || true)
id=$("$bin" runner enqueue --db "$db" --clone-url "$REPO" --sha "$SHA" --labels "${JOB_LABELS:-cuda}" \
  --timeout "${TIMEOUT:-30m}" "${steps[@]}" "${envs[@]}")
echo "== job $id queued; following it (server log $work/serve.log, runner log $work/runner.log)"
rc=0
"$bin" runner job "$id" --follow --db "$db" || rc=$?
"$bin" runner list --db "$db"
exit $rc
