#!/usr/bin/env bash
# Adds apt components (e.g. contrib non-free) to this Debian system's own sources, in either format: the deb822
# file of Debian's images (/etc/apt/sources.list.d/debian.sources) or a one-line sources.list (debootstrap's).
# CUDA LibTorch is in contrib and the CUDA toolkit in non-free; no other repository is added.
#   deploy/apt-components.sh COMPONENT...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMPONENT..." >&2; exit 2; }
for component in "$@"; do
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -i -E "/^Components:/{/[[:space:]]$component([[:space:]]|\$)/!s/\$/ $component/}" \
      /etc/apt/sources.list.d/debian.sources
  fi
  if [ -f /etc/apt/sources.list ]; then
    sed -i -E "/^deb[[:space:]]/{/[[:space:]]$component([[:space:]]|\$)/!s/\$/ $component/}" /etc/apt/sources.list
  fi
done
