#!/usr/bin/env bash
# End-to-end check of tools/load.py on the smoke results of `make test` (run after smoke-check): the tables load
# with the run count of the table, and checkpoints of every net load into the PyTorch definitions of
# tools/make_fixtures.py and reproduce the runs' test predictions (the number correct within one image).
# Skipped, with a message, where the peer's Python (torch, h5py) is not installed: `make peer` installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PEER_PYTHON:-$HOME/.venv-peer/bin/python}"
if ! [ -x "$PY" ] || ! "$PY" -c "import torch, h5py" 2>/dev/null; then
  echo "test-load: SKIPPED — no Python with torch and h5py at $PY (make peer installs it)"
  exit 0
fi
pass=0; fail=0
check() { if "$@"; then pass=$((pass + 1)); else echo "test-load: FAILED: $*"; fail=$((fail + 1)); fi; }
tables() {
  "$PY" - "$1" <<'PY'
import sys
sys.path.insert(0, "tools")
import load
root = sys.argv[1]
runs, hist = load.runs(root), load.histories(root)
n = len(runs)
ids = set(runs["run_id"]) if hasattr(runs, "columns") else {r["run_id"] for r in runs}
hist_ids = set(hist["run_id"]) if hasattr(hist, "columns") else {r["run_id"] for r in hist}
assert n > 0 and hist_ids == ids, (root, n, sorted(ids ^ hist_ids))
print(f"test-load: {root}/runs.csv {n} runs, histories.csv {len(hist)} epochs")
PY
}
check tables results/smoke
check tables results/fashion/smoke
for run in results/smoke/runs/lenet5-a2-clipped-s0 results/smoke/runs/lenet5-a4-identity-s0 \
           results/fashion/smoke/runs/resnet20-a2-relu-s0 results/fashion/smoke/runs/vgg11-a4-clipped-s0; do
  check "$PY" tools/load.py --check "$run"
done
echo "test-load: $pass passed, $fail failed"
[ "$fail" = 0 ]
