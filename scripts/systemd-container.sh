#!/usr/bin/env bash
# Start (or reuse) a Debian container with systemd as PID 1, the way this machine allows it (no
# --privileged: SYS_ADMIN, the host's cgroups, tmpfs on /run), and wait until systemd has booted.
#
#   scripts/systemd-container.sh NAME IMAGE [extra docker run options...]
set -euo pipefail
container=$1 image=$2
shift 2

if ! docker container inspect "$container" >/dev/null 2>&1; then
    echo "==> Starting $container from $image"
    docker run --detach --name "$container" --hostname "$container" \
        --cap-add SYS_ADMIN --cgroupns host \
        --volume /sys/fs/cgroup:/sys/fs/cgroup:rw \
        --tmpfs /run --tmpfs /run/lock \
        "$@" "$image" /lib/systemd/systemd >/dev/null
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
