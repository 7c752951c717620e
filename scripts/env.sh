# Sourced by the scripts: puts the CUDA toolkit on PATH where it is installed but not on PATH, so
# that CMake's check_language(CUDA) finds nvcc and the CUDA backend is built and compiled in CI.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
PV_JOBS="${PV_JOBS:-$(nproc 2>/dev/null || echo 2)}"
