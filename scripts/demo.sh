#!/usr/bin/env bash
# Start (or reuse) a systemd container as the local target, run site.yml against it through
# inventories/local, then fetch the page through nginx, as a user of the host would.
set -euo pipefail
container=$1 image=$2 port=$3

if ! docker container inspect "$container" >/dev/null 2>&1; then
    echo "==> Starting $container from $image (nginx published on 127.0.0.1:$port)"
    docker run --detach --name "$container" --hostname "$container" \
        --cap-add SYS_ADMIN --cgroupns host \
        --volume /sys/fs/cgroup:/sys/fs/cgroup:rw \
        --tmpfs /run --tmpfs /run/lock \
        --publish "127.0.0.1:$port:80" \
        "$image" /lib/systemd/systemd >/dev/null
elif [ "$(docker container inspect --format '{{.State.Running}}' "$container")" != true ]; then
    docker start "$container" >/dev/null
fi

echo "==> Waiting for systemd in $container to finish booting"
# Until systemd has opened its bus, systemctl cannot even ask: retry for a few seconds.
state=
for _ in $(seq 1 30); do
    state=$(docker exec "$container" timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
    [ -n "$state" ] && break
    sleep 1
done
case "$state" in
    running|degraded) ;;
    *) echo "systemd in $container did not boot: $state" >&2; exit 1 ;;
esac

echo "==> ansible-playbook playbooks/site.yml -i inventories/local"
ansible-playbook playbooks/site.yml -i inventories/local

echo "==> GET http://127.0.0.1:$port/ (nginx -> $container's Gunicorn socket -> Flask)"
curl --silent --show-error --fail --retry 5 --retry-connrefused "http://127.0.0.1:$port/"
echo
curl --silent --show-error --fail "http://127.0.0.1:$port/healthz"
echo
