#!/usr/bin/env bash
# What `make test` does: install what the tests need, run the whole suite on SQLite, then the
# non-browser tests on a throwaway PostgreSQL 15. Extra arguments go to both pytest runs.
#
# Works on a bare Debian 12 machine as root (CI: fresh clone, CI=true, no stdin), where it
# installs Debian's chromium and postgresql-15 when missing, and for a developer without root,
# who gets the browser tests or the PostgreSQL run skipped, with a message, when those are missing.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

PYTHON=${PYTHON:-python3}
VENV=.venv
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export DEBIAN_FRONTEND=noninteractive

is_root() { [ "$(id -u)" -eq 0 ]; }
is_ci() { [ "${CI:-}" = "true" ]; }
loud() { printf '\n!! %s\n\n' "$*" >&2; }

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        apt-get update -qq || return 1
        apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# -- Python environment ---------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 && is_root; then
        echo "-- installing python3-venv (apt)"
        apt_install python3-venv || { loud "could not install python3-venv"; exit 1; }
    fi
    echo "-- creating $VENV"
    "$PYTHON" -m venv "$VENV" || { loud "could not create $VENV with $PYTHON"; exit 1; }
fi

echo "-- installing the project with its dev extras into $VENV"
pip_log=$(mktemp "${TMPDIR:-/tmp}/portal-pip.XXXXXX")
# pip's log goes to a file: the machine's pip config makes it print harmless warnings.
if ! "$VENV/bin/python" -m pip install -q -e '.[dev]' >"$pip_log" 2>&1; then
    cat "$pip_log" >&2
    rm -f "$pip_log"
    loud "pip install -e '.[dev]' failed (log above)"
    exit 1
fi
rm -f "$pip_log"

# -- Browser --------------------------------------------------------------------------------------
browser_args=()
if [ ! -x "$CHROMIUM" ]; then
    if is_root && [ "$CHROMIUM" = /usr/bin/chromium ]; then
        echo "-- installing Debian's chromium (apt)"
        apt_install chromium || { loud "could not install chromium"; exit 1; }
    else
        loud "$CHROMIUM not found and cannot be installed without root: browser tests are SKIPPED." \
             "Install it with: sudo apt-get install --no-install-recommends chromium" \
             "(or point CHROMIUM_PATH at a chromium binary)."
        browser_args=(-m "not browser")
    fi
fi

# pytest exits 5 when it collected no test: a suite that ran nothing has not passed.
run_pytest() {
    "$VENV/bin/python" -m pytest "$@"
    local status=$?
    if [ "$status" -eq 5 ]; then
        loud "pytest collected no tests"
    fi
    return "$status"
}

# -- SQLite ---------------------------------------------------------------------------------------
echo
echo "== pytest on SQLite =="
# The tests make their own SQLite files in temporary directories when this is unset.
# The slowest tests are named (--durations), so that the suite's time can be kept in view.
# This run also measures the coverage of portal/ (pyproject's [tool.coverage.*]; the data stays
# in .coverage: `.venv/bin/coverage report` or `coverage html` for file by file) and fails under
# its floor (`fail_under`). The floor is for the whole run: with arguments of your own or without
# the browser tests the total is printed and not checked.
cov_args=(--cov=portal --cov-report=)
partial=""
if [ "$#" -gt 0 ] || [ "${#browser_args[@]}" -gt 0 ]; then
    partial=1
    cov_args+=(--cov-fail-under=0)
fi
(unset TEST_DATABASE_URL; run_pytest --durations=15 "${cov_args[@]}" "${browser_args[@]}" "$@")
sqlite_status=$?
if [ -n "$partial" ] && [ -f .coverage ]; then
    echo "Coverage of portal/ over this partial run: $("$VENV/bin/coverage" report --format=total --fail-under=0)% (the floor is not checked)"
fi

# -- Any day of the week -------------------------------------------------------------------------
# No test may depend on the weekday or hour it runs: the non-browser suite runs again with the
# clock pinned (TEST_CLOCK, tests/conftest.py) to each day of one week, at an hour in clinic
# hours and one outside them. The browser journeys already ran on today's clock.
#
# Each day's run is one process on one core, so the days run two at a time, each into its own
# log and temporary folder, printed in order afterwards. The tests against a served app
# (`served`: sockets, concurrent writers, real HTTP) take most of a day's time and are the ones
# timing matters to, so they are not run side by side: they run alone, on three of the moments
# (a weekday in clinic hours, Saturday night, just past Sunday midnight, where the slot and
# cut-off rules have broken before).
echo
echo "== pytest on SQLite, clock pinned to each day of a week =="
week_dir=$(mktemp -d "${TMPDIR:-/tmp}/portal-week.XXXXXX")
side_by_side=$(( $(nproc) >= 2 ? 2 : 1 ))
run_day() {  # $1: the moment, $2: the marker expression; the rest go to pytest
    local moment=$1 marks=$2 name
    shift 2
    name="$moment.$([ "$marks" = "$SERVED" ] && echo served-app-tests || echo rest-of-the-suite)"
    (unset TEST_DATABASE_URL; TEST_CLOCK=$moment run_pytest -q -m "$marks" \
        --basetemp "$week_dir/$name.tmp" "$@" >"$week_dir/$name.log" 2>&1
        echo $? >"$week_dir/$name.rc")
}
REST="not browser and not served"
SERVED="served and not browser"
days=(2026-12-07T08:30 2026-12-08T13:00 2026-12-09T17:45 2026-12-10T07:15
      2026-12-11T11:00 2026-12-12T23:30 2026-12-13T00:05)
served_days=(2026-12-07T08:30 2026-12-12T23:30 2026-12-13T00:05)
for i in "${!days[@]}"; do
    run_day "${days[$i]}" "$REST" "$@" &
    if [ $(( (i + 1) % side_by_side )) -eq 0 ]; then wait; fi
done
wait
for moment in "${served_days[@]}"; do
    run_day "$moment" "$SERVED" "$@"
done
week_status=0
for log in "$week_dir"/*.log; do
    name=$(basename "$log" .log)
    moment=${name%.*}
    echo "-- TEST_CLOCK=$moment ($(date -u -d "$moment" +%A)), the ${name##*.}"
    if [ "$(cat "$week_dir/$name.rc" 2>/dev/null)" = 0 ]; then
        tail -n 3 "$log"
    else
        # A failure is shown whole: which test, and why.
        awk '/= (FAILURES|ERRORS) =/ {shown = 1} shown' "$log" | tail -n 200
        tail -n 3 "$log"
        week_status=1
    fi
done
rm -rf "$week_dir"
if [ "$week_status" -ne 0 ]; then sqlite_status=1; fi

# -- PostgreSQL -----------------------------------------------------------------------------------
echo
echo "== pytest on PostgreSQL =="
pg_status=0
if [ ! -x "$PGBIN/pg_ctl" ] && ! is_root; then
    loud "PostgreSQL 15 is not installed ($PGBIN/pg_ctl missing) and we are not root:" \
         "the PostgreSQL run is SKIPPED. Install it with: sudo apt-get install postgresql-15"
    if is_ci; then
        pg_status=1
    fi
else
    # The browser tests drive the UI, which does not depend on the database engine.
    bash scripts/with-postgres.sh "$VENV/bin/python" -m pytest -m "not browser" "$@"
    pg_status=$?
    if [ "$pg_status" -eq 5 ]; then
        loud "pytest collected no tests"
    elif [ "$pg_status" -eq 75 ]; then
        loud "PostgreSQL could not be started: the PostgreSQL run did not happen"
        if ! is_ci; then
            pg_status=0
        fi
    fi
fi

echo
echo "== SQLite run: exit $sqlite_status; PostgreSQL run: exit $pg_status =="
if [ "$sqlite_status" -ne 0 ] || [ "$pg_status" -ne 0 ]; then
    exit 1
fi
