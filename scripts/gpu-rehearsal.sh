#!/bin/bash
# The GPU machine's check rehearsed on this machine, as close to that machine as can be built here: the same
# scripts/gpu-check.sh from the same bundle (make gpu-bundle), in a copy of what a device run carries (the slimmed
# working tree and the bundle, at most 64 MiB), in a sandbox with no network (a new network namespace), no apt-get,
# dpkg or sudo, no Swift toolchain (each replaced by a stub that records the call and fails), none of this project's
# Debian libraries (hidden), and a host stand-in for the NVIDIA libraries (tools/cuda-standin: the engine's real
# loading, marshalling, error and logging paths run, not only its Swift-level emulation). `make gpu-rehearsal`.
#
# Steps, each PASS or FAIL:
#   carry       what travels fits 64 MiB; without the bundle the script says so first and exits 2
#   check       the script's timeouts fit one device command; scripts/gpu-check.sh passes under `timeout 600`, every
#               check line logged; nothing forbidden was called; the PyTorch peer ran, without the bundle's libraries
#   libraries   the bundled binary resolves every library but the C runtime's inside the bundle
#   fallbacks   PTX is loaded when the driver refuses the CUBIN; mixed CUDA majors are refused with their versions
#   errors      a device error mid-check (STE_STANDIN_FAIL) fails that check by name and the remaining checks still run
# The peer runs on the CPU here (--device cuda becomes --device cpu): the stand-in is not PyTorch's GPU. Logs stay in
# gpu/rehearsal/. Needs root or unprivileged user namespaces (unshare), a C++ compiler, and the bundle.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ -f gpu/bundle.tar.xz ] || { echo "gpu-rehearsal: no gpu/bundle.tar.xz: make gpu-bundle first"; exit 2; }
command -v unshare > /dev/null || { echo "gpu-rehearsal: needs unshare (util-linux)"; exit 2; }
log=$repo/gpu/rehearsal
rm -rf "$log" && mkdir -p "$log"
work=$(mktemp -d /tmp/gpu-rehearsal.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
step() { if [ "$2" = 0 ]; then echo "PASS $1"; else echo "FAIL $1"; failed=1; fi; }

tools/cuda-standin/build.sh "$work/nvidia" > "$log/standin-build.txt" 2>&1 \
  || { cat "$log/standin-build.txt"; echo "gpu-rehearsal: the stand-in does not build"; exit 2; }

# What a device run carries: the slimmed working tree (scripts/gpu-slim.sh files), and the bundle, named in the carry
# list because git ignores it.
carry() { mkdir -p "$1" && scripts/gpu-slim.sh files | tar --null -T - -c | tar -x -C "$1"; }
carry "$work/tree-bare"
carry "$work/tree" && mkdir -p "$work/tree/gpu" && cp gpu/bundle.tar.xz "$work/tree/gpu/"
bytes=$(du -sb "$work/tree" | cut -f1)
step "carry: the slimmed tree and the bundle are $((bytes / 1048576)) MiB of 64 MiB" "$([ "$bytes" -le $((64 * 1048576)) ]; echo $?)"

# The stubs of what the GPU machine lacks, the peer's interpreter, the stand-in's nvidia-smi.
mkdir -p "$work/bin" "$work/home" "$work/out"
printf '#!/bin/sh\necho "rehearsal: $0 $* called: not on the GPU machine" >&2\necho "$0 $*" >> %s/forbidden.log\nexit 127\n' "$work" > "$work/forbidden"
chmod +x "$work/forbidden"
cp "$work/nvidia/nvidia-smi" "$work/bin/"
peer_python=${PEER_PYTHON:-$HOME/.venv-peer/bin/python}
cat > "$work/bin/python3" <<PY
#!/bin/bash
# python3 for the rehearsal: the PyTorch peer (tools/peer/ste_torch.py) on the CPU with PyTorch's own libraries;
# anything else with the system's python3.
case "\${1:-}" in *ste_torch.py) ;; *) exec /usr/bin/python3 "\$@" ;; esac
echo "peer \$*" >> $work/peer.log
case "\${LD_LIBRARY_PATH:-}" in *gpu-bundle*) echo "LD_LIBRARY_PATH=\$LD_LIBRARY_PATH" >> $work/peer-shadowed.log ;; esac
[ -x "$peer_python" ] || { echo "rehearsal: no PyTorch at $peer_python (make peer): the peer's timing is not rehearsed" >&2; exit 3; }
args=(); for a in "\$@"; do [ "\$a" = cuda ] && a=cpu; args+=("\$a"); done
exec "$peer_python" "\${args[@]}"
PY
chmod +x "$work/bin/python3"

# The sandbox: a new mount and network namespace; stubs over the installers and the Swift toolchain; this project's
# Debian libraries (HDF5, oneDNN, OpenBLAS and what only they pull in: libraries a GPU machine lacks) hidden behind
# empty files. The libraries' check below proves the bundled binary takes nothing else from the system.
cat > "$work/sandbox.sh" <<'SH'
#!/bin/bash
work=$1 tree=$2; shift 2
ip link set lo up  # no network, but a loopback interface, as every machine has (Foundation's run loop needs it)
for tool in apt-get apt apt-cache dpkg dpkg-query sudo pip pip3 curl wget swift swiftc swift-build swift-frontend swift-driver; do
  path=$(command -v "$tool" 2>/dev/null) && [ -f "$path" ] && mount --bind "$work/forbidden" "$path"
done
touch "$work/empty"
for lib in $(tar -tJf "$work/tree/gpu/bundle.tar.xz" | sed -n 's|^gpu-bundle/lib/||p'); do
  case $lib in libhdf5*|libsz*|libaec*|libdnnl*|libopenblas*|libgfortran*|libquadmath*|libcurl*) ;; *) continue ;; esac
  for dir in /usr/lib/x86_64-linux-gnu /usr/lib /usr/local/lib; do [ -e "$dir/$lib" ] && mount --bind "$work/empty" "$dir/$lib"; done
done
cd "$tree"
exec env -i HOME="$work/home" PATH="$work/bin:/usr/local/bin:/usr/bin:/bin" TMPDIR="$work" LANG=C.UTF-8 \
  STE_CUDA_LIBRARY_PATH="$work/nvidia" BENCH_NETS=lenet5 "$@"
SH
# sandbox_in TREE COMMAND…: COMMAND in the sandbox, in TREE; sandbox COMMAND…: in the tree with the bundle.
sandbox_in() {
  if [ "$(id -u)" = 0 ]; then unshare --mount --net --fork bash "$work/sandbox.sh" "$work" "$@"
  else unshare --map-root-user --mount --net --fork bash "$work/sandbox.sh" "$work" "$@"; fi
}
sandbox() { sandbox_in "$work/tree" "$@"; }

# Without the bundle: said first, exit 2.
sandbox_in "$work/tree-bare" timeout 60 env OUT="$work/out-bare" bash scripts/gpu-check.sh > "$log/no-bundle.txt" 2>&1; rc=$?
rm -f "$work/forbidden.log"  # what a script without the check calls then is not what the check below counts
step "carry: without the bundle, gpu-check.sh exits 2 naming it first" \
  "$([ $rc = 2 ] && head -n 1 "$log/no-bundle.txt" | grep -q bundle.tar.xz; echo $?)"

# The script's own timeouts fit one device command (600 s) with room for the machine's start-up.
total=$(grep -o 'timeout [0-9]*' scripts/gpu-check.sh | awk '{ s += $2 } END { print s + 0 }')
step "check: the script's timeouts add to $total s (at most 540 s)" "$([ "$total" -le 540 ]; echo $?)"

# The check, as on the device: one command, 600 s at most.
start=$(date +%s)
sandbox timeout 600 env OUT="$work/out" bash scripts/gpu-check.sh > "$log/gpu-check.sh.txt" 2>&1; rc=$?
wall=$(( $(date +%s) - start ))
cp -r "$work/out" "$log/out"
step "check: scripts/gpu-check.sh exit $rc in $wall s (one device command: 600 s)" "$([ $rc = 0 ] && [ $wall -lt 600 ]; echo $?)"
checks=$(grep -c '^PASS \|^FAIL ' "$work/out/gpu-check.txt" 2>/dev/null)
step "check: ste gpu-check logged ${checks:-0} checks and its summary" \
  "$([ "${checks:-0}" -gt 100 ] && grep -q '^gpu-check: .* passed, 0 failed' "$work/out/gpu-check.txt"; echo $?)"
step "check: nothing installed, built or fetched ($(cat "$work/forbidden.log" 2>/dev/null | sort -u | tr '\n' ';'))" \
  "$([ ! -s "$work/forbidden.log" ]; echo $?)"
peers=$(ls "$work"/tree/results/bench/torch*-lenet5-*.json 2>/dev/null | wc -l)
step "check: the PyTorch peer ran ($peers of 2 timings written) without the bundle's libraries" \
  "$([ "$peers" = 2 ] && [ ! -e "$work/peer-shadowed.log" ]; echo $?)"

# Only the bundle's libraries reach the bundled binary (the C runtime's aside).
sandbox bash -c 'tar -xJf gpu/bundle.tar.xz -C gpu && LD_LIBRARY_PATH=$PWD/gpu/gpu-bundle/lib ldd gpu/gpu-bundle/bin/ste' \
  > "$log/ldd.txt" 2>&1
outside=$(grep '=>' "$log/ldd.txt" | grep -v 'gpu-bundle/lib/' | grep -Ev '\b(libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s|ld-linux[^ ]*)\.so' || true)
step "libraries: the bundled binary loads only the bundle's libraries and the C runtime${outside:+ (outside: $outside)}" \
  "$([ -z "$outside" ] && ! grep -q 'not found' "$log/ldd.txt"; echo $?)"

# The fallbacks: the driver refuses the CUBIN → PTX; a cuBLAS of another CUDA major → refused, with the versions.
sandbox env STE_STANDIN_REFUSE_CUBIN=1 timeout 120 gpu/gpu-bundle/ste gpu-check 2>&1 | grep -m 1 'kernels loaded as' > "$log/ptx.txt"
step "fallbacks: $(sed 's/.*; //' "$log/ptx.txt")" "$(grep -q 'kernels loaded as PTX compute_90' "$log/ptx.txt"; echo $?)"
sandbox env STE_STANDIN_CUBLAS_VERSION=120405 timeout 120 gpu/gpu-bundle/ste gpu-check 2>&1 | grep -m 1 'libraries' > "$log/mixed.txt"
step "fallbacks: mixed CUDA majors refused" "$(grep -q '^FAIL libraries: .*mixed CUDA major versions.*cuBLAS 12' "$log/mixed.txt"; echo $?)"

# A device error mid-check: the failing call named, that check failed, every later check still run and logged.
sandbox env STE_STANDIN_FAIL=cudnnConvolutionBackwardFilter:3 timeout 300 gpu/gpu-bundle/ste gpu-check > "$log/errors.txt" 2>&1; rc=$?
step "errors: an injected cuDNN failure fails its check by name ($(grep -c '^FAIL' "$log/errors.txt") FAIL), the rest run (exit $rc)" \
  "$([ $rc = 1 ] && grep -q 'cudnnConvolutionBackwardFilter failed: CUDNN_STATUS_EXECUTION_FAILED' "$log/errors.txt" \
     && grep -q '^gpu-check: .* passed, [1-9][0-9]* failed' "$log/errors.txt" && [ "$(grep -c '^PASS' "$log/errors.txt")" -gt 100 ]; echo $?)"

echo "gpu-rehearsal: $([ $failed = 0 ] && echo passed || echo FAILED); logs in gpu/rehearsal/"
exit $failed
