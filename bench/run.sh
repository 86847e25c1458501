#!/usr/bin/env bash
# What does auditing every read cost? Serve a seeded portal with gunicorn (2 sync workers) and
# drive wrk against sensitive pages with read auditing on, then off; print requests per second.
#
#   bench/run.sh                                  # SQLite in a temporary directory
#   scripts/with-postgres.sh bench/run.sh         # PostgreSQL (uses TEST_DATABASE_URL)
#
# Knobs (environment): PATIENTS=2000 LABS=50 DURATION=10s CONNECTIONS=4 THREADS=2 WORKERS=2
# PAGES="/my/ /my/lab-results". Loopback only; every server started here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/.venv/bin}
PATIENTS=${PATIENTS:-2000}
LABS=${LABS:-50}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
PAGES=${PAGES:-"/my/ /my/lab-results"}

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install -y wrk)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portal-bench.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export PORTAL_ENV=development
export SECRET_KEY=bench-secret-key-not-for-production
export ATTACHMENT_KEY=bench-attachment-key-not-for-production
if [ -n "${TEST_DATABASE_URL:-}" ]; then
    export DATABASE_URL=$TEST_DATABASE_URL
else
    export DATABASE_URL="sqlite:///$WORK/bench.db"
fi
BACKEND=${DATABASE_URL%%:*}

echo "bench: seeding $PATIENTS patients x $LABS results into $BACKEND" >&2
seed_start=$(date +%s)
"$BIN/flask" --app wsgi db upgrade >/dev/null 2>&1
"$BIN/flask" --app wsgi demo seed --patients "$PATIENTS" --labs-per-patient "$LABS" >/dev/null
echo "bench: seeded in $(( $(date +%s) - seed_start ))s" >&2

free_port() { "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

serve() {  # $1: PORTAL_AUDIT_ENABLED value
    PORT=$(free_port)
    PORTAL_AUDIT_ENABLED=$1 "$BIN/gunicorn" --no-control-socket -w "$WORKERS" -k sync \
        -b "127.0.0.1:$PORT" --log-level warning wsgi:app >"$WORK/gunicorn-$1.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/login" 2>/dev/null; then return; fi
        sleep 0.1
    done
    echo "bench: gunicorn did not start" >&2; cat "$WORK/gunicorn-$1.log" >&2; exit 1
}

stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

printf '%-8s %-10s %-18s %10s %10s %8s\n' backend audit page "req/s" "p50" "non-2xx"
for audit in 1 0; do
    serve "$audit"
    COOKIE=$("$BIN/python" bench/session_cookie.py "http://127.0.0.1:$PORT" alice@example.org)
    for page in $PAGES; do
        # Warm up both workers (imports, caches, connection pools) before measuring.
        wrk -t "$THREADS" -c "$CONNECTIONS" -d 2s -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT$page" >/dev/null
        out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -H "Cookie: $COOKIE" \
            "http://127.0.0.1:$PORT$page")
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        bad=$(awk '/Non-2xx or 3xx/ {print $5}' <<<"$out")
        printf '%-8s %-10s %-18s %10s %10s %8s\n' "$BACKEND" "$([ "$audit" = 1 ] && echo on || echo off)" "$page" "$rps" "$p50" "${bad:-0}"
    done
    stop
done
