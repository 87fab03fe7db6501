#!/bin/bash
# The CUDA engine's checks, run on the GPU machine in the repository's root with gpu/bundle.tar.xz (make gpu-bundle)
# beside it: the engine's parity, kink, determinism and transfer checks (ste gpu-check), a smoke of the pipeline on
# the GPU ending in a report, determinism of that smoke (two runs, same numbers), and the benchmark against the
# PyTorch peer on the same GPU. Logs go to $OUT (or gpu/out) so they come back. One device command may run 600 s:
# the timeouts below add to 510 s.
set -uo pipefail
out=${OUT:-gpu/out}
if [ ! -f gpu/bundle.tar.xz ]; then
  echo "gpu-check.sh: gpu/bundle.tar.xz is missing. It is git-ignored: build it with make gpu-bundle and name it in the"
  echo "  device run's carry list (carry: [\"gpu/bundle.tar.xz\"]) so that it travels with the working tree."
  exit 2
fi
mkdir -p "$out"
tar -xJf gpu/bundle.tar.xz -C gpu || { echo "gpu-check.sh: cannot unpack gpu/bundle.tar.xz"; exit 2; }
# The bundle's libraries reach the bundled binary only, through this wrapper: exported, Debian 12's libz, libssl,
# libgomp … would shadow the machine's own inside PyTorch and every other child.
ste=$PWD/gpu/gpu-bundle/ste
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' \
  "$PWD/gpu/gpu-bundle/lib" "$PWD/gpu/gpu-bundle/bin/ste" > "$ste"
chmod +x "$ste"   # newer than the sources: make uses it instead of building
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
echo "== ste gpu-check"
timeout 150 "$ste" gpu-check 2>&1 | tee "$out/gpu-check.txt"; [ "${PIPESTATUS[0]}" = 0 ] || status=1
# The pipeline on the GPU, twice, then the same numbers. make with the bundled binary (DEPS=skip: nothing to install
# or build here; a command-line variable, so nested makes get it too) and the CUDA engine.
make_gpu=(make DEPS=skip BIN="$ste" DEVICE=cuda)
echo "== smoke pipeline on the GPU"
rm -rf results/smoke
timeout 90 "${make_gpu[@]}" reproduce PROFILE=smoke JOBS=2 > "$out/smoke.txt" 2>&1 || status=1
tail -n 5 "$out/smoke.txt"
cp results/smoke/table1.csv "$out/smoke-table1-a.csv" 2>/dev/null
rm -rf results/smoke
timeout 90 "${make_gpu[@]}" reproduce PROFILE=smoke JOBS=2 > "$out/smoke2.txt" 2>&1 || status=1
cp results/smoke/table1.csv "$out/smoke-table1-b.csv" 2>/dev/null
cp results/smoke/REPORT.md "$out/smoke-REPORT.md" 2>/dev/null
if cmp -s "$out/smoke-table1-a.csv" "$out/smoke-table1-b.csv"; then echo "PASS smoke determinism: table1.csv identical"
else echo "FAIL smoke determinism: table1.csv differs"; status=1; fi
echo "== benchmark"
timeout 180 "${make_gpu[@]}" bench BENCH_ROUNDS=1 PEER_PYTHON="${PEER_PYTHON:-python3}" > "$out/bench.txt" 2>&1 || status=1
tail -n 8 "$out/bench.txt"
echo "gpu-check.sh: exit $status"
exit $status
