#!/bin/sh
# The gateway container: nginx with deploy/nginx/nginx.conf, kept in step with Consul by the
# upstream sync. Runs as the image's non-root user; the same nginx command line as the tests'.
#   GATEWAY_PREFIX   nginx's prefix: conf/ and temp dirs   (default /var/lib/filestorage-gateway)
#   GATEWAY_LISTEN   what nginx listens on                 (default 8080)
#   APP_DIR          where the image holds the project     (default /app)
#   GATEWAY_STORAGE_DIR  the disk store's folder, mounted here read-only, for the instances'
#                    ACCEL_REDIRECT_LOCATION (nginx sends the bytes); unset: the instances do
# The upstream sync reads CONSUL_HTTP_ADDR, SERVICE_NAME and CONSUL_HTTP_TOKEN (docs/configuration.md).
set -eu
app=${APP_DIR:-/app}
prefix=${GATEWAY_PREFIX:-/var/lib/filestorage-gateway}
conf=$prefix/conf
mkdir -p "$conf" "$prefix/logs"
# nginx opens its access log by path, and a non-root process may not open the container's stdout
# pipe by path (/dev/stdout belongs to root): nginx writes to a FIFO that cat copies to our stdout.
# Opened read-write, the FIFO never reads as ended while nginx reopens it on a reload.
rm -f "$prefix/logs/access.log"
mkfifo "$prefix/logs/access.log"
cat 0<>"$prefix/logs/access.log" &
logger=$!
cp "$app/deploy/nginx/nginx.conf" "$conf/nginx.conf"
echo "listen ${GATEWAY_LISTEN:-8080};" >"$conf/listen.conf"
# Until the sync has heard from Consul: no instance (nginx answers a JSON 503).
[ -f "$conf/upstreams.conf" ] || echo 'server 127.0.0.1:9 down;' >"$conf/upstreams.conf"
# X-Accel-Redirect: the disk store's folder as this container sees it (mounted read-only), if at all.
if [ -n "${GATEWAY_STORAGE_DIR:-}" ]; then
  echo "alias ${GATEWAY_STORAGE_DIR%/}/;" >"$conf/accel.conf"
else
  echo 'return 404;' >"$conf/accel.conf"
fi

export NGINX_UPSTREAM_FILE="$conf/upstreams.conf" NGINX_PID_FILE="$prefix/nginx.pid"
nginx -p "$prefix/" -c "$conf/nginx.conf" -e stderr -g "pid $NGINX_PID_FILE;"

# The sync exits by itself when nginx is gone, which ends the container.
node "$app/dist/src/adapters/nginx/main.js" &
sync=$!
# shellcheck disable=SC2317 # run by the trap
stop() {
  kill -TERM "$sync" 2>/dev/null || true
  # nginx's graceful stop: no new connections, requests in flight finish; it removes its pid file.
  kill -QUIT "$(cat "$NGINX_PID_FILE")" 2>/dev/null || true
  waited=0
  while [ -f "$NGINX_PID_FILE" ] && [ "$waited" -lt 600 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill "$logger" 2>/dev/null || true
  exit 0
}
trap stop TERM INT
status=0
wait "$sync" || status=$?
kill "$logger" 2>/dev/null || true
exit "$status"
