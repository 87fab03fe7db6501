#!/bin/bash
# Packs what the GPU machine needs to run `ste` (it has no Swift toolchain and none of this project's Debian
# libraries): the binary built with the Swift runtime linked in, and every shared library it loads that is not part
# of the C runtime (HDF5, oneDNN, OpenBLAS, zlib and theirs), compressed. The NVIDIA libraries are not packed: the
# engine finds the machine's own at run time (Sources/GPU/Libraries.swift).
# Usage: scripts/gpu-bundle.sh <static ste binary> <output .tar.xz>
set -euo pipefail
binary=$1 out=$2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gpu-bundle/bin" "$stage/gpu-bundle/lib"
cp "$binary" "$stage/gpu-bundle/bin/ste"
strip "$stage/gpu-bundle/bin/ste" 2>/dev/null || true
# The C runtime and the compiler's support libraries are on every Linux; everything else travels.
ldd "$binary" | awk '/=> \// { print $3 }' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
    *) cp -L "$lib" "$stage/gpu-bundle/lib/" ;;
  esac
done
cat > "$stage/gpu-bundle/README" <<'TXT'
ste for a machine without Swift: bin/ste, with the libraries it loads in lib/.
Run: LD_LIBRARY_PATH=$PWD/gpu-bundle/lib gpu-bundle/bin/ste gpu-check (scripts/gpu-check.sh writes a wrapper that sets
it for this binary only; exported, it would shadow the machine's libraries in every other program)
TXT
mkdir -p "$(dirname "$out")"
XZ_OPT=-9e tar -C "$stage" -cJf "$out.tmp" gpu-bundle && mv "$out.tmp" "$out"
echo "$out: $(du -h "$out" | cut -f1) ($(ls "$stage/gpu-bundle/lib" | wc -l) libraries: $(ls "$stage/gpu-bundle/lib" | tr '\n' ' '))"
