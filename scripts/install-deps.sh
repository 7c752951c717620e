#!/usr/bin/env bash
# Installs, from Debian's packages, whatever of pvengine's build and test dependencies this machine
# lacks; does nothing when all is there. Needs root (or sudo) only when something is missing.
set -euo pipefail

required=(cmake g++ ninja-build pkg-config libhdf5-dev doctest-dev python3 r-base-core)
# Optional: test oracles, interop and SVG-rendering checks use them when present (they skip without them).
optional=(python3-numpy python3-scipy python3-anndata python3-pandas python3-pip python3-setuptools python3-wheel make hdf5-tools librsvg2-bin)

missing=()
for pkg in "${required[@]}" "${optional[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
