#!/usr/bin/env bash
# A Debian chroot made only from Debian's packages, with this checkout mounted at /src (and ../shared at
# /shared, read-only, when it exists), for building and testing facet on another Debian release.
#   tests/debian13/chroot.sh ROOT COMMAND...    runs COMMAND (a bash command line) in ROOT as root
# ROOT is made with debootstrap on first use (about a minute) and kept for the next run. Everything this script
# mounts is unmounted when it exits, whatever happens. Settings: DEBIAN_SUITE (default trixie), DEBIAN_MIRROR
# (default: the first Debian URL in this machine's apt sources).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 ROOT COMMAND..." >&2; exit 2; }
root=$1
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
suite=${DEBIAN_SUITE:-trixie}
[ "$(id -u)" -eq 0 ] || { echo "chroot.sh: needs root (debootstrap, mount, chroot)" >&2; exit 1; }


if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
  mirror=$(bash "$src/deploy/debian-mirror.sh")
  echo "chroot.sh: debootstrap $suite into $root from $mirror"
  debootstrap --variant=minbase "$suite" "$root" "$mirror"
  # The suite's updates and security fixes, as a Debian 13 machine would have them.
  printf 'deb %s %s main contrib\ndeb %s %s-updates main contrib\n' "$mirror" "$suite" "$mirror" "$suite" \
    > "$root/etc/apt/sources.list"
  # Packages installed here must not start their daemons (prometheus, docker) on this machine.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
fi

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_at() {  # mount ARGS... TARGET: mount, and remember TARGET for cleanup
  local target=${*: -1}
  mkdir -p "$target"
  mount "$@"
  mounted+=("$target")
}
mount_at -t proc proc "$root/proc"
mount_at -t sysfs sysfs "$root/sys"
mount_at --bind /dev "$root/dev"
mount_at -t devpts devpts "$root/dev/pts"
mount_at -t tmpfs tmpfs "$root/dev/shm"
mount_at --bind "$src" "$root/src"
if [ -d "$src/../shared" ]; then
  mount_at --bind "$src/../shared" "$root/shared"
  mount -o remount,bind,ro "$root/shared"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" /bin/bash -c "cd /src && $*"
