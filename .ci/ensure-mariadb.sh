#!/usr/bin/env bash
# CI: make sure the MariaDB server dbscope's tests use answers on 127.0.0.1:3306, where
# `root` logs in without a password (tests/mariadbsupport.py).
#
#   .ci/ensure-mariadb.sh
#
# When DBSCOPE_TEST_MARIADB_URL is set, the tests use that server and this script does
# nothing. Otherwise, in order, stopping at the first step that gives a server answering:
#   1. a server already answers: say so and exit (quick, changes nothing);
#   2. MariaDB is not installed: apt-get install mariadb-server (root, or sudo -n);
#   3. start a server of its own: a data directory made by mariadb-install-db (once) under
#      $DBSCOPE_CI_MARIADB_DIR (default /var/tmp/dbscope-ci-mariadb), and mariadbd listening on
#      127.0.0.1 only, with --no-defaults (the system's my.cnf sets user=mysql) and, as root,
#      --user=root; then allow root@127.0.0.1 without a password (CI only!).
# It waits (bounded) until the server answers. It never stops or reconfigures a server it
# did not start. Exit status 0: the server answers; 1: it could not, with the reason.
set -euo pipefail

HOST=127.0.0.1
PORT="${DBSCOPE_CI_MARIADB_PORT:-3306}" # another port only to try this script out
DIR="${DBSCOPE_CI_MARIADB_DIR:-/var/tmp/dbscope-ci-mariadb}"
WAIT_SECONDS=60

SCRIPT=ensure-mariadb
AS_ROOT_ADVICE="install MariaDB yourself, or start a server on ${HOST}:${PORT} where root logs in without a password"
# shellcheck source=.ci/common.sh
. "$(dirname "$0")/common.sh"
client() { command -v mariadb >/dev/null 2>&1 && echo mariadb || echo mysql; }
answers() { "$(client)" --no-defaults -h "$HOST" -P "$PORT" -u root --connect-timeout=2 -N -e 'SELECT VERSION()' 2>/dev/null; }

if [ -n "${DBSCOPE_TEST_MARIADB_URL:-}" ]; then
    say "DBSCOPE_TEST_MARIADB_URL is set: the tests use that server; nothing to do"
    exit 0
fi

# --- 1. already running ---
if VERSION="$(answers)"; then
    say "MariaDB ${VERSION} already answers on ${HOST}:${PORT}; nothing to do"
    exit 0
fi

# --- 2. install ---
if ! command -v mariadbd >/dev/null 2>&1 && ! [ -x /usr/sbin/mariadbd ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "MariaDB is not installed and there is no apt-get; install mariadb-server with this system's package manager and run this script again"
    say "MariaDB is not installed: apt-get install mariadb-server"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
fi
MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
[ -x "$MARIADBD" ] || die "mariadbd was not found after installing mariadb-server"

# --- 3. a server of our own ---
USER_ARGS=()
if [ "$(id -u)" -eq 0 ]; then USER_ARGS=(--user=root); fi
mkdir -p "$DIR"
if [ ! -d "$DIR/data/mysql" ]; then
    say "initialising a data directory in $DIR/data"
    mariadb-install-db --no-defaults "${USER_ARGS[@]}" --datadir="$DIR/data" \
        --auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1 ||
        die "mariadb-install-db failed; see $DIR/install.log"
fi
say "starting mariadbd on ${HOST}:${PORT} (data in $DIR/data, log in $DIR/server.log)"
nohup "$MARIADBD" --no-defaults "${USER_ARGS[@]}" --datadir="$DIR/data" --socket="$DIR/mariadb.sock" \
    --port="$PORT" --bind-address="$HOST" --skip-log-bin --innodb-flush-log-at-trx-commit=2 \
    --pid-file="$DIR/mariadb.pid" >"$DIR/server.log" 2>&1 &

for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
    [ -S "$DIR/mariadb.sock" ] && break
    sleep 0.25
done
[ -S "$DIR/mariadb.sock" ] || die "mariadbd did not start within ${WAIT_SECONDS} s; see $DIR/server.log"
# root over TCP from 127.0.0.1 is another account than root@localhost: allow it, as CI needs
"$(client)" --no-defaults -S "$DIR/mariadb.sock" -u root -e \
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
    die "could not allow root@127.0.0.1 on the new server; see $DIR/server.log"
VERSION="$(answers)" || die "mariadbd runs but root cannot log in on ${HOST}:${PORT}; see $DIR/server.log"
say "started MariaDB ${VERSION}; it answers on ${HOST}:${PORT}"
