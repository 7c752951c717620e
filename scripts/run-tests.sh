#!/usr/bin/env bash
# Set-up + the whole test suite: installs what is missing, builds (CUDA too when nvcc is present)
# and runs every test with CTest. Tests labelled `cuda` skip where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/env.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPV_BUILD_TESTS=ON
cmake --build build -j "$PV_JOBS"
cd build
ctest --output-on-failure -j "$PV_JOBS"
