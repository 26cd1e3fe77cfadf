#!/usr/bin/env bash
# Start (or reuse) a systemd container as the local target, run site.yml against it through
# inventories/local, then fetch the page through nginx, as a user of the host would.
set -euo pipefail
container=$1 image=$2 port=$3

# nginx is published on 127.0.0.1:$port.
"$(dirname "$0")/systemd-container.sh" "$container" "$image" --publish "127.0.0.1:$port:80"

echo "==> ansible-playbook playbooks/site.yml -i inventories/local"
ansible-playbook playbooks/site.yml -i inventories/local

echo "==> GET http://127.0.0.1:$port/ (nginx -> $container's Gunicorn socket -> Flask)"
curl --silent --show-error --fail --retry 5 --retry-connrefused "http://127.0.0.1:$port/"
echo
curl --silent --show-error --fail "http://127.0.0.1:$port/healthz"
echo
