#!/usr/bin/env bash
# Everything issues 5 and 6 need from a GPU machine, in one call (the device tool's machines have
# nvcc, CMake and ninja but no HDF5): build without HDF5, run the `cuda` tests, compute-sanitizer
# memcheck and racecheck on them, then the fit and statistics benchmarks on simulated data.
# Results go to $OUT (or bench/out) as text; copy the tables into bench/results/fit_cuda.md and
# bench/results/statistics_cuda.md with the commit.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/out}"
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  git rev-parse --short HEAD 2>/dev/null
} > "$out/machine.txt" 2>&1
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DPV_HDF5=OFF -DPV_BUILD_BENCH=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  > "$out/configure.txt" 2>&1
cmake --build build-gpu -j "$(nproc)" > "$out/build.txt" 2>&1 || { tail -50 "$out/build.txt"; exit 1; }
(cd build-gpu && ctest -L cuda --output-on-failure) > "$out/cuda_tests.txt" 2>&1
for tool in memcheck racecheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 1 build-gpu/tests/test_cuda > "$out/sanitizer_$tool.txt" 2>&1
  echo "compute-sanitizer $tool exit $?" >> "$out/sanitizer_$tool.txt"
done
bench=build-gpu/bench/bench_fit
{
  $bench --device cuda --simulate 3696x2000 --mean-spliced 3 --mean-unspliced 1 --steps 50 --samples 30
  $bench --device cpu --simulate 3696x2000 --mean-spliced 3 --mean-unspliced 1 --steps 5 --samples 30
  $bench --device cuda --simulate 10000x2000 --steps 20 --samples 30
  $bench --device cuda --simulate 100000x2000 --steps 5 --samples 5
  $bench --device cuda --simulate 100000x2000 --batch-size 10000 --steps 3 --samples 5
} > "$out/bench.txt" 2>&1
stats=build-gpu/bench/bench_statistics
{
  $stats --simulate 3696x2000 --samples 30 --device cuda --reps 3 --streaming 0 --json "$out/statistics_cuda.json"
  $stats --simulate 3696x2000 --samples 30 --device cpu --reps 1 --streaming 0 --json "$out/statistics_cpu.json"
  $stats --simulate 20000x2000 --samples 30 --device cuda --reps 1 --streaming 0 --json "$out/statistics_cuda_20k.json"
} > "$out/bench_statistics.txt" 2>&1
tail -5 "$out/cuda_tests.txt" "$out/sanitizer_memcheck.txt" "$out/sanitizer_racecheck.txt"
grep -E "^\| simulated" "$out/bench.txt" "$out/bench_statistics.txt"
