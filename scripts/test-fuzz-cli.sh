#!/bin/bash
# The binary against inputs nobody here wrote (run by `make test`): seeded mutations of run ids, --set overrides,
# environment values, an experiment grid (truncated, bytes flipped, lines dropped or doubled) and small HDF5
# files (truncated at many offsets, bits flipped in data and metadata). Every run must end in exit 0, 1 or 64
# (a usage error, as ArgumentParser reports one) with an `error:` line when not 0 — never a signal (132 illegal
# instruction, 134 abort, 139 segfault) — and must leave no temporary file. Inputs that once failed are kept in
# Tests/Fuzz/regressions/cli.txt and replayed first.
# Usage: scripts/test-fuzz-cli.sh [SEED] [COUNT]   (after `make build`)
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STE=$REPO/.build/release/ste
[ -x "$STE" ] || { echo "test-fuzz-cli: needs .build/release/ste (make build)"; exit 2; }
SEED=${1:-20261206}
COUNT=${2:-40}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D/work/experiments" && cp -r experiments/reference "$D/work/experiments/"
cp experiments/table1.yaml "$D/work/experiments/grid.yaml"
passed=0; failed=0
RANDOM=$SEED

# check NAME COMMAND…: runs in the scratch work folder; judges exit code, error line and leftovers.
check() {
  local name=$1; shift
  (cd "$D/work" && "$@" >"$D/out" 2>&1); local rc=$?
  local bad=""
  case $rc in
    0) ;;
    1|64) grep -q '^error: ' "$D/out" || bad="exit $rc without an error: line" ;;
    *) bad="exit $rc" ;;
  esac
  if find "$D/work" -name '.*.tmp-*' | grep -q .; then bad="${bad:+$bad; }a temporary file was left"; fi
  find "$D/work" -name '.*.tmp-*' -delete
  if [ -n "$bad" ]; then
    failed=$((failed + 1)); echo "test-fuzz-cli: FAILED ($bad): $name"; tail -3 "$D/out" | sed 's/^/    /'
  else
    passed=$((passed + 1))
  fi
}

# A string with one random edit: a character dropped, doubled, replaced by a random one or by a digit run; the
# result in MUTATED. (Not echoed into a $(…): bash reseeds RANDOM in every subshell, and the run would no longer be
# the same run for the same SEED.)
mutate() {
  local s=$1 i=$((RANDOM % (${#1} + 1))) chars='-_.=,[]{}:a0s9 /\\\n%$*"'
  case $((RANDOM % 5)) in
    0) MUTATED="${s:0:i}${s:i+1}" ;;
    1) MUTATED="${s:0:i}${s:i:1}${s:i}" ;;
    2) MUTATED="${s:0:i}${chars:RANDOM % ${#chars}:1}${s:i+1}" ;;
    3) MUTATED="${s:0:i}$((RANDOM * RANDOM))${s:i}" ;;
    4) MUTATED="${s:0:i}" ;;
  esac
}

# Regression inputs first (one "KIND<TAB>VALUE" per line).
while IFS=$'\t' read -r kind value; do
  case $kind in
    run) check "regression run id '$value'" "$STE" train --config experiments/grid.yaml --run "$value" --quiet ;;
    set) check "regression --set '$value'" "$STE" plan --config experiments/grid.yaml --set "$value" --list ;;
    env) check "regression env '$value'" env "$value" "$STE" plan --config experiments/grid.yaml --list ;;
  esac
done < <(grep -v '^#' "$REPO/Tests/Fuzz/regressions/cli.txt")

ids=(lenet5-a2-clipped-s0 resnet20-a4-relu-from-clipped-s1 vgg11-s2 lenet5-a4-log-tailed-s0)
sets=("nets.lenet5.train.lr=0.05" "seeds=[0,1]" "nets.lenet5.train.schedule.milestones=[0.5]" "quantizer.alpha.2=0.6")
envs=("STE_THREADS=2" "STE_DEVICE=cpu" "STE_PROGRESS=1" "STE_TF32=0" "RESUME_ANYWAY=1")
for k in $(seq 1 "$COUNT"); do
  mutate "${ids[RANDOM % ${#ids[@]}]}"; id=$MUTATED
  check "run id '$id'" "$STE" eval --config experiments/grid.yaml --run "$id" --quiet
  mutate "${sets[RANDOM % ${#sets[@]}]}"; s=$MUTATED
  check "--set '$s'" "$STE" plan --config experiments/grid.yaml --set "$s" --list
  mutate "${envs[RANDOM % ${#envs[@]}]}"; e=$MUTATED
  [[ $e == *=* ]] && check "env '$e'" env "$e" "$STE" plan --config experiments/grid.yaml --list
done

# The GPU library path and device, where no GPU is: an error line, not a trap.
for v in "" /nonexistent "$D" "/usr/lib/x86_64-linux-gnu:/etc" "$(printf 'x%.0s' $(seq 1 300))"; do
  check "STE_CUDA_LIBRARY_PATH='${v:0:40}'" env STE_CUDA_LIBRARY_PATH="$v" "$STE" eval --config experiments/grid.yaml \
    --run lenet5-a2-clipped-s0 --device cuda --quiet
done

# Tables given to ste diff: our table1.csv and the paper's, each truncated or with a byte flipped.
cp experiments/reference/yin2019-table1.csv "$D/work/paper.csv"
cp results/table1.csv "$D/work/ours.csv"
for k in $(seq 1 "$COUNT"); do
  src=$([ $((k % 2)) = 0 ] && echo results/table1.csv || echo experiments/reference/yin2019-table1.csv)
  python3 -c "import sys,random; r=random.Random($SEED*7+$k); b=bytearray(open(sys.argv[1],'rb').read()); b = b[:r.randrange(len(b))] if $k % 3 == 0 else b; i=r.randrange(len(b)); b[i]^=1<<r.randrange(8); open(sys.argv[2],'wb').write(b)" "$src" "$D/work/m.csv"
  check "ste diff on a mutated table $k" "$STE" diff ours.csv m.csv
  check "ste diff on a mutated table $k (json)" "$STE" diff m.csv paper.csv --json
done

# The grid file itself: truncated, a byte flipped, a line dropped or doubled.
lines=$(wc -l < experiments/table1.yaml); size=$(wc -c < experiments/table1.yaml)
for k in $(seq 1 "$COUNT"); do
  case $((k % 4)) in
    0) head -c $((RANDOM % size)) experiments/table1.yaml > "$D/work/experiments/grid.yaml" ;;
    1) python3 -c "import sys,random; r=random.Random($SEED+$k); b=bytearray(open('experiments/table1.yaml','rb').read()); i=r.randrange(len(b)); b[i]^=1<<r.randrange(8); open(sys.argv[1],'wb').write(b)" "$D/work/experiments/grid.yaml" ;;
    2) sed "$((RANDOM % lines + 1))d" experiments/table1.yaml > "$D/work/experiments/grid.yaml" ;;
    3) n=$((RANDOM % lines + 1)); sed "${n}p" experiments/table1.yaml > "$D/work/experiments/grid.yaml" ;;
  esac
  check "grid mutation $k" "$STE" plan --config experiments/grid.yaml --list
done
cp experiments/table1.yaml "$D/work/experiments/grid.yaml"

# Small HDF5 files in the format the project writes (1.8, metadata checksums): truncated at many offsets, bits
# flipped anywhere (data and metadata). Files of the earliest format (written before checksums; *-old.h5 in the
# corpus) carry no metadata checksums, and HDF5 1.10 itself can crash on some damaged ones (a flipped bit once gave
# a segfault inside H5A__close): they are replayed unmutated by make fuzz-check, not mutated here.
for f in Tests/Fuzz/corpus/hdf5/*.h5; do
  [[ $f == *-old.h5 ]] && continue
  size=$(wc -c < "$f")
  for k in $(seq 1 "$COUNT"); do
    python3 - "$f" "$D/work/m.h5" "$SEED" "$k" "$size" <<'PY'
import sys, random
src, dst, seed, k, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = random.Random(seed * 1000 + k)
b = bytearray(open(src, "rb").read())
if k % 3 == 0:
    b = b[: r.randrange(size)]
else:
    for _ in range(1 + k % 4):
        i = r.randrange(len(b)); b[i] ^= 1 << r.randrange(8)
open(dst, "wb").write(b)
PY
    check "$(basename "$f") mutation $k" "$STE" inspect m.h5 --values
    check "$(basename "$f") mutation $k (verify)" "$STE" verify m.h5
  done
done
echo "test-fuzz-cli: $passed passed, $failed failed"
[ "$failed" = 0 ]
