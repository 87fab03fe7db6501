#!/usr/bin/env bash
# `make deps` without apt (NO_APT=1: a cluster, a RHEL-family system, a container): it installs nothing, finds the
# libraries through pkg-config and the oneDNN 2.x header, and lists what is missing with a non-zero exit.
set -uo pipefail
cd "$(dirname "$0")/.."
pass=0; fail=0
expect() {  # expect <exit status> <text in the output> -- command…
  local want=$1 text=$2; shift 3
  local out; out=$("$@" 2>&1); local rc=$?
  if { [ "$want" = 0 ] && [ $rc = 0 ]; } || { [ "$want" != 0 ] && [ $rc != 0 ]; } && grep -qF -- "$text" <<<"$out"; then
    pass=$((pass + 1))
  else
    echo "test-deps: FAILED ($*): exit $rc, expected $want and '$text' in:"; echo "$out"; fail=$((fail + 1))
  fi
}
expect 0 "nothing installed (NO_APT)" -- make --no-print-directory deps NO_APT=1
expect 1 "error: missing: hdf5(pkg-config) openblas(pkg-config) zlib(pkg-config)" -- \
  env PKG_CONFIG_LIBDIR=/nonexistent make --no-print-directory deps NO_APT=1
expect 1 "oneDNN-2.x(oneapi/dnnl/dnnl.h)" -- make --no-print-directory deps NO_APT=1 CC="cc -nostdinc"
echo "test-deps: $pass passed, $fail failed"
[ "$fail" = 0 ]
