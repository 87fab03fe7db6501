#!/bin/bash
# Faults against the real binary (run by `make test`): the XCTest suite FaultTests injects them through test
# hooks; this script does it the way a user meets them.
#   1. SIGTERM and SIGINT to a training process: exit 143 / 130 with one line saying where it stopped, no
#      temporary file, and the same command then ends with the tensors of an uninterrupted run (h5diff);
#   2. a second process on the same run stops at once, naming the holder's pid;
#   3. a full disk: the run folder on a small tmpfs (in a private mount namespace), so the second epoch's
#      resume state does not fit: the error says "no space left on device" with the file, the epoch-1 state is
#      intact, no temporary file is left; after the tmpfs is enlarged the same command ends bit-identical;
#      and `ste decode` into a 1 MiB tmpfs says so too and leaves nothing behind.
# Part 3 needs root and unshare(1); without them it is skipped with a message.
# Usage: scripts/test-faults.sh   (after `make build data`)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STE=$REPO/.build/release/ste
[ -x "$STE" ] && [ -f data/mnist.h5 ] || { echo "test-faults: needs .build/release/ste and data/mnist.h5 (make build data)"; exit 2; }
T0=$(date +%s.%N)
say() { echo "test-faults: [$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')] $*"; }
fail() { echo "test-faults: FAILED: $*"; exit 1; }
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
PASSED=0

# A grid of its own: LeNet-5 on 20,000 MNIST images, a 1-epoch float pretrain and a 3-epoch 2-bit cell.
cat >"$D/grid.yaml" <<EOF
experiment: faults
reference: $REPO/experiments/reference/yin2019-table1.csv
seeds: [0]
bits: [2]
stes: [clipped]
quantizer: {rounding: ceil, alpha: {2: 0.6511}}
nets:
  lenet5:
    dataset: mnist
    data: data/mnist.h5
    augment: false
    normalize: {mean: [0.1307], std: [0.3081]}
    pretrain: {epochs: 1, batch_size: 128, optimizer: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4, schedule: {kind: constant}}
    train: {epochs: 3, batch_size: 64, optimizer: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4, schedule: {kind: multistep, milestones: [2]}}
profiles:
  faults: {train_subset: 20000}
EOF
RUN=lenet5-a2-clipped-s0
RUNDIR=results/faults/runs/$RUN
ste() { "$STE" "$@" --config grid.yaml --profile faults --threads 1; }
# A results tree with the pretrain done, in folder $1.
prepare() { mkdir -p "$D/$1" && ln -sfn "$REPO/data" "$D/$1/data" && cp "$D/grid.yaml" "$D/$1/"; }
same_tensors() {  # the final checkpoints of $1 and $2 hold the same parameters, BN statistics and momenta
  for g in /params /buffers /optimizer; do
    h5diff -q "$D/$1/$RUNDIR/checkpoint.h5" "$D/$2/$RUNDIR/checkpoint.h5" "$g" || return 1
  done
}
no_temporaries() { ! ls -A "$D/$1/$RUNDIR" | grep -q '\.tmp-'; }

prepare ref
(cd "$D/ref" && ste pretrain --run lenet5-s0 --quiet && ste train --run $RUN --quiet) || fail "reference run"
say "reference run done"

# MARK: 1 and 2. Signals, and a second process -------------------------------------------------------
for sig in TERM INT; do
  prepare "$sig"
  cp -r "$D/ref/results" "$D/$sig/" && rm -rf "$D/$sig/$RUNDIR"
  (cd "$D/$sig" && exec "$STE" train --config grid.yaml --profile faults --threads 1 --run $RUN 2>"$D/$sig.err") &
  pid=$!
  sleep 1.5
  if [ $sig = TERM ]; then  # a second process while the first holds the run
    set +e; (cd "$D/$sig" && ste train --run $RUN --quiet) 2>"$D/second.err"; rc=$?; set -e
    [ $rc = 1 ] && grep -q "run $RUN is already being written by process $pid on " "$D/second.err" \
      || { cat "$D/second.err"; fail "a second process on the run was not refused (exit $rc)"; }
    say "ok: a second process is refused: $(cut -c1-110 "$D/second.err")…"
    PASSED=$((PASSED + 1))
  fi
  kill -$sig $pid
  set +e; wait $pid; rc=$?; set -e
  want=$([ $sig = TERM ] && echo 143 || echo 130)
  [ $rc = "$want" ] || { cat "$D/$sig.err"; fail "SIG$sig: exit $rc, expected $want"; }
  grep -q "interrupted (SIG$sig) at epoch [0-9] of 3; the same command resumes" "$D/$sig.err" \
    || { cat "$D/$sig.err"; fail "SIG$sig: no 'interrupted at epoch' line"; }
  no_temporaries "$sig" || fail "SIG$sig left a temporary file"
  (cd "$D/$sig" && ste train --run $RUN --quiet) || fail "SIG$sig: the resumed run failed"
  same_tensors ref "$sig" || fail "SIG$sig: the resumed run's tensors differ from the uninterrupted run's"
  say "ok: SIG$sig → exit $rc, '$(grep -o 'interrupted.*' "$D/$sig.err")'; resumed run identical to the uninterrupted one"
  PASSED=$((PASSED + 1))
done

# MARK: 3. A full disk -----------------------------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! unshare --mount true 2>/dev/null; then
  say "SKIPPED the full-disk part: it mounts a tmpfs in a private mount namespace (needs root and unshare)"
else
  prepare full
  cp -r "$D/ref/results" "$D/full/" && rm -rf "$D/full/$RUNDIR" && mkdir -p "$D/full/$RUNDIR"
  # One resume state (parameters + momenta, ~0.5 MB) fits in 800 KiB; a second one beside it does not.
  cat >"$D/full.sh" <<EOF
set -e
mount -t tmpfs -o size=800k tmpfs "$D/full/$RUNDIR"
cd "$D/full"
set +e; "$STE" train --config grid.yaml --profile faults --threads 1 --run $RUN --quiet 2>"$D/full.err"; echo \$? >"$D/full.rc"; set -e
ls -A "$RUNDIR" >"$D/full.ls"
h5dump -a /epoch "$RUNDIR/resume.h5" >"$D/full.epoch" 2>&1 || true
mount -o remount,size=8m "$D/full/$RUNDIR"
"$STE" train --config grid.yaml --profile faults --threads 1 --run $RUN --quiet
cp -r "$RUNDIR" "$D/full-out"
# The decode stage on a full disk: 1 MiB for a 55 MB dataset file.
mkdir -p "$D/dec" && mount -t tmpfs -o size=1m tmpfs "$D/dec"
set +e; "$STE" decode mnist --raw-dir "$REPO/data/raw/mnist" --out "$D/dec/mnist.h5" 2>"$D/dec.err"; echo \$? >"$D/dec.rc"; set -e
ls -A "$D/dec" >"$D/dec.ls"
EOF
  unshare --mount --propagation private bash "$D/full.sh" || fail "full disk: the run after space returned failed"
  [ "$(cat "$D/full.rc")" = 1 ] || { cat "$D/full.err"; fail "full disk: exit $(cat "$D/full.rc"), expected 1"; }
  grep -q "$RUNDIR/resume.h5: .*no space left on device (errno 28)" "$D/full.err" || { cat "$D/full.err"; fail "full disk: the error does not say so"; }
  ! grep -q '\.tmp-' "$D/full.ls" || { cat "$D/full.ls"; fail "full disk: a temporary file was left"; }
  grep -q "(0): 1" "$D/full.epoch" || { cat "$D/full.epoch"; fail "full disk: the epoch-1 resume state is not intact"; }
  rm -rf "$D/full/$RUNDIR" && cp -r "$D/full-out" "$D/full/$RUNDIR"
  same_tensors ref full || fail "full disk: the run finished after space returned differs from the uninterrupted run"
  say "ok: full disk → '$(grep -o 'no space left.*' "$D/full.err" | cut -c1-100)'; epoch 1 kept; finished identical once space returned"
  PASSED=$((PASSED + 1))
  [ "$(cat "$D/dec.rc")" = 1 ] || { cat "$D/dec.err"; fail "decode on a full disk: exit $(cat "$D/dec.rc"), expected 1"; }
  grep -q "mnist.h5: .*no space left on device (errno 28)" "$D/dec.err" || { cat "$D/dec.err"; fail "decode on a full disk: the error does not say so"; }
  [ ! -s "$D/dec.ls" ] || { cat "$D/dec.ls"; fail "decode on a full disk left a file behind"; }
  say "ok: decode on a full disk → '$(grep -o 'no space left.*' "$D/dec.err" | cut -c1-80)'; nothing left behind"
  PASSED=$((PASSED + 1))
fi
echo "test-faults: $PASSED passed, 0 failed"
