#!/usr/bin/env bash
# Verified DiLoCo epochs on many cores (issue #14: throughput "for N up to 8 wherever more cores are available"):
# bench.epochs for N in $NS (default "4 8"; N = 2 ran on 2026-12-04, bench/epochs.md), the runs side by side (one LocalNet each), each trainer a process
# of 1 thread, max(3, N) verifiers per run, the task pinned to this machine's own CPU runtime. H is sized on this
# machine: a slot trains in about $TARGET_S seconds (default 90) when the machine is idle. Writes
# $OUT_DIR/n<N>/epochs.json and $OUT_DIR/epochs.log; `python -m bench.epochs md DIR n*/epochs.json` makes the report.
#   scripts/device_epochs.sh [OUT_DIR]          (default OUT_DIR: $OUT or /tmp/device-epochs)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-/tmp/device-epochs}}
mkdir -p "$OUT_DIR"
source scripts/device_env.sh
{ echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"; lscpu 2>/dev/null | grep -E "^(Thread|Core|Socket)"; } | tee "$OUT_DIR/epochs.log"
H=$(BENCH_EPOCHS_RUNTIME=native $PY -m bench.epochs probe "${TARGET_S:-90}") || { echo "probe failed"; exit 1; }
echo "H = $H (a slot in ~${TARGET_S:-90} s, idle)" | tee -a "$OUT_DIR/epochs.log"
pids=()
for n in ${NS:-4 8}; do
  # the run reports the epochs that closed by RUN_TIMEOUT - 45 s; `timeout` only if it hangs past that
  BENCH_EPOCHS_NS=$n BENCH_EPOCHS_HS=$H BENCH_EPOCHS_VERIFIERS=n BENCH_EPOCHS_RUNTIME=native \
    BENCH_EPOCHS_DEADLINE=$(( ${RUN_TIMEOUT:-520} - 45 )) BENCH_EPOCHS_DIR="$OUT_DIR/n$n" \
    timeout "${RUN_TIMEOUT:-520}" $PY -m bench.epochs >"$OUT_DIR/run-n$n.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
for n in ${NS:-4 8}; do
  { echo "== N = $n"; tail -n 40 "$OUT_DIR/run-n$n.log"; } >>"$OUT_DIR/epochs.log"
  rm -f "$OUT_DIR/run-n$n.log" "$OUT_DIR/n$n/epochs.md"  # the report is made from the json (8 files come back)
done
exit $rc
