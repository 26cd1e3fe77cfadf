#!/usr/bin/env bash
# Build the systemd-enabled Debian image that Molecule and `make demo` run, from Debian's packages
# (no container registry is reachable). The image is cached: it is rebuilt only when missing.
#
#   scripts/build-image.sh [DISTRO]     DISTRO: 11, 12 (default) or 13
#
# It holds what a freshly installed minimal Debian server has that Ansible needs: systemd as PID 1,
# python3, sudo, dbus and CA certificates. Everything the role installs is left out on purpose, so
# every scenario proves the role on a bare host.
set -euo pipefail

distro=${1:-${MOLECULE_DISTRO:-12}}
case "$distro" in
    11) suite=bullseye ;;
    12) suite=bookworm ;;
    13) suite=trixie ;;
    *) echo "unknown Debian release '$distro': use 11, 12 or 13" >&2; exit 2 ;;
esac
image="flask-gunicorn-test/debian:$distro"

if docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi

# The mirror comes from this machine's own apt configuration: no host name is written here.
mirror=$(sed -n 's|^URIs: *\([^ ]*/debian\)/*$|\1|p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's|^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*/debian\)/* .*|\2|p' /etc/apt/sources.list 2>/dev/null | head -n 1)
fi
if [ -z "$mirror" ]; then
    echo "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2
    exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "==> Installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

rootfs=$(mktemp -d /var/tmp/flask-gunicorn-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "==> Building $image: debootstrap $suite (takes about a minute)"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,sudo,ca-certificates,procps,iproute2 \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"

# This network intercepts TLS to the Python package index: the container trusts what the host
# trusts. Kept under /usr/local/share so that update-ca-certificates on the target keeps it.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/host-ca-bundle.crt"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"

# Units that cannot work in a container would only mark the system degraded.
for unit in systemd-remount-fs.service getty.target console-getty.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-firstboot.service; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
: >"$rootfs/etc/machine-id"
rm -f "$rootfs"/var/cache/apt/archives/*.deb

tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker' \
    - "$image" >/dev/null
echo "==> Built $image"
