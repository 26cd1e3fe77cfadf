#!/usr/bin/env bash
# Make sure a Docker engine answers: install docker.io and start dockerd in the background when it
# does not. CI machines start with the client only, so the project's set-up owns this step.
set -euo pipefail

log_file=${DOCKERD_LOG:-/var/log/dockerd-flask-gunicorn.log}

if docker info >/dev/null 2>&1; then
    exit 0
fi

echo "==> Docker engine not running: starting it (log: $log_file)"
if ! command -v dockerd >/dev/null 2>&1; then
    echo "==> Installing docker.io from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

setsid nohup dockerd >"$log_file" 2>&1 </dev/null &

for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "==> Docker engine is up"
        exit 0
    fi
    sleep 1
done
echo "Docker engine did not start within 60 s; last lines of $log_file:" >&2
tail -n 20 "$log_file" >&2
exit 1
