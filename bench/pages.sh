#!/usr/bin/env bash
# Issue 13's pages under the anchors' load: each audited, scoped page at wrk -t1 -c16 against
# gunicorn (sync x 2, like the anchors' minimal Flask) with the Procfile's worker beside it
# (it seals the audit entries the pages write). The app served is bench/floor_app.py: the
# portal's own, with two bench-only routes measured last (the floor under the pages). Run
# `../shared/anchors/parse_reference.sh` right before it and quote ratios to its minimal page,
# never the figures alone.
#
#   bench/pages.sh                                      # SQLite in a temporary directory
#   scripts/with-postgres.sh bench/pages.sh             # PostgreSQL (uses TEST_DATABASE_URL)
#   BOTH=1 ROUNDS=3 scripts/with-postgres.sh bench/pages.sh
#       # both served side by side, each page measured on one then the other (the order
#       # alternating by round), so that the machine's drift hits both alike; ends with each
#       # page's PostgreSQL / SQLite ratio per round
#
# Knobs: PATIENTS=1000 LABS=50 DURATION=15 WARMUP=3 CONNECTIONS=16 WORKERS=2 ROUNDS=1 BOTH=
# Prints one line per page, and one for the JSON API's lab list with alice's bearer token:
# "backend page req/s p50 p99 non-2xx". Loopback only; stops what it starts.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
PATIENTS=${PATIENTS:-1000}
LABS=${LABS:-50}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-16}
WORKERS=${WORKERS:-2}
ROUNDS=${ROUNDS:-1}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install -y wrk)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portal-pages.XXXXXX")
PIDS=""
cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

export PORTAL_ENV=development
export SECRET_KEY=bench-secret-key-not-for-production
export ATTACHMENT_KEY=bench-attachment-key-not-for-production
export TOTP_KEY=bench-totp-key-not-for-production
export AUDIT_KEY=bench-audit-key-not-for-production
export MAIL_DIR=$WORK/mail

if [ -n "${BOTH:-}" ]; then
    [ -n "${TEST_DATABASE_URL:-}" ] || { echo "bench: BOTH=1 runs under scripts/with-postgres.sh" >&2; exit 2; }
    URLS="sqlite:///$WORK/bench.db $TEST_DATABASE_URL"
else
    URLS=${TEST_DATABASE_URL:-sqlite:///$WORK/bench.db}
fi

free_port() { "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

backend_of() { local b=${1%%:*}; echo "${b%%+*}"; }

# Seed one database, serve it, sign in: sets BASE_<backend>, ALICE_, CHEN_, TOKEN_, and the
# records the pages show (alice's newest HbA1c, her newest thread, her patient id).
serve() {
    local url=$1 backend
    backend=$(backend_of "$url")
    export DATABASE_URL=$url AUDIT_CHECKPOINT_DIR=$WORK/checkpoints-$backend
    echo "bench: seeding $PATIENTS patients x $LABS results into $backend" >&2
    "$BIN/flask" --app wsgi db upgrade >/dev/null 2>&1
    "$BIN/flask" --app wsgi demo seed --patients "$PATIENTS" --labs-per-patient "$LABS" >/dev/null
    # As after any bulk load: fresh planner statistics, and on SQLite the write-ahead log folded
    # into the database (otherwise the first pages measured read through a log of a million rows).
    "$BIN/python" - <<'EOF'
from sqlalchemy import text

from portal import create_app
from portal.extensions import db

with create_app().app_context():
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    if db.engine.dialect.name == "sqlite":  # outside any transaction, or SQLite refuses
        raw = db.engine.raw_connection()
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
EOF
    local records
    records=$("$BIN/python" - <<'EOF'
from sqlalchemy import select

from portal import create_app
from portal.access import unscoped
from portal.extensions import db
from portal.models import Conversation, LabResult, PatientProfile, User

app = create_app()
with app.app_context():
    s = db.session
    pid = s.scalar(
        unscoped(
            select(PatientProfile.id).join(User).where(User.email == "alice@example.org"),
            "bench: whose pages",
        )
    )
    result = s.scalar(
        unscoped(
            select(LabResult.id)
            .where(LabResult.patient_id == pid, LabResult.test_code == "4548-4")
            .order_by(LabResult.id.desc())
            .limit(1),
            "bench: a result with a trend",
        )
    )
    thread = s.scalar(
        unscoped(
            select(Conversation.id)
            .where(Conversation.patient_id == pid)
            .order_by(Conversation.id.desc())
            .limit(1),
            "bench: a thread",
        )
    )
    print(result, thread, pid)
EOF
)
    local port base
    port=$(free_port)
    "$BIN/gunicorn" --no-control-socket -w "$WORKERS" -k sync -b "127.0.0.1:$port" \
        --log-level warning --chdir "$PWD/bench" --pythonpath "$PWD" floor_app:app \
        >"$WORK/gunicorn-$backend.log" 2>&1 &
    PIDS="$PIDS $!"
    "$BIN/flask" --app wsgi worker >"$WORK/worker-$backend.log" 2>&1 &
    PIDS="$PIDS $!"
    base=http://127.0.0.1:$port
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$base/login" 2>/dev/null && break
        sleep 0.1
    done
    printf -v "BASE_$backend" '%s' "$base"
    printf -v "RECORDS_$backend" '%s' "$records"
    printf -v "ALICE_$backend" '%s' "$("$BIN/python" bench/session_cookie.py "$base" alice@example.org)"
    printf -v "CHEN_$backend" '%s' "$("$BIN/python" bench/session_cookie.py "$base" dr.chen@example.org)"
    # alice's bearer token, for the JSON API's lab list (the same list as /my/lab-results).
    printf -v "TOKEN_$backend" '%s' "$(curl -fsS -H 'Content-Type: application/json' \
        -d '{"email": "alice@example.org", "password": "Demo-Portal-2026!"}' "$base/api/v1/auth/token" |
        "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
}

measure() {  # $1: base URL  $2: header  $3: path -> "req/s p50 p99 non-2xx"
    wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "$2" "$1$3" >/dev/null 2>&1 || true
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency -H "$2" "$1$3" |
        awk '/^Requests\/sec/ {rps=$2} $1 == "50%" {p50=$2} $1 == "99%" {p99=$2}
             /Non-2xx or 3xx/ {bad=$5}
             END {printf "%s %s %s %s\n", rps, p50, p99, (bad == "" ? 0 : bad)}'
}

# One page on one backend; its line is printed and kept for the summary. $1: backend, $2: name
# of the page (the same on both backends), $3: who ("alice", "chen", "token").
page() {
    local backend=$1 name=$2 who=$3 var base path header result thread patient
    var=BASE_$backend
    base=${!var}
    var=RECORDS_$backend
    read -r result thread patient <<<"${!var}"
    path=${name//<result>/$result}
    path=${path//<thread>/$thread}
    path=${path//<patient>/$patient}
    var=${who^^}_$backend  # ALICE_, CHEN_ or TOKEN_ of this backend (set by `serve`)
    if [ "$who" = token ]; then header="Authorization: Bearer ${!var}"; else header="Cookie: ${!var}"; fi
    local line
    line=$(printf '%-8s %-28s %10s %10s %10s %8s' "$backend" "$name" $(measure "$base" "$header" "$path"))
    echo "$line"
    echo "$ROUND $line" >>"$WORK/lines"
}

# The pages, their reader, in order; the floor (bench/floor_app.py: the anchors' minimal page
# plus the signed-in scoped read, then plus its audit entry) last.
PAGES="/my/:alice /my/lab-results:alice /my/lab-results/<result>:alice /my/messages/<thread>:alice
/staff/patients:chen /staff/patients/<patient>:chen
/api/v1/patients/<patient>/lab-results?limit=50:token /floor/signed-in:alice /floor/audited:alice"

BACKENDS=""
for url in $URLS; do
    serve "$url"
    BACKENDS="$BACKENDS $(backend_of "$url")"
done
: >"$WORK/lines"
echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg),$BACKENDS, gunicorn sync x$WORKERS + worker, wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s)" >&2
printf '%-8s %-28s %10s %10s %10s %8s\n' backend page "req/s" p50 p99 non-2xx
for ROUND in $(seq "$ROUNDS"); do
    order=$BACKENDS
    if [ $((ROUND % 2)) -eq 0 ]; then order=$(echo "$BACKENDS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
    for entry in $PAGES; do
        for backend in $order; do
            page "$backend" "${entry%:*}" "${entry##*:}"
        done
    done
done

if [ -n "${BOTH:-}" ]; then
    echo
    echo "PostgreSQL / SQLite, per round:"
    awk '{rps[$1, $2, $3] = $4; if (!($3 in seen)) {seen[$3] = 1; order[++n] = $3}; if ($1 > rounds) rounds = $1}
         END {for (i = 1; i <= n; i++) {p = order[i]; line = sprintf("%-44s", p)
                for (r = 1; r <= rounds; r++) line = line sprintf(" %5.2f", rps[r, "postgresql", p] / rps[r, "sqlite", p])
                print line}}' "$WORK/lines"
fi
for url in $URLS; do
    export DATABASE_URL=$url AUDIT_CHECKPOINT_DIR=$WORK/checkpoints-$(backend_of "$url")
    "$BIN/flask" --app wsgi audit seal >/dev/null
    "$BIN/flask" --app wsgi audit verify >&2
done
