#!/usr/bin/env bash
# Installs Debian packages by name, running `apt-get update` once per
# machine; a no-op for packages already installed.
set -euo pipefail
missing=()
for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
stamp=/var/lib/apt/periodic/regcache-updated
if [ ! -e "$stamp" ]; then
    $sudo apt-get update -qq
    $sudo mkdir -p "$(dirname "$stamp")" && $sudo touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
