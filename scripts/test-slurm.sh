#!/bin/bash
# End-to-end test of `make slurm` against a real single-node Slurm on localhost (run by `make test`).
# Brings up munged, slurmctld and slurmd from Debian's slurm-wlm/munge (apt-get installs them when
# missing) in a temporary folder, then:
#   1. runs the smoke profile through `make slurm PROFILE=smoke` and checks that results/smoke/table1.csv
#      has the same bytes as the one a local `make reproduce PROFILE=smoke` wrote (same seeds);
#   2. injects a failure into one cell and resubmits: only the missing runs are submitted, the failing
#      cell shows as `failed` in `make slurm-status`, the repel run that starts from it is cancelled
#      (kill-on-invalid-dep) and the report job still runs;
# and stops every daemon it started, by PID (trap). Skipped, with a message, only where Slurm cannot be
# installed or started (not root, no apt-get).
#
# Failure injection (test-only, no hook in the code): a regular file is put where the run folder of
# $FAIL_RUN should be, so `ste train` cannot create it and exits non-zero.
#
# Usage: scripts/test-slurm.sh [--local-table FILE]
#   --local-table FILE   table1.csv of a local smoke run just made (make test passes the one smoke-check
#                        wrote); without it the script runs `make reproduce PROFILE=smoke` itself first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=results/smoke
FAIL_RUN=lenet5-a4-relu-s0
FAIL_REPEL=lenet5-a4-identity-from-relu-s0
LOCAL_TABLE=""
while [ $# -gt 0 ]; do
  case $1 in
    --local-table) LOCAL_TABLE=$2; shift 2 ;;
    *) echo "usage: scripts/test-slurm.sh [--local-table FILE]" >&2; exit 2 ;;
  esac
done
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }
say() { echo "test-slurm: [$(elapsed)] $*"; }
skip() { echo "test-slurm: SKIPPED: $*"; exit 0; }

# MARK: Slurm and munge ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "the test starts slurmctld/slurmd as root; run it as root (make test on the CI machine)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get"
  say "installing slurm-wlm munge (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } \
    || skip "apt-get could not install slurm-wlm munge (offline?)"
fi

# Local reference table first (the Slurm run below replaces results/smoke).
D=$(mktemp -d /tmp/ste-slurm.XXXXXX); chmod 755 "$D"
PIDS=()
cleanup() {
  local rc=$?
  [ -f "$ROOT/runs/$FAIL_RUN" ] && rm -f "$ROOT/runs/$FAIL_RUN"
  if [ -n "${SLURM_CONF:-}" ]; then scancel -p ci 2>/dev/null || true; fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc != 0 ]; then
    echo "test-slurm: daemon logs:"; tail -n 20 "$D"/log/* 2>/dev/null || true
  fi
  rm -rf "$D"
}
trap cleanup EXIT

if [ -n "$LOCAL_TABLE" ]; then
  cp "$LOCAL_TABLE" "$D/local-table1.csv"
else
  say "local run: make reproduce PROFILE=smoke"
  rm -rf "$ROOT" .plan/table1-smoke.mk
  make --no-print-directory reproduce PROFILE=smoke >"$D/local.log" 2>&1 || { tail -n 30 "$D/local.log"; exit 1; }
  cp "$ROOT/table1.csv" "$D/local-table1.csv"
fi

say "starting munged, slurmctld, slurmd in $D"
H=$(hostname -s)
MEM_MB=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
mkdir -p "$D"/{munge,state,spool,log}; chmod 755 "$D/munge"    # munged needs o+x on its socket's folder
mungekey -c -k "$D/munge/key"
munged -F -S "$D/munge/sock" --key-file="$D/munge/key" --pid-file="$D/munge/pid" --seed-file="$D/munge/seed" \
  --log-file="$D/log/munged.log" >"$D/log/munged.out" 2>&1 & PIDS=($! "${PIDS[@]}")
for _ in $(seq 100); do [ -S "$D/munge/sock" ] && break; sleep 0.1; done
cat >"$D/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM_MB State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$D/slurm.conf"
slurmctld -D >"$D/log/slurmctld.out" 2>&1 & PIDS=($! "${PIDS[@]}")
slurmd -D >"$D/log/slurmd.out" 2>&1 & PIDS=($! "${PIDS[@]}")
for _ in $(seq 120); do [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break; sleep 0.5; done
[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || { echo "test-slurm: FAILED: the Slurm node did not come up"; exit 1; }
say "Slurm is up ($(sinfo -V))"

# One CPU per task so two tasks share the 2-core node, one thread each: the thread count of the local
# `make reproduce` (REPRODUCE_THREADS), so the results are those of the local run. Kill-on-invalid-dep
# comes from the job scripts, not from slurm.conf.
SLURM_MAKE=(make --no-print-directory slurm PROFILE=smoke PARTITION=ci CPUS_PER_TASK=1 MEM=1G MAX_TASKS=4
  WALLTIME=00:20:00 THREADS=1)

latest_submission() { ls -d "$ROOT"/slurm/*/ | sort | tail -n 1 | sed 's:/$::'; }
# Waits (at most $1 s) until no job of the submission is queued or running.
wait_for() {
  local sub=$1 limit=$2 ids
  ids=$(cut -d" " -f2 "$sub/jobs.txt" | paste -sd, -)
  timeout "$limit" bash -c "while squeue -h -j $ids 2>/dev/null | grep -q .; do sleep 0.5; done" \
    || { echo "test-slurm: FAILED: jobs $ids still queued after $limit s"; squeue; exit 1; }
}
# JobState of every task of a job key of the submission (one per line).
states() { scontrol -o show job "$(awk -v k="$2" '$1 == k { print $2 }' "$1/jobs.txt")" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
show_logs() { for f in "$1"/logs/*; do echo "--- $f"; tail -n 15 "$f"; done; }

# MARK: 1. The smoke profile through Slurm gives the local table ----------------------------------
rm -rf "$ROOT" .plan/table1-smoke.mk
say "submitting: ${SLURM_MAKE[*]}"
"${SLURM_MAKE[@]}" 2>&1 | sed 's/^/  | /'
SUB=$(latest_submission)
wait_for "$SUB" 600
say "all jobs of $SUB ended"
bad=$(for k in $(cut -d" " -f1 "$SUB/jobs.txt"); do states "$SUB" "$k"; done | grep -vc '^COMPLETED$' || true)
[ "$bad" = 0 ] || { show_logs "$SUB"; echo "test-slurm: FAILED: $bad jobs/tasks did not complete"; exit 1; }
cmp "$D/local-table1.csv" "$ROOT/table1.csv" \
  || { diff "$D/local-table1.csv" "$ROOT/table1.csv"; echo "test-slurm: FAILED: table1.csv differs from the local run"; exit 1; }
say "ok: $(wc -l <"$ROOT/table1.csv") lines of table1.csv identical to the local run; report: $(ls "$SUB"/logs/report-*.out)"
make --no-print-directory slurm-status PROFILE=smoke | sed 's/^/  | /'

# MARK: 2. A failing cell: resubmission skips complete runs, the report job still runs -----------
rm -rf "$ROOT/runs/$FAIL_RUN" "$ROOT/repel/$FAIL_REPEL"
echo "test-slurm: injected failure: a file in place of the run folder" >"$ROOT/runs/$FAIL_RUN"
sleep 1   # a new submission folder name (one per second)
say "resubmitting with $FAIL_RUN made to fail"
"${SLURM_MAKE[@]}" 2>&1 | sed 's/^/  | /'
SUB2=$(latest_submission)
[ "$SUB2" != "$SUB" ] || { echo "test-slurm: FAILED: no new submission"; exit 1; }
[ "$(cat "$SUB2/cells-lenet5.txt")" = "$FAIL_RUN" ] && [ "$(cat "$SUB2/repel-lenet5.txt")" = "$FAIL_REPEL" ] \
  && [ ! -e "$SUB2/pretrain-lenet5.txt" ] \
  || { head "$SUB2"/*.txt; echo "test-slurm: FAILED: the resubmission should hold only the 2 missing runs"; exit 1; }
wait_for "$SUB2" 120
say "all jobs of $SUB2 ended (no hang)"
states "$SUB2" report | grep -qx COMPLETED || { show_logs "$SUB2"; echo "test-slurm: FAILED: the report job did not complete"; exit 1; }
grep -q "runs: " "$SUB2"/logs/report-*.out || { show_logs "$SUB2"; echo "test-slurm: FAILED: no status table in the report log"; exit 1; }
make --no-print-directory slurm-status PROFILE=smoke >"$D/status.txt"
sed 's/^/  | /' "$D/status.txt"
grep -Eq "^$FAIL_RUN +train +failed " "$D/status.txt" || { echo "test-slurm: FAILED: $FAIL_RUN is not shown as failed"; exit 1; }
grep -Eq "^$FAIL_REPEL +repel +cancelled " "$D/status.txt" || { echo "test-slurm: FAILED: $FAIL_REPEL is not shown as cancelled"; exit 1; }
grep -Eq "^lenet5-a2-relu-s0 +train +done *$" "$D/status.txt" || { echo "test-slurm: FAILED: complete cells not shown as done"; exit 1; }
echo "  | the failed task's log ends:"; tail -n 3 "$SUB2"/logs/cells-lenet5-*.out | sed 's/^/  |   /'
rm -f "$ROOT/runs/$FAIL_RUN"
say "ok: failing cell shown as failed, its repel run cancelled, report job completed"
echo "test-slurm: 2 passed, 0 failed ($(elapsed))"
