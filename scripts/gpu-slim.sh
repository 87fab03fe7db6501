#!/bin/bash
# What travels to a GPU machine is the working tree (tracked files, and untracked ones git does not ignore) plus the
# carried bundle, 64 MiB in all; the committed results alone are ~27 MB and grow with every campaign run. The device
# check (scripts/gpu-check.sh) needs none of them: it runs from the bundle, the PyTorch fixtures, the vendored MNIST
# files, the configs, the Makefile, the scripts and tools.
#
#   scripts/gpu-slim.sh            remove the tracked files the device check does not need from the working tree
#                                  (not from git: nothing is committed; untracked files stay), print what travels
#   scripts/gpu-slim.sh restore    put them back (git checkout)
#   scripts/gpu-slim.sh size       print what would travel, slimmed, and exit 1 when it and the bundle exceed 64 MiB
#   scripts/gpu-slim.sh files      list (NUL-separated) the files a device run carries, slimmed: tracked files present
#                                  and untracked ones git does not ignore (scripts/gpu-rehearsal.sh copies them)
set -euo pipefail
cd "$(dirname "$0")/.."
# Not used on the device: committed results, the fixtures of the nets outside the paper's grid.
unneeded=(results Tests/NNTests/Fixtures/nets-extensions.h5)
budget=$((64 * 1024 * 1024))

# Bytes of the tracked files present in the working tree, those under `unneeded` left out when $1 is "slim".
tree_bytes() {
  git ls-files -z | { if [ "$1" = slim ]; then grep -zv -E "^($(IFS='|'; echo "${unneeded[*]}"))(/|$)"; else cat; fi; } \
    | xargs -0 -r du -cb 2>/dev/null | awk 'END { print $1 + 0 }'
}
bundle_bytes() { if [ -f gpu/bundle.tar.xz ]; then stat -c %s gpu/bundle.tar.xz; else echo $((34 * 1024 * 1024)); fi; }  # measured: 33.6 MiB
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

case ${1:-slim} in
  slim)
    git rm -r -q --cached --dry-run "${unneeded[@]}" >/dev/null  # every path is tracked (a typo fails here)
    # Only tracked files go (git has them): a run in progress there, its untracked and ignored files, stays.
    git ls-files -z -- "${unneeded[@]}" | xargs -0 -r rm -f
    echo "gpu-slim: removed the tracked files of ${unneeded[*]} from the working tree (scripts/gpu-slim.sh restore puts them back)"
    echo "gpu-slim: the tree now carries $(mib "$(tree_bytes all)") + the bundle $(mib "$(bundle_bytes)")" ;;
  restore)
    git checkout -- "${unneeded[@]}"
    echo "gpu-slim: restored ${unneeded[*]}" ;;
  size)
    slim=$(tree_bytes slim) bundle=$(bundle_bytes)
    total=$((slim + bundle))
    echo "gpu-slim: slimmed tree $(mib "$slim") + bundle $(mib "$bundle")$([ -f gpu/bundle.tar.xz ] || echo ' (not built; 34 MiB assumed)') = $(mib "$total") of 64 MiB"
    [ "$total" -le "$budget" ] ;;
  files)
    git ls-files -z -c -o --exclude-standard | grep -zv -E "^($(IFS='|'; echo "${unneeded[*]}"))(/|$)" \
      | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done ;;
  *) echo "usage: scripts/gpu-slim.sh [slim|restore|size|files]"; exit 2 ;;
esac
