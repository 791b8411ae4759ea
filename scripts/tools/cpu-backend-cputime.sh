#!/usr/bin/env bash
# Process CPU time (user + sys, all threads) per AM step of `amgpu bench --device cpu`, for binaries that
# do not report `cpuMs`: CPU(--reps HI) − CPU(--reps LO), divided by HI − LO, so model building and the
# first step cancel. Interleaved over the binaries, `rounds` times; under nice -n 10, never waits for quiet.
#
#   scripts/tools/cpu-backend-cputime.sh MODEL ROUNDS LABEL=BINARY[:ENV=VALUE] ...
set -euo pipefail
model=$1 rounds=$2; shift 2
lo=1 hi=5
export AMGPU_BENCH_QUIET=0
echo "# $(date -u +%FT%TZ) host $(uname -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $model b1 logit, reps $lo vs $hi"
cpu() { # binary reps [env]
  local out
  out=$( { env ${3:-} /usr/bin/time -f "CPUTIME %U %S" nice -n 10 "$1" bench --device cpu --only steps --models "$model" \
           --batch 1 --objectives logit --reps "$2" --warmup 0 --json >/dev/null; } 2>&1 | grep CPUTIME)
  echo "$out" | awk '{print $2 + $3}'
}
for r in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    label=${spec%%=*} rest=${spec#*=} bin=${rest%%:*} envv=""
    [[ $rest == *:* ]] && envv=${rest#*:}
    a=$(cpu "$bin" $lo "$envv"); b=$(cpu "$bin" $hi "$envv")
    python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%-13s round %s: CPU %.2f s (reps $lo), %.2f s (reps $hi) -> %.0f ms CPU per step (load %s)' % (sys.argv[3], sys.argv[4], a, b, 1000*(b-a)/($hi-$lo), open('/proc/loadavg').read().split()[0]))" "$a" "$b" "$label" "$r"
  done
done
