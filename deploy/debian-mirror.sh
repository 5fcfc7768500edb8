#!/usr/bin/env bash
# Prints the Debian mirror to make images and chroots from: DEBIAN_MIRROR when set, else the first Debian URL in
# this machine's apt sources (either format), else deb.debian.org.
set -uo pipefail
if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; exit 0; fi
url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -oE '(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' | awk '{print $2}' | head -n 1)
echo "${url:-http://deb.debian.org/debian}"
