#!/usr/bin/env bash
# A/B of amgpu's CPU backend (`--device cpu`) on AM steps, for docs/logs/cpu-backend-*.md.
#
#   scripts/tools/cpu-backend-ab.sh BEFORE_AMGPU AFTER_AMGPU [models] [rounds]
#
# For each model (batch 1, logit objective) and round, interleaved: BEFORE, AFTER, and AFTER with
# AMGPU_CPU_SERIAL=1 (threading off). Prints per run the median wall ms per step and the median
# CPU ms per step (user + sys of the process, all threads: `cpuMs` in bench's JSON), then one CPU
# profile of a step of AFTER (`--profile`: wall ms per CPU entry point). On a loaded machine only the
# CPU time and the profile's shares mean anything. Runs under nice -n 10; never waits for quiet.
set -euo pipefail
before=$1 after=$2 models=${3:-resnetv2_50,vit_base_patch16_224} rounds=${4:-2}
export AMGPU_BENCH_QUIET=0
echo "# $(date -u +%FT%TZ) host $(uname -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# before: $before ; after: $after ; models $models ; rounds $rounds"
row() { # label binary [env...]
  local label=$1 bin=$2; shift 2
  env "$@" nice -n 10 "$bin" bench --device cpu --only steps --models "$m" --batch 1 --objectives logit \
      --reps 3 --warmup 1 --json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["steps"][0]; print("%-13s %-22s wall %8.1f ms  cpu %8.1f ms  (load %s)" % (sys.argv[1], r["model"], r["medianMs"], r.get("cpuMs") or float("nan"), open("/proc/loadavg").read().split()[0]))' "$label"
}
for m in ${models//,/ }; do
  for r in $(seq 1 "$rounds"); do
    row before "$before"
    row after "$after"
    row after-serial "$after" AMGPU_CPU_SERIAL=1
  done
done
for m in ${models//,/ }; do
  echo "# profile of one step, $m b1 logit (after; wall ms per entry point, under load: shares only)"
  nice -n 10 "$after" bench --device cpu --only steps --models "$m" --batch 1 --objectives logit --reps 1 --warmup 0 --profile --json 2>/dev/null |
    python3 -c 'import json,sys
r=json.load(sys.stdin)["steps"][0]; p=r["profile"]; tot=sum(e["ms"] for e in p if "." not in e["kernel"])
print("step %.1f ms wall; entry points total %.1f ms" % (r["medianMs"], tot))
for e in p: print("  %-34s %8.1f ms %5.1f %% %5d calls" % (e["kernel"], e["ms"], 100*e["ms"]/tot if tot else 0, e["launches"]))'
done
