#!/usr/bin/env bash
# Makes a Debian base image locally, for a Docker host that cannot pull debian:trixie from a registry: a minimal
# debootstrap of the suite from a Debian mirror, imported with `docker import`. Needs root and debootstrap.
#   deploy/debian-image.sh TAG [SUITE]       e.g. deploy/debian-image.sh facet-base/debian:trixie trixie
# DEBIAN_MIRROR sets the mirror (default: the first Debian URL in this machine's apt sources). The image is like
# Debian's own: apt sources for SUITE and SUITE-updates (main), no recommends, apt lists removed.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 TAG [SUITE]" >&2; exit 2; }
tag=$1
suite=${2:-trixie}
docker=${DOCKER:-docker}
mirror=$(bash "$(dirname "$0")/debian-mirror.sh")
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
root=$(mktemp -d /var/tmp/facet-debian-image.XXXXXX)
trap 'rm -rf "$root" "$root.log"' EXIT
echo "debian-image: debootstrap $suite from $mirror"
debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" > "$root/etc/apt/sources.list"
printf 'APT::Install-Recommends "false";\n' > "$root/etc/apt/apt.conf.d/99no-recommends"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" -c . | "$docker" import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
echo "debian-image: $tag ($("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}'))"
