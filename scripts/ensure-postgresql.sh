#!/usr/bin/env bash
# Make sure Debian's PostgreSQL server binaries are on the host: the app's tests
# (app/tests/conftest.py) start a throwaway cluster of their own from them, in a temporary directory.
# Installed without the "main" cluster Debian's package would create and start: the host keeps no
# database service it did not have. The project's set-up owns this step, as for Docker.
set -euo pipefail

if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    exit 0
fi

echo "==> Installing Debian's PostgreSQL server binaries for the app's tests (no cluster)"
# postgresql-common reads this drop-in when the server package is configured; removed afterwards so
# that a later install on this host behaves as Debian's default again.
drop_in=/etc/postgresql-common/createcluster.d/flask-gunicorn-tests.conf
trap 'rm -f "$drop_in"' EXIT
install -d -m 0755 "$(dirname "$drop_in")"
echo 'create_main_cluster = false' >"$drop_in"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
