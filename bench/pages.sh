#!/usr/bin/env bash
# Issue 13's pages under the anchors' load: each audited, scoped page at wrk -t1 -c16 against
# gunicorn (sync x 2, like the anchors' minimal Flask) with the Procfile's worker beside it
# (it seals the audit entries the pages write). The app served is bench/floor_app.py: the
# portal's own, with two bench-only routes measured last (the floor under the pages). Run `../shared/anchors/parse_reference.sh`
# right before it and quote ratios to its minimal page, never the figures alone.
#
#   bench/pages.sh                              # SQLite in a temporary directory
#   scripts/with-postgres.sh bench/pages.sh     # PostgreSQL (uses TEST_DATABASE_URL)
#
# Knobs: PATIENTS=1000 LABS=50 DURATION=15 WARMUP=3 CONNECTIONS=16 WORKERS=2
# Prints one line per page, and one for the JSON API's lab list with alice's bearer token:
# "page req/s p50 p99 non-2xx". Loopback only; stops what it starts.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
PATIENTS=${PATIENTS:-1000}
LABS=${LABS:-50}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-16}
WORKERS=${WORKERS:-2}
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
export AUDIT_CHECKPOINT_DIR=$WORK/checkpoints
export MAIL_DIR=$WORK/mail
export DATABASE_URL=${TEST_DATABASE_URL:-sqlite:///$WORK/bench.db}
BACKEND=${DATABASE_URL%%:*}
BACKEND=${BACKEND%%+*}

echo "bench: seeding $PATIENTS patients x $LABS results into $BACKEND" >&2
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

# The records the pages show: alice's newest HbA1c (a result with its trend), her newest
# thread, her patient id (dr.chen's chart of her).
read -r RESULT THREAD PATIENT < <("$BIN/python" - <<'EOF'
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

free_port() { "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
"$BIN/gunicorn" --no-control-socket -w "$WORKERS" -k sync -b "127.0.0.1:$PORT" \
    --log-level warning --chdir "$PWD/bench" --pythonpath "$PWD" floor_app:app >"$WORK/gunicorn.log" 2>&1 &
PIDS="$PIDS $!"
"$BIN/flask" --app wsgi worker >"$WORK/worker.log" 2>&1 &
PIDS="$PIDS $!"
BASE=http://127.0.0.1:$PORT
for _ in $(seq 100); do
    curl -fsS -o /dev/null "$BASE/login" 2>/dev/null && break
    sleep 0.1
done
ALICE=$("$BIN/python" bench/session_cookie.py "$BASE" alice@example.org)
CHEN=$("$BIN/python" bench/session_cookie.py "$BASE" dr.chen@example.org)

# alice's bearer token, for the JSON API's lab list (the same list as /my/lab-results).
TOKEN=$(curl -fsS -H 'Content-Type: application/json' \
    -d '{"email": "alice@example.org", "password": "Demo-Portal-2026!"}' "$BASE/api/v1/auth/token" |
    "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])')

measure() {  # $1: header ("Cookie: ..." or "Authorization: ...")  $2: path -> "req/s p50 p99 non-2xx"
    wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "$1" "$BASE$2" >/dev/null 2>&1 || true
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency -H "$1" "$BASE$2" |
        awk '/^Requests\/sec/ {rps=$2} $1 == "50%" {p50=$2} $1 == "99%" {p99=$2}
             /Non-2xx or 3xx/ {bad=$5}
             END {printf "%s %s %s %s\n", rps, p50, p99, (bad == "" ? 0 : bad)}'
}

echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $BACKEND, gunicorn sync x$WORKERS + worker, wrk -t1 -c$CONNECTIONS -d${DURATION}s" >&2
printf '%-8s %-28s %10s %10s %10s %8s\n' backend page "req/s" p50 p99 non-2xx
for page in /my/ /my/lab-results "/my/lab-results/$RESULT" "/my/messages/$THREAD"; do
    printf '%-8s %-28s %10s %10s %10s %8s\n' "$BACKEND" "$page" $(measure "Cookie: $ALICE" "$page")
done
for page in /staff/patients "/staff/patients/$PATIENT"; do
    printf '%-8s %-28s %10s %10s %10s %8s\n' "$BACKEND" "$page" $(measure "Cookie: $CHEN" "$page")
done
API="/api/v1/patients/$PATIENT/lab-results?limit=50"
printf '%-8s %-28s %10s %10s %10s %8s\n' "$BACKEND" "API lab list (50)" $(measure "Authorization: Bearer $TOKEN" "$API")
# The floor (bench/floor_app.py): the anchors' minimal page plus the signed-in scoped read,
# then plus its audit entry.
for page in /floor/signed-in /floor/audited; do
    printf '%-8s %-28s %10s %10s %10s %8s\n' "$BACKEND" "$page" $(measure "Cookie: $ALICE" "$page")
done
"$BIN/flask" --app wsgi audit seal >/dev/null
"$BIN/flask" --app wsgi audit verify >&2
