#!/usr/bin/env bash
# CI, first step: make sure the PostgreSQL server dbscope's tests use answers, and that the
# PostgreSQL server binaries (initdb, pg_ctl) for postgresql+proc:// are installed.
#
#   .ci/ensure-postgres.sh
#
# The tests connect to ${DBSCOPE_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
# (tests/pgsupport.py). When that URL is set, this script only checks that it answers.
# Otherwise, in order, stopping at the first step that gives a server answering on
# 127.0.0.1:5432 where `postgres` logs in without a password:
#   1. a server already answers: say so and exit (quick, changes nothing);
#   2. PostgreSQL is not installed: apt-get install postgresql (root, or sudo -n);
#   3. a cluster configured for port 5432 exists: start it with pg_ctlcluster;
#   4. none does: create one (pg_createcluster) for the newest installed version, listening
#      on 127.0.0.1:5432 with trust authentication for local connections (CI only!), start it.
# Then it waits (bounded) until the server answers. It never stops or reconfigures a cluster
# it did not create. Exit status 0: the server answers; 1: it could not, with the reason.
set -euo pipefail

HOST=127.0.0.1
PORT="${DBSCOPE_CI_PG_PORT:-5432}" # another port only to try this script out
URL="postgresql://postgres@${HOST}:${PORT}/postgres"
WAIT_SECONDS=60

SCRIPT=ensure-postgres
AS_ROOT_ADVICE="run this script as root, or start a PostgreSQL server on ${HOST}:${PORT} yourself"
# shellcheck source=.ci/common.sh
. "$(dirname "$0")/common.sh"

answers() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$HOST" -p "$PORT" -t 2; }
logs_in() { psql "$1" -X -A -t -q -c 'SELECT 1' >/dev/null 2>&1; }
server_version() { psql "$1" -X -A -t -q -c 'SHOW server_version' 2>/dev/null || echo '?'; }
newest_version() {
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$dir" ] || continue
        dir="${dir#/usr/lib/postgresql/}"
        dir="${dir%%/*}"
        if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$best" "$dir" | sort -V | tail -n 1)" = "$dir" ]; then
            best="$dir"
        fi
    done
    echo "$best"
}

# --- a server named by the test suite's own setting: only check it ---
if [ -n "${DBSCOPE_TEST_PG_URL:-}" ]; then
    command -v psql >/dev/null 2>&1 || die "psql is not installed, so DBSCOPE_TEST_PG_URL cannot be checked; install postgresql-client"
    export PGCONNECT_TIMEOUT=5
    logs_in "$DBSCOPE_TEST_PG_URL" ||
        die "DBSCOPE_TEST_PG_URL is set but the server it names does not answer or refuses the login: $(psql "$DBSCOPE_TEST_PG_URL" -X -c 'SELECT 1' 2>&1 | head -n 1)"
    say "the server named by DBSCOPE_TEST_PG_URL answers; nothing to do"
    exit 0
fi
export PGCONNECT_TIMEOUT=5

# --- 1. already running ---
if answers && RUNNING_VERSION="$(psql "$URL" -X -A -t -q -c 'SHOW server_version' 2>/dev/null)"; then
    say "PostgreSQL ${RUNNING_VERSION} already answers on ${HOST}:${PORT}; nothing to do"
    exit 0
fi
if answers; then
    die "a server answers on ${HOST}:${PORT} but 'postgres' cannot log in without a password ($(psql "$URL" -X -c 'SELECT 1' 2>&1 | head -n 1)). This script does not reconfigure a server it did not create: allow it in pg_hba.conf (host all postgres 127.0.0.1/32 trust), or set DBSCOPE_TEST_PG_URL to a URL that logs in"
fi

# --- 2. install ---
VERSION="$(newest_version)"
if [ -z "$VERSION" ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "PostgreSQL is not installed and there is no apt-get; install the PostgreSQL server with this system's package manager (dnf install postgresql-server, apk add postgresql, ...) and run this script again"
    say "PostgreSQL is not installed: apt-get install postgresql"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    VERSION="$(newest_version)"
    [ -n "$VERSION" ] || die "apt-get installed postgresql but no server binaries appeared under /usr/lib/postgresql/*/bin"
    say "installed PostgreSQL ${VERSION}"
fi
command -v pg_lsclusters >/dev/null 2>&1 ||
    die "PostgreSQL ${VERSION} is installed but not Debian's cluster tools (pg_lsclusters, pg_ctlcluster); start a server on ${HOST}:${PORT} yourself, with 'postgres' allowed to log in without a password"

# --- 3. a cluster for this port, or 4. a new one ---
# pg_lsclusters -h: version cluster port status owner data-directory log-file
CLUSTER_VERSION="" CLUSTER_NAME="" CLUSTER_STATUS=""
while read -r ver name port status _; do
    if [ "$port" = "$PORT" ]; then
        CLUSTER_VERSION="$ver" CLUSTER_NAME="$name" CLUSTER_STATUS="$status"
        break
    fi
done < <(pg_lsclusters -h 2>/dev/null)

CREATED=0
if [ -z "$CLUSTER_NAME" ]; then
    CLUSTER_VERSION="$VERSION"
    CLUSTER_NAME=main
    if [ -d "/etc/postgresql/${VERSION}/main" ]; then
        CLUSTER_NAME=dbscope_ci # main exists on another port: leave it alone
    fi
    say "no cluster is configured for port ${PORT}: creating ${CLUSTER_VERSION}/${CLUSTER_NAME}"
    as_root pg_createcluster --port "$PORT" "$CLUSTER_VERSION" "$CLUSTER_NAME" >/dev/null
    CONF="/etc/postgresql/${CLUSTER_VERSION}/${CLUSTER_NAME}"
    # A CI database: trust local logins so the tests' postgres@127.0.0.1 URL needs no password.
    as_root sh -c "printf '%s\n' \"listen_addresses = '${HOST}'\" 'port = ${PORT}' 'autovacuum = off' > '${CONF}/conf.d/90-dbscope-ci.conf'"
    as_root sh -c "{ printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust'; cat '${CONF}/pg_hba.conf'; } > '${CONF}/pg_hba.conf.new' && mv '${CONF}/pg_hba.conf.new' '${CONF}/pg_hba.conf' && chown postgres:postgres '${CONF}/pg_hba.conf' && chmod 640 '${CONF}/pg_hba.conf'"
    CREATED=1
    CLUSTER_STATUS=down
fi

if [ "$CLUSTER_STATUS" = "online" ]; then
    die "cluster ${CLUSTER_VERSION}/${CLUSTER_NAME} is online and configured for port ${PORT}, but nothing answers on ${HOST}:${PORT}; check listen_addresses in /etc/postgresql/${CLUSTER_VERSION}/${CLUSTER_NAME}/ and its log: $(pg_lsclusters -h | awk -v n="$CLUSTER_NAME" -v v="$CLUSTER_VERSION" '$1==v && $2==n {print $7}')"
fi
say "starting cluster ${CLUSTER_VERSION}/${CLUSTER_NAME}: pg_ctlcluster --skip-systemctl-redirect ${CLUSTER_VERSION} ${CLUSTER_NAME} start"
as_root pg_ctlcluster --skip-systemctl-redirect "$CLUSTER_VERSION" "$CLUSTER_NAME" start ||
    die "pg_ctlcluster could not start ${CLUSTER_VERSION}/${CLUSTER_NAME}; its log: /var/log/postgresql/postgresql-${CLUSTER_VERSION}-${CLUSTER_NAME}.log"

# --- wait until it answers ---
for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
    answers && break
    sleep 0.25
done
answers || die "cluster ${CLUSTER_VERSION}/${CLUSTER_NAME} was started but does not answer on ${HOST}:${PORT} after ${WAIT_SECONDS} s; see /var/log/postgresql/postgresql-${CLUSTER_VERSION}-${CLUSTER_NAME}.log"
logs_in "$URL" ||
    die "the server answers on ${HOST}:${PORT} but 'postgres' cannot log in without a password ($(psql "$URL" -X -c 'SELECT 1' 2>&1 | head -n 1)); allow it in /etc/postgresql/${CLUSTER_VERSION}/${CLUSTER_NAME}/pg_hba.conf (host all postgres 127.0.0.1/32 trust)"
if [ "$CREATED" -eq 1 ]; then
    say "created and started PostgreSQL $(server_version "$URL") (cluster ${CLUSTER_VERSION}/${CLUSTER_NAME}); it answers on ${HOST}:${PORT}"
else
    say "started PostgreSQL $(server_version "$URL") (cluster ${CLUSTER_VERSION}/${CLUSTER_NAME}); it answers on ${HOST}:${PORT}"
fi
