#!/usr/bin/env bash
# The JSON API's lab list against the Parse anchor (shared/anchors): the same load, the same data.
#
#   bench/api_vs_parse.sh                          # starts its own throwaway PostgreSQL
#   scripts/with-postgres.sh bench/api_vs_parse.sh # the same, explicitly
#
# Seeds `demo seed --patients 1000 --labs-per-patient 50` into a throwaway PostgreSQL, gives
# each generated patient an account and a bearer token (bench/api_tokens.py: generated patients
# have no accounts, so the token rows are written directly with sessions.start), serves the
# portal with gunicorn (2 sync workers), and drives `GET /api/v1/patients/{id}/lab-results`
# with wrk: each request picks a random patient and sends that patient's own token, as the
# anchors' bench.lua does for Parse (`where={patient}&order=-publishedAt` with the patient's
# session token). Prints one RESULT line (req/s, latency percentiles, errors).
#
# Run the anchors (shared/anchors/parse_reference.sh) right before or after it on a quiet
# machine and quote the ratio: absolute req/s on these shared machines mean little alone.
#
# Knobs (environment): PATIENTS=1000 LABS=50 THREADS=2 CONNECTIONS=16 DURATION=10s WARMUP=2s
# WORKERS=2 LIMIT=50 (Parse answers all 50 of a patient's results: its default limit is 100)
# AUDIT=1 (0 turns read auditing off, to see what it costs; the product always audits).
# Loopback only; every process started here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${TEST_DATABASE_URL:-}" ]; then
    exec bash scripts/with-postgres.sh bash "$ROOT/bench/api_vs_parse.sh" "$@"
fi

BIN=${BIN:-$ROOT/.venv/bin}
PATIENTS=${PATIENTS:-1000}
LABS=${LABS:-50}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
WORKERS=${WORKERS:-2}
LIMIT=${LIMIT:-50}
AUDIT=${AUDIT:-1}

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install -y wrk)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portal-api-bench.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export PORTAL_ENV=development
export SECRET_KEY=bench-secret-key-not-for-production
export ATTACHMENT_KEY=bench-attachment-key-not-for-production
export DATABASE_URL=$TEST_DATABASE_URL
export PORTAL_AUDIT_ENABLED=$AUDIT

echo "bench: seeding $PATIENTS patients x $LABS results into PostgreSQL" >&2
seed_start=$(date +%s)
"$BIN/flask" --app wsgi db upgrade >/dev/null 2>&1
"$BIN/flask" --app wsgi demo seed --patients "$PATIENTS" --labs-per-patient "$LABS" >/dev/null
"$BIN/python" bench/api_tokens.py "$PATIENTS" >"$WORK/ids.txt"
echo "bench: seeded, $(wc -l <"$WORK/ids.txt") patients with tokens, in $(( $(date +%s) - seed_start ))s" >&2

# The request script: a random patient per request, with that patient's own bearer token.
cat >"$WORK/api.lua" <<LUA
local ids, tokens, n = {}, {}, 0
local thread_no = 0
function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
end
function init(args)
  for line in io.lines("$WORK/ids.txt") do
    local id, tok = line:match("^(%S+)%s+(%S+)")
    if id then n = n + 1; ids[n] = id; tokens[n] = "Bearer " .. tok end
  end
  math.randomseed(os.time() * 1000 + (tid or 0))
end
function request()
  local i = math.random(n)
  return wrk.format("GET", "/api/v1/patients/" .. ids[i] .. "/lab-results?limit=$LIMIT",
    {["Authorization"] = tokens[i], ["Accept"] = "application/json"})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d bytes_per_req=%.0f\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    summary.requests > 0 and summary.bytes / summary.requests or 0))
end
LUA

PORT=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN/gunicorn" --no-control-socket -w "$WORKERS" -k sync -b "127.0.0.1:$PORT" \
    --log-level warning wsgi:app >"$WORK/gunicorn.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
    curl -fsS -o /dev/null "$URL/api/v1/openapi.json" 2>/dev/null && break
    sleep 0.1
done

# One request by hand first: a benchmark of 401s or 404s would measure nothing.
read -r first_id first_token <"$WORK/ids.txt"
status=$(curl -sS -o "$WORK/first.json" -w '%{http_code}' \
    -H "Authorization: Bearer $first_token" "$URL/api/v1/patients/$first_id/lab-results?limit=$LIMIT")
if [ "$status" != 200 ]; then
    echo "bench: the API answered $status to patient $first_id:" >&2
    head -c 500 "$WORK/first.json" >&2; echo >&2
    cat "$WORK/gunicorn.log" >&2
    exit 1
fi
items=$("$BIN/python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$WORK/first.json")

echo "bench: $(nproc) cores, gunicorn $WORKERS sync workers, audit=$AUDIT, $items results per answer;" \
     "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up)" >&2
wrk -t "$THREADS" -c "$CONNECTIONS" -d "$WARMUP" -s "$WORK/api.lua" "$URL" >/dev/null
out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s "$WORK/api.lua" "$URL")
echo "$out" | grep -v '^RESULT' >&2
echo "$out" | grep '^RESULT' | sed "s/^RESULT /RESULT portal-api-pg-${WORKERS}workers /"
