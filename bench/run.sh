#!/usr/bin/env bash
# What does auditing every read cost? Serve a seeded portal with gunicorn (2 sync workers) and
# drive wrk against sensitive pages with read auditing on, then off; print requests per second.
#
#   bench/run.sh                                  # SQLite in a temporary directory
#   scripts/with-postgres.sh bench/run.sh         # PostgreSQL (uses TEST_DATABASE_URL)
#
# Knobs (environment): PATIENTS=2000 LABS=50 DURATION=10s ROUNDS=3 CONNECTIONS=4 THREADS=2
# WORKERS=2 PAGES="/my/ /my/lab-results" EXPLAIN=1 (print the lab list's query plan first).
# Loopback only; every server started here is stopped on exit.
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
ROUNDS=${ROUNDS:-3}

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install -y wrk)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portal-bench.XXXXXX")
SERVER_PIDS=""
cleanup() {
    for pid in $SERVER_PIDS; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
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
BACKEND=${BACKEND%%+*}

echo "bench: seeding $PATIENTS patients x $LABS results into $BACKEND" >&2
seed_start=$(date +%s)
"$BIN/flask" --app wsgi db upgrade >/dev/null 2>&1
"$BIN/flask" --app wsgi demo seed --patients "$PATIENTS" --labs-per-patient "$LABS" >/dev/null
echo "bench: seeded in $(( $(date +%s) - seed_start ))s" >&2
if [ "${EXPLAIN:-1}" = 1 ]; then
    echo "bench: plan of alice's lab list page (bench/explain.py)" >&2
    "$BIN/python" bench/explain.py alice@example.org >&2
fi

free_port() { "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

declare -A PORT PID COOKIE
serve() {  # $1: on|off
    local port flag
    port=$(free_port)
    flag=$([ "$1" = on ] && echo 1 || echo 0)
    PORTAL_AUDIT_ENABLED=$flag "$BIN/gunicorn" --no-control-socket -w "$WORKERS" -k sync \
        -b "127.0.0.1:$port" --log-level warning wsgi:app >"$WORK/gunicorn-$1.log" 2>&1 &
    PID[$1]=$!
    SERVER_PIDS="$SERVER_PIDS ${PID[$1]}"
    PORT[$1]=$port
    for _ in $(seq 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/login" 2>/dev/null; then
            COOKIE[$1]=$("$BIN/python" bench/session_cookie.py "http://127.0.0.1:$port" alice@example.org)
            return
        fi
        sleep 0.1
    done
    echo "bench: gunicorn did not start" >&2; cat "$WORK/gunicorn-$1.log" >&2; exit 1
}

measure() {  # $1: on|off  $2: page  $3: duration -> "req/s p50 non-2xx"
    local out
    out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$3" --latency -H "Cookie: ${COOKIE[$1]}" \
        "http://127.0.0.1:${PORT[$1]}$2")
    awk '/^Requests\/sec/ {rps=$2} $1 == "50%" {p50=$2} /Non-2xx or 3xx/ {bad=$5}
         END {printf "%s %s %s\n", rps, p50, (bad == "" ? 0 : bad)}' <<<"$out"
}

# Both servers run side by side (an idle one costs nothing) and the runs alternate on/off,
# so a change in background load hits both modes alike.
serve on
serve off
echo "bench: $(nproc) cores, $WORKERS sync workers each, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds" >&2
printf '%-8s %-5s %-18s %5s %10s %10s %8s\n' backend audit page round "req/s" "p50" "non-2xx"
for page in $PAGES; do
    for mode in on off; do measure "$mode" "$page" 2s >/dev/null; done  # warm up
    for round in $(seq "$ROUNDS"); do
        for mode in on off; do
            read -r rps p50 bad <<<"$(measure "$mode" "$page" "$DURATION")"
            printf '%-8s %-5s %-18s %5s %10s %10s %8s\n' "$BACKEND" "$mode" "$page" "$round" "$rps" "$p50" "$bad"
            echo "$mode $page $rps" >>"$WORK/results"
        done
    done
done
echo
echo "mean req/s over the rounds; ratio = audit on / audit off"
awk '{sum[$2" "$1] += $3; n[$2" "$1]++}
     END {for (k in sum) mean[k] = sum[k] / n[k];
          for (k in mean) { split(k, p, " "); if (p[2] == "on") {
              printf "%-18s on %8.1f  off %8.1f  ratio %.2f\n", p[1], mean[k], mean[p[1]" off"], mean[k] / mean[p[1]" off"] } } }' \
    "$WORK/results" | sort
