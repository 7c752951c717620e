#!/usr/bin/env bash
# Set-up + the main job: installs what is missing, builds, and runs pvengine on its built-in
# default data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/env.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$PV_JOBS"
./build/cli/pvengine selfcheck
