#!/usr/bin/env bash
# Is PoCL's own kernel cache (POCL_CACHE_DIR) effective across amgpu processes? (issue #16 item 6, first step)
# For each model: one 1-step `amgpu visualize` on OpenCL with an empty POCL_CACHE_DIR (cold: every program is
# compiled), then the same command twice with that cache filled (warm). CPU time (user + sys, /usr/bin/time) is
# reported, not wall time: the development machines are shared, so only CPU time says what the compile costs.
#   scripts/tools/pocl-cache-cpu-time.sh [AMGPU_BINARY]      (default .build/release/amgpu)
set -euo pipefail
cd "$(dirname "$0")/../.."
B="${1:-.build/release/amgpu}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "# $(date -u +%FT%TZ) $(nproc) CPUs,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load $(cut -d' ' -f1-3 /proc/loadavg); $("$B" devices | grep -m1 '^opencl')"
for m in "random:resnet50" "random:vit_base_patch16_224"; do
  C="$T/cache-${m#random:}"
  mkdir -p "$C"
  for run in cold warm warm2; do
    rm -rf "$T/out"
    POCL_CACHE_DIR="$C" /usr/bin/time -f "$m $run: user %U s, sys %S s, wall %e s, max RSS %M KB" \
      "$B" visualize --model "$m" --size 224 --layer output --unit 1 --steps 1 --no-baseline --quiet \
      --device opencl --out "$T/out" 2>&1 | tail -1
  done
  echo "$m: PoCL cache $(du -sh "$C" | cut -f1)"
done
echo "# end $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
