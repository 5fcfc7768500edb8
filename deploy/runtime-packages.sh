#!/usr/bin/env bash
# Prints the Debian packages (name=version, as installed here) that own the shared libraries the given programs
# load, one per line, plus the data packages facet reads at run time. The Dockerfile's build stages write this list
# and its runtime stages install exactly it, so that an image carries the libraries its binaries were linked with,
# at the same versions, and nothing is listed by hand.
#   deploy/runtime-packages.sh PROGRAM...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM..." >&2; exit 2; }
# Haar cascades (face detection) and the CA roots (TLS to other servers) are read, not linked.
extra=(opencv-data ca-certificates)
{
  for program in "$@"; do
    # `ldd` lines: "libfoo.so.1 => /usr/lib/.../libfoo.so.1 (0x...)"; the dynamic loader and vdso have no "=>".
    ldd "$program" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
      real=$(readlink -f "$lib")
      # A library outside every package (cuDNN, which nvidia-cudnn downloads; the host's GPU driver) comes with the
      # package that fetches it or from the host: nothing to list.
      owner=$(dpkg-query -S "$real" 2>/dev/null || dpkg-query -S "$lib" 2>/dev/null) || continue
      echo "${owner%%:*}"
    done
  done
  printf '%s\n' "${extra[@]}"
} | sed 's/, .*//' | sort -u | while read -r package; do
  # Pinned to the version installed here; a data package the build stage lacks (ca-certificates) goes unpinned.
  status=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$package" 2>/dev/null || true)
  if [ "${status%% *}" = installed ]; then echo "$package=${status#* }"; else echo "$package"; fi
done
