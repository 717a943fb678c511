#!/usr/bin/env bash
# A short run of the service on whatever `node` comes first on PATH: build it as `npm start`
# does, start it, one round trip of a file through the API, the command-line client, and a
# graceful stop. CI runs the whole suite on Node LTS and this on the machine's own node
# (.ci/run), so that the README's commands are known to work there too.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'smoke: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; [[ -f ${out:-} ]] && sed 's/^/  | /' "$out" >&2; exit 1; }

log "node $(node --version): npm run build"
npm run --silent build >/dev/null

work=$(mktemp -d)
out=$work/service.log
pid=
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# PORT=0: the service takes a free port and says which.
STORAGE_DIR=$work/data PORT=0 HOST=127.0.0.1 node dist/src/adapters/node/main.js >"$out" 2>&1 &
pid=$!
base=
for _ in $(seq 100); do
  base=$(sed -n 's#.*serving stores .* on \(http://[^ ]*/filestorage/v1\).*#\1#p' "$out" | head -n 1)
  [[ -n $base ]] && break
  kill -0 "$pid" 2>/dev/null || fail "the service exited while starting"
  sleep 0.2
done
[[ -n $base ]] || fail "the service did not start within 20 s"
log "serving at $base"

printf 'smoke test %s\n' "$(date +%s%N)" >"$work/hello.txt"
curl -sf -T "$work/hello.txt" "$base/disk/upload/smoke/hello.txt" >/dev/null || fail "upload"
curl -sf "$base/disk/download/smoke/hello.txt" -o "$work/back.txt" || fail "download"
cmp -s "$work/hello.txt" "$work/back.txt" || fail "the downloaded bytes differ from the uploaded ones"
curl -sf "$base/check" | grep -q '"status":"ok"' || fail "check"
log "round trip through the API: ok"

cli() { node dist/src/cli/main.js --url "${base%/filestorage/v1}" "$@"; }
cli --version >/dev/null || fail "the CLI does not run"
cli put "$work/hello.txt" disk:smoke/by-cli.txt >/dev/null || fail "filestorage put"
cli get disk:smoke/by-cli.txt "$work/by-cli.txt" >/dev/null || fail "filestorage get"
cmp -s "$work/hello.txt" "$work/by-cli.txt" || fail "the CLI's round trip changed the bytes"
cli rm disk:smoke/by-cli.txt >/dev/null || fail "filestorage rm"
log "round trip through the command-line client: ok"

kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=
((code == 0)) || fail "the service exited with $code on SIGTERM"
log "graceful stop: ok"
