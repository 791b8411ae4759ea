#!/usr/bin/env bash
# Attention kernels on one OpenCL device, each variant forced with AMGPU_ATTENTION (issue #16 item 2):
#   1. the attention operator rows of `amgpu bench` (ViT-B/16: 12 heads, 197 tokens, D 64, batch 1 and 8),
#      forward and backward: wall time and process CPU time per call (user + system, all threads: the figure
#      to compare on a loaded machine);
#   2. ViT-B/16 logit AM steps (batch 1 and 8): the peak bytes of OpenCL buffers held by tensors (P [bh, T, T]
#      saved per block on the P-storing kernels, O and L on the flash ones) — load-independent.
#
#   scripts/tools/attention-variants.sh [AMGPU_BINARY] [--device opencl:N]   (default .build/release/amgpu, else .build/debug/amgpu)
#
# Prints the machine, load average, date and each command before its output.
set -uo pipefail
AMGPU=${1:-}
shift || true
DEVICE=${DEVICE:-opencl}
[ "${1:-}" = "--device" ] && DEVICE=$2
if [ -z "$AMGPU" ]; then
  if [ -x .build/release/amgpu ]; then AMGPU=.build/release/amgpu; else AMGPU=.build/debug/amgpu; fi
fi
export AMGPU_BENCH_QUIET=0   # no waiting for a quiet machine: compare CPU time and buffer bytes, not wall time
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(uname -n)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "# binary: $AMGPU ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); POCL_CACHE_DIR=${POCL_CACHE_DIR:-default}"
run() {
  echo
  echo "## load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "\$ $*"
  "$@" 2>&1 | grep -v '^\s*$'
}
for v in probabilities flash; do
  run env AMGPU_ATTENTION=$v "$AMGPU" bench --device "$DEVICE" --only kernels --kernels attention --reps 3 --warmup 1
done
for b in 1 8; do
  for v in probabilities flash; do
    run env AMGPU_ATTENTION=$v "$AMGPU" bench --device "$DEVICE" --only steps --models vit_base_patch16_224 --batch $b \
      --objectives logit --reps 1 --warmup 0
  done
done
echo
echo "## done $(date -u +%H:%M:%SZ), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
