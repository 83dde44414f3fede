#!/bin/sh
# `hub demo` (what `make run` starts) under wrk: the `validity` query on keep-alive connections,
# 1 connection then 16, 10 s each (issue 20's figures).   bench/wrk_demo.sh [PORT] [SECONDS]
# The demo runs in a fresh data directory with its request rate limit and cost budget raised out
# of reach (they are still checked on every request), and is stopped at the end.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${1:-18080}
SECONDS_EACH=${2:-10}
DATA=$(mktemp -d /tmp/permit-hub-wrk-XXXXXX)
HUB_RATE_LIMIT_PER_MINUTE=1000000000000 HUB_COST_BUDGET_PER_MINUTE=1000000000000 \
  "$ROOT/.venv/bin/hub" demo --port "$PORT" --data-dir "$DATA" > "$DATA/demo.log" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null; wait $DEMO 2>/dev/null; rm -rf "$DATA"' EXIT INT TERM
until curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null 2>&1; do
  kill -0 $DEMO || { cat "$DATA/demo.log"; exit 1; }
  sleep 0.5
done
ID=exit-entry-wuhan
SECRET=$(python3 -c "import json,sys;print(next(c['client_secret'] for c in json.load(open(sys.argv[1])) if c['client_id']=='$ID'))" "$DATA/demo/clients.json")
PERMIT=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['valid_permit'])" "$DATA/demo/samples.json")
TOKEN=$(curl -s -u "$ID:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/oauth/token" \
        | python3 -c "import json,sys;print(json.load(sys.stdin)['access_token'])")
export TOKEN PERMIT
# Unmeasured: the first requests fill the permit cache and warm the hub's caches up.
wrk -t 1 -c 4 -d 3s -s "$ROOT/bench/wrk_validity.lua" "http://127.0.0.1:$PORT/graphql" > /dev/null
for CONNECTIONS in 1 16; do
  echo "== hub demo, validity, $CONNECTIONS connection(s), ${SECONDS_EACH} s"
  wrk -t 1 -c "$CONNECTIONS" -d "${SECONDS_EACH}s" --latency -s "$ROOT/bench/wrk_validity.lua" \
      "http://127.0.0.1:$PORT/graphql"
done
