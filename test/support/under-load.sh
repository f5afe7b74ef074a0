#!/usr/bin/env bash
# `npm run test:loaded`: runs `npm test` RUNS times in a row (default 3) with BURNERS processes that
# each burn a core (default 2: on a 2-core machine, the suite competes for every cycle). The evidence
# that no test depends on the machine being idle. Each run's pass/fail counts and duration are
# printed, and its full output kept in LOG_DIR. The burners are killed by pid when this ends, however
# it ends. Exit status 0 only if every run passed.
#
#   npm run test:loaded                 # 3 runs, 2 burners
#   RUNS=5 BURNERS=4 npm run test:loaded
set -u
cd "$(dirname "$0")/../.."

runs=${RUNS:-3}
burners=${BURNERS:-2}
log_dir=${LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ps-under-load.XXXXXX")}
mkdir -p "$log_dir"

burner_pids=()
stop_burners() {
  for pid in "${burner_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${burner_pids[@]}"; do wait "$pid" 2>/dev/null; done
  burner_pids=()
}
trap stop_burners EXIT
trap 'stop_burners; exit 130' INT
trap 'stop_burners; exit 143' TERM

for _ in $(seq "$burners"); do
  node -e 'for (;;) {}' &
  burner_pids+=("$!")
done
echo "under load: ${burners} CPU burner(s) (pids ${burner_pids[*]}) on $(nproc) core(s), load average $(cut -d' ' -f1-3 /proc/loadavg); ${runs} run(s); logs in ${log_dir}"

failed_runs=0
for run in $(seq "$runs"); do
  log="${log_dir}/run-${run}.log"
  started=$(date +%s)
  npm test >"$log" 2>&1
  status=$?
  seconds=$(($(date +%s) - started))
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  [ -n "$counts" ] || counts='no count line (see the log)'
  [ "$status" -eq 0 ] || failed_runs=$((failed_runs + 1))
  echo "run ${run}/${runs}: ${counts}; exit status ${status}; ${seconds} s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "$status" -ne 0 ]; then
    grep -E '^\s+[0-9]+\) ' "$log" | head -20
  fi
done

echo "${failed_runs} of ${runs} run(s) failed"
[ "$failed_runs" -eq 0 ]
