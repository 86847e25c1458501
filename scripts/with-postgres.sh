#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL 15 cluster, then stop and delete the cluster.
#
#   scripts/with-postgres.sh pytest -m "not browser"
#
# The command sees TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:<port>/portal_test.
# The cluster lives in a temporary directory, listens on a free port of 127.0.0.1 only, trusts
# local connections and runs with fsync off: it is for tests, never for data you want to keep.
#
# As root, PostgreSQL refuses to run, so the server runs as the `postgres` user; postgresql-15 is
# installed with apt when missing. As any other user the server runs as that user, and a missing
# PostgreSQL is reported with exit status 75 (EX_TEMPFAIL) so callers can tell "no PostgreSQL"
# from "the command failed".
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_UNAVAILABLE=75

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

if [ ! -x "$PGBIN/pg_ctl" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "with-postgres: installing postgresql-15 (apt)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
    else
        echo "with-postgres: $PGBIN/pg_ctl not found and not root, so PostgreSQL 15 cannot be" \
             "installed here (as root: apt-get install postgresql-15)." >&2
        exit "$PG_UNAVAILABLE"
    fi
fi

# PostgreSQL will not run as root: run the server tools as `postgres` then, else as ourselves.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        # cd / so the tools do not warn that they cannot read root's working directory.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

free_port() {
    local py
    for py in python3 python .venv/bin/python; do
        if command -v "$py" >/dev/null 2>&1; then
            "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
            return
        fi
    done
    echo "with-postgres: no python to pick a free port" >&2
    return 1
}

if [ "$(id -u)" -eq 0 ]; then
    # /tmp, not $TMPDIR: the postgres user must be able to reach the directory.
    PGROOT=$(mktemp -d /tmp/portal-pg.XXXXXX)
    chown postgres:postgres "$PGROOT"
else
    PGROOT=$(mktemp -d "${TMPDIR:-/tmp}/portal-pg.XXXXXX")
fi

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    if [ -f "$PGROOT/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PGROOT"
}
trap cleanup EXIT
# Turn signals into an ordinary exit so the EXIT trap removes the cluster.
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg "$PGBIN/initdb" -D "$PGROOT/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$PGROOT/initdb.log" 2>&1 || {
    echo "with-postgres: initdb failed:" >&2
    cat "$PGROOT/initdb.log" >&2
    exit 1
}

pg_options() {
    echo "-p $PGPORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
}

# Another process may take the port between choosing and binding it: try a few times.
started=""
for _ in 1 2 3; do
    PGPORT=$(free_port)
    if as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 60 \
        -o "$(pg_options)" start >/dev/null 2>&1; then
        started=1
        break
    fi
done
if [ -z "$started" ]; then
    echo "with-postgres: the server did not start; its log:" >&2
    cat "$PGROOT/server.log" >&2 || true
    exit 1
fi

"$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres portal_test

export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/portal_test"
# What a test needs to stop and start this server (the database outage test, bench/faults.py).
export TEST_PG_CTL="$PGBIN/pg_ctl" TEST_PGDATA="$PGROOT/data"
TEST_PG_OPTIONS=$(pg_options)
export TEST_PG_OPTIONS
if [ "$(id -u)" -eq 0 ]; then export TEST_PG_RUN_AS=postgres; fi
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT" >&2

# Not exec: the EXIT trap must run after the command to remove the cluster.
set +e
"$@"
status=$?
set -e
exit "$status"
