#!/usr/bin/env bash
# Starts the service the way a new user does (`npm start`, or `npx deno task start`) on a fresh data directory
# and waits for /health on both ports. Fails after 60 s.
set -euo pipefail
runtime="${1:-node}"
data_dir="$(mktemp -d)"
chmod 755 "$data_dir"
log="$data_dir/service.log"
export DATA_DIR="$data_dir/data"
case "$runtime" in
  node) setsid npm start >"$log" 2>&1 & ;;
  deno) setsid npx deno task start >"$log" 2>&1 & ;;
  *) echo "usage: smoke.sh node|deno" >&2; exit 64 ;;
esac
pid=$!
stop() {
  # SIGINT to the whole process group, as Ctrl-C would; then make sure nothing is left behind.
  kill -INT -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
trap stop EXIT
start=$(date +%s)
for _ in $(seq 1 120); do
  if [ "$(curl -fsS localhost:8080/health 2>/dev/null)" = "ok" ] && [ "$(curl -fsS localhost:8081/health 2>/dev/null)" = "ok" ]; then
    echo "smoke ($runtime): /health ok on 8080 and 8081 after $(( $(date +%s) - start )) s"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.5
done
echo "smoke ($runtime): the service did not answer /health within 60 s; its output:" >&2
cat "$log" >&2
exit 1
