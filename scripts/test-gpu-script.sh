#!/bin/bash
# The GPU machine's script (scripts/gpu-check.sh) and the make targets it drives, checked here for the defects that
# would stop a first device run before it measures anything: a nested make that installs packages on an offline
# machine, a missing bundle found late, a PyTorch peer looked for as a file in the current folder, timeouts beyond one
# device command, and the bundle's libraries exported to every child (PyTorch's included). Part of `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. DEPS=skip reaches nested makes and installs nothing: apt-get and dpkg-query are shims that record a call.
mkdir -p "$tmp/bin"
for tool in apt-get dpkg-query sudo; do printf '#!/bin/sh\necho %s >> %s/called\nexit 1\n' "$tool" "$tmp" > "$tmp/bin/$tool"; done
chmod +x "$tmp/bin/"*
cat > "$tmp/nested.mk" <<'MK'
nested-probe:
	$(MAKE) --no-print-directory -f Makefile deps
MK
PATH="$tmp/bin:$PATH" make --no-print-directory -f "$tmp/nested.mk" DEPS=skip nested-probe > "$tmp/nested.txt" 2>&1
check "DEPS=skip: a nested make installs nothing (no apt-get, no dpkg-query)" '[ ! -e "$tmp/called" ] && grep -q "deps: skipped" "$tmp/nested.txt"'
check "gpu-check.sh passes DEPS=skip (not -o deps, which GNU make does not hand to a nested make)" \
  'grep -q "DEPS=skip" scripts/gpu-check.sh && ! grep -q -- "-o deps" scripts/gpu-check.sh'

# 2. A missing bundle is the first thing said, with what to do, and exit 2.
mkdir -p "$tmp/repo/scripts" && cp scripts/gpu-check.sh "$tmp/repo/scripts/"
(cd "$tmp/repo" && OUT="$tmp/out" bash scripts/gpu-check.sh > "$tmp/nobundle.txt" 2>&1; echo $? > "$tmp/nobundle.rc")
check "no gpu/bundle.tar.xz: exit 2 and a message naming it and the carry list" \
  '[ "$(cat "$tmp/nobundle.rc")" = 2 ] && grep -q "gpu/bundle.tar.xz" "$tmp/nobundle.txt" && grep -q "carry" "$tmp/nobundle.txt"'

# 3. PEER_PYTHON given as a command on PATH (python3) counts as runnable.
printf '#!/bin/sh\nexit 0\n' > "$tmp/bin/peer-python" && chmod +x "$tmp/bin/peer-python"
check "PEER_PYTHON=<command on PATH> is found by make bench and make parity" \
  '! grep -n "\[ -x \"\$(PEER_PYTHON)\" \]" Makefile >/dev/null && PATH="$tmp/bin:$PATH" make -s --no-print-directory peer-found PEER_PYTHON=peer-python | grep -q yes'

# 6. The timeouts of one run of the script fit one device command (600 s) with room for start-up: at most 540 s.
total=$(grep -o 'timeout [0-9]*' scripts/gpu-check.sh | awk '{ s += $2 } END { print s + 0 }')
check "the script's timeouts add to $total s <= 540 s" '[ "$total" -le 540 ]'

# 10. The bundle's libraries reach only the bundled binary (a wrapper), not PyTorch or other children.
check "gpu-check.sh exports no LD_LIBRARY_PATH" '! grep -Eq "^[[:space:]]*export LD_LIBRARY_PATH" scripts/gpu-check.sh'

# 2b. What travels (the slimmed working tree and the bundle) fits the 64 MiB a device run may carry.
check "the slimmed tree and the bundle fit 64 MiB ($(scripts/gpu-slim.sh size | sed 's/^gpu-slim: //'))" 'scripts/gpu-slim.sh size > /dev/null'
# In a clone with the working tree's scripts: slimming removes the tracked results, keeps a run in progress there
# (untracked), and restore brings every tracked file back.
git clone -q . "$tmp/clone" && cp scripts/gpu-slim.sh "$tmp/clone/scripts/"
mkdir -p "$tmp/clone/results/fashion/x" && echo progress > "$tmp/clone/results/fashion/x/resume.h5"
(cd "$tmp/clone" && scripts/gpu-slim.sh > "$tmp/slim.txt" && git ls-files --deleted | wc -l > "$tmp/deleted" \
  && cp results/fashion/x/resume.h5 "$tmp/kept" && scripts/gpu-slim.sh restore > /dev/null \
  && git status --porcelain --untracked-files=no -- results Tests > "$tmp/after")
check "gpu-slim.sh removes the tracked results only (a run in progress stays) and restore brings them back" \
  '[ "$(cat "$tmp/deleted")" -gt 10 ] && [ -f "$tmp/kept" ] && [ -f "$tmp/after" ] && [ ! -s "$tmp/after" ]'

exit $fail
