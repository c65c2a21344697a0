#!/usr/bin/env bash
# Docker cannot run on the CI machines, so this proves the images another way:
#  1. every path the Dockerfile COPYs from the build context exists;
#  2. a pruned copy of the project gets the image's install and bundle commands (taken from the Dockerfile);
#  3. the image's exact ENTRYPOINTs (node and deno, taken from the Dockerfile) run every role there against a
#     throw-away PostgreSQL: `migrate` must succeed, and webhook, scheduler and `all --simulate` must answer
#     /health and /ready, pass the image's HEALTHCHECK command, then stop on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

# --- 1. COPY sources exist
missing=0
while read -r line; do
  # `COPY [--chown=..] src... dest`: every word but the first, the flags and the last is a source
  read -r -a words <<<"$line"
  sources=("${words[@]:1:${#words[@]}-2}")
  for src in "${sources[@]}"; do
    case "$src" in --*) continue ;; esac
    if [ ! -e "$src" ]; then echo "container: the Dockerfile copies $src, which does not exist" >&2; missing=1; fi
  done
done < <(grep -E '^COPY ' Dockerfile | grep -v -- '--from=')
[ "$missing" = 0 ] || exit 1
echo "container: every path the Dockerfile copies exists"

# --- 2. a pruned install, as the image builds it
work="$(mktemp -d)"
chmod 755 "$work"
app="$work/app"
mkdir -p "$app"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done; done
  rm -rf "$work"
}
trap cleanup EXIT
grep -E '^COPY ' Dockerfile | grep -v -- '--from=' | while read -r line; do
  read -r -a words <<<"$line"
  for src in "${words[@]:1:${#words[@]}-2}"; do
    case "$src" in --*) continue ;; esac
    mkdir -p "$app/$(dirname "$src")"
    cp -r "$src" "$app/$(dirname "$src")/"
  done
done
install_cmd="$(grep -m1 -E '^RUN node \.ci/complete-lockfile\.mjs && npm ci' Dockerfile | sed 's/^RUN //')"
bundle_cmd="$(grep -m1 -E '^RUN node_modules/\.bin/esbuild' Dockerfile | sed 's/^RUN //')"
[[ "$install_cmd" == *"--omit=dev"* ]] || { echo "container: no npm ci --omit=dev in the Dockerfile" >&2; exit 1; }
# The image's install step cleans npm's cache; a private cache keeps that from emptying this machine's.
(cd "$app" && export npm_config_cache="$work/npm-cache" && eval "$install_cmd" >"$work/install.log" 2>&1) || { cat "$work/install.log" >&2; exit 1; }
(cd "$app" && eval "$bundle_cmd")
echo "container: pruned install ($(du -sh "$app/node_modules" | cut -f1) of node_modules) and bundle ready"

# --- 3. the entrypoints
node_entry="$(grep -m1 -E '^ENTRYPOINT \["node"' Dockerfile | sed 's/^ENTRYPOINT //')"
deno_entry="$(grep -m1 -E '^ENTRYPOINT \["deno"' Dockerfile | sed 's/^ENTRYPOINT //')"
mapfile -t node_cmd < <(node -e 'for (const w of JSON.parse(process.argv[1])) console.log(w)' "$node_entry")
mapfile -t deno_cmd < <(node -e 'for (const w of JSON.parse(process.argv[1])) console.log(w)' "$deno_entry")
# the HEALTHCHECKs: the node image's first, the deno image's second
mapfile -t health_json < <(grep -E '^\s+CMD \[' Dockerfile | sed -E 's/^\s+CMD //')
[ "${#health_json[@]}" = 2 ] || { echo "container: expected two HEALTHCHECK commands in the Dockerfile" >&2; exit 1; }
mapfile -t node_health < <(node -e 'for (const w of JSON.parse(process.argv[1])) console.log(w)' "${health_json[0]}")
mapfile -t deno_health < <(node -e 'for (const w of JSON.parse(process.argv[1])) console.log(w)' "${health_json[1]}")
# `deno` on PATH is the devDependency's binary, the version the image copies in
mkdir -p "$work/bin"
ln -s "$repo/node_modules/deno/deno" "$work/bin/deno"
export PATH="$work/bin:$PATH" DENO_DIR="$work/deno-cache" DENO_NO_UPDATE_CHECK=1

node --import tsx .ci/postgres.ts "$work/pg-url" >"$work/postgres.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [ -s "$work/pg-url" ] && break; sleep 0.5; done
[ -s "$work/pg-url" ] || { echo "container: the test PostgreSQL did not start" >&2; cat "$work/postgres.log" >&2; exit 1; }

# a throw-away app key: the scheduler only has to be able to load it
key="$(node -e 'const { generateKeyPairSync } = require("node:crypto"); process.stdout.write(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }))')"
kubeconfig='apiVersion: v1
kind: Config
clusters: [{name: ci, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: ci, user: {token: ci-token}}]
contexts: [{name: ci, context: {cluster: ci, user: ci}}]
current-context: ci'
# what every role gets in the image (the rest per role below); LOG_LEVEL keeps the expected API errors of a
# cluster that is not there out of the output
base_env=(env -i "PATH=$PATH" "HOME=$work" "DENO_DIR=$DENO_DIR" "DENO_NO_UPDATE_CHECK=1" NODE_ENV=production LOG_FORMAT=json
  LOG_LEVEL=fatal "POSTGRES_URL=$(cat "$work/pg-url")")

# run_role NAME PORTS... -- ENV... -- COMMAND...
run_role() {
  local name="$1"; shift
  local ports=(); while [ "$1" != "--" ]; do ports+=("$1"); shift; done; shift
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local log="$work/$name.log" start pid ok
  start=$(date +%s%N)
  (cd "$app" && exec "${base_env[@]}" "${envs[@]}" "$@") >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 300); do
    ok=1
    for port in "${ports[@]}"; do [ "$(curl -fsS "localhost:$port/health" 2>/dev/null)" = "ok" ] || ok=0; done
    [ "$ok" = 1 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then echo "container: $name did not answer /health on ${ports[*]}; its output:" >&2; cat "$log" >&2; return 1; fi
  local took=$(( ($(date +%s%N) - start) / 1000000 ))
  # the readiness probe's route: the role reaches its database
  local port ready
  for port in "${ports[@]}"; do
    ready=""
    for _ in $(seq 1 50); do ready="$(curl -sS "localhost:$port/ready" 2>/dev/null || true)"; [ "$ready" = "ready" ] && break; sleep 0.1; done
    if [ "$ready" != "ready" ]; then echo "container: $name did not answer ready on :$port/ready (got: $ready); its output:" >&2; cat "$log" >&2; return 1; fi
  done
  # the image's HEALTHCHECK, run as Docker would, with the role's PORT
  if ! (cd "$app" && "${base_env[@]}" "${envs[@]}" "${health[@]}") >>"$log" 2>&1; then
    echo "container: the HEALTHCHECK of $name failed; its output:" >&2; cat "$log" >&2; return 1
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "container: $name did not stop within 15 s of SIGTERM" >&2; kill -KILL "$pid"; return 1; fi
  echo "container: $name answered /health on ${ports[*]} after ${took} ms, /ready, passed the HEALTHCHECK and stopped on SIGTERM"
}

for runtime in node deno; do
  if [ "$runtime" = node ]; then cmd=("${node_cmd[@]}") health=("${node_health[@]}"); else cmd=("${deno_cmd[@]}") health=("${deno_health[@]}"); fi
  (cd "$app" && "${base_env[@]}" "${cmd[@]}" migrate) >"$work/migrate.log" 2>&1 || { echo "container: $runtime migrate failed" >&2; cat "$work/migrate.log" >&2; exit 1; }
  echo "container: $runtime migrate: $(tail -n 1 "$work/migrate.log")"
  run_role "$runtime webhook" 18080 -- PORT=18080 GHAPP_WEBHOOK_SECRET=ci-webhook-secret -- "${cmd[@]}" webhook
  run_role "$runtime scheduler" 18081 -- PORT=18081 "GHAPP_ORG_PRIVATE_KEY=$key" "GHAPP_PERSONAL_PRIVATE_KEY=$key" \
    "K8S_KUBECONFIG=$kubeconfig" -- "${cmd[@]}" scheduler
  run_role "$runtime all --simulate" 18082 18083 -- PORT=18082 SCHEDULER_PORT=18083 -- "${cmd[@]}" all --simulate
done
echo "container: the image commands work on node and deno"
