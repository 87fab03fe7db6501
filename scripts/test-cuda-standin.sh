#!/bin/bash
# The CUDA engine through its real paths to the NVIDIA libraries — finding and opening them by path (siblings
# first), dlsym, marshalling through C function pointers, cuDNN's descriptors and algorithm queries, NVRTC's
# compile-and-load, cuLaunchKernel's parameter array, the version checks, the error paths — against the host
# stand-in of tools/cuda-standin, on a machine without a GPU:
#   every check of `ste gpu-check` passes;
#   a driver that refuses the CUBIN gets PTX; libraries of two CUDA majors are refused, naming the versions;
#   a device error mid-check fails that check, naming the call, and the later checks still run and are logged.
# Part of `make test` (about 4 minutes on 2 cores). Usage: scripts/test-cuda-standin.sh [ste binary]
set -uo pipefail
cd "$(dirname "$0")/.."
ste=${1:-.build/release/ste}
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tools/cuda-standin/build.sh "$tmp/nvidia" > "$tmp/build.txt" 2>&1 || { cat "$tmp/build.txt"; echo "FAIL the stand-in builds"; exit 1; }
export STE_CUDA_LIBRARY_PATH=$tmp/nvidia TMPDIR=$tmp

"$ste" gpu-check > "$tmp/check.txt" 2>&1; rc=$?
grep -E '^(FAIL|libraries|device|gpu-check)' "$tmp/check.txt"
check "ste gpu-check on the stand-in: exit 0, $(grep -c '^PASS' "$tmp/check.txt") checks passed, none failed" \
  '[ $rc = 0 ] && [ "$(grep -c "^PASS" "$tmp/check.txt")" -gt 100 ] && grep -q "^gpu-check: .* passed, 0 failed" "$tmp/check.txt"'
check "the kernels were loaded as CUBIN for the device's architecture" 'grep -q "kernels loaded as CUBIN sm_90" "$tmp/check.txt"'

STE_STANDIN_REFUSE_CUBIN=1 "$ste" gpu-check 2>&1 | grep -m 1 'kernels loaded as' > "$tmp/ptx.txt"
check "a driver that refuses the CUBIN: the kernels are loaded as PTX" 'grep -q "kernels loaded as PTX compute_90" "$tmp/ptx.txt"'
STE_STANDIN_CUBLAS_VERSION=120405 "$ste" gpu-check 2>&1 | grep -m 1 '^[A-Z]* *libraries' > "$tmp/mixed.txt"
check "cuBLAS 12 beside CUDA 13: refused, naming the versions" 'grep -q "^FAIL libraries: mixed CUDA major versions.*cuBLAS 12" "$tmp/mixed.txt"'

STE_STANDIN_FAIL=cudnnConvolutionBackwardFilter:3 "$ste" gpu-check > "$tmp/errors.txt" 2>&1; rc=$?
grep -m 3 -E 'cudnnConvolutionBackwardFilter|^FAIL' "$tmp/errors.txt"
tail -n 1 "$tmp/errors.txt"
check "an injected cuDNN failure: exit 1, the call named, its check failed, every later check run" \
  '[ $rc = 1 ] && grep -q "cudnnConvolutionBackwardFilter failed: CUDNN_STATUS_EXECUTION_FAILED" "$tmp/errors.txt" \
   && grep -q "^gpu-check: .* passed, [1-9][0-9]* failed" "$tmp/errors.txt" && grep -q "^PASS transfer" "$tmp/errors.txt"'
exit $fail
