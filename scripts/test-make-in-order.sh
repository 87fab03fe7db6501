#!/usr/bin/env bash
# scripts/make-in-order.sh, the campaign's scheduler, with a make that records what it is asked: goals start in the
# order given, never more than N at once and N while enough are left, each in a make of its own with the options;
# after a failure no further goal starts, the running ones finish, exit 1; no goals is nothing to do; a missing --
# is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi; }

# The fake make: "start GOAL ARGS" and "end GOAL" lines; a goal NAME:SECONDS sleeps that long, bad:* fails.
cat > "$dir/make" <<'FAKE'
#!/usr/bin/env bash
goal=${!#}
echo "start $goal ${*:1:$#-1}" >> "$LOG"
sleep "${goal#*:}"
echo "end $goal" >> "$LOG"
case $goal in bad:*) exit 1 ;; esac
FAKE
chmod +x "$dir/make"
export MAKE=$dir/make

# The largest number of goals running at once, from a log.
most_at_once() { awk '$1 == "start" { n++; if (n > m) m = n } $1 == "end" { n-- } END { print m + 0 }' "$1"; }

export LOG=$dir/ok.log
scripts/make-in-order.sh 2 -C somewhere X=1 -- a:0.6 b:0.2 c:0.2 d:0.5 e:0.1 f:0.1
check "every goal made, in the order given" '[ "$(awk "\$1 == \"start\" { print \$2 }" "$LOG" | tr "\n" " ")" = "a:0.6 b:0.2 c:0.2 d:0.5 e:0.1 f:0.1 " ]'
check "two at a time, never more" '[ "$(most_at_once "$LOG")" = 2 ]'
check "each make gets the options and one goal" '[ "$(grep -c "^start [a-f]:[0-9.]* -C somewhere X=1$" "$LOG")" = 6 ]'
check "a short goal does not wait for a long one (c starts before a ends)" \
  '[ "$(grep -n "start c:" "$LOG" | cut -d: -f1)" -lt "$(grep -n "end a:" "$LOG" | cut -d: -f1)" ]'

export LOG=$dir/one.log
scripts/make-in-order.sh 1 -- a:0.1 b:0.1 c:0.1
check "one at a time with N = 1" '[ "$(most_at_once "$LOG")" = 1 ] && [ "$(grep -c "^start" "$LOG")" = 3 ]'

export LOG=$dir/fail.log
status=0
scripts/make-in-order.sh 2 -- a:0.8 bad:0.1 c:0.1 d:0.1 || status=$?
check "a failed make: exit 1" '[ "$status" = 1 ]'
check "a failed make: no further goal starts" '! grep -q "^start [cd]:" "$LOG"'
check "a failed make: the running goal finishes" 'grep -q "^end a:" "$LOG"'

export LOG=$dir/none.log
check "no goals: nothing made, exit 0" 'scripts/make-in-order.sh 2 -C x -- && [ ! -e "$LOG" ]'
status=0
scripts/make-in-order.sh 2 a:0.1 2>/dev/null || status=$?
check "no -- before the goals: exit 2" '[ "$status" = 2 ]'

[ "$fails" = 0 ] || { echo "test-make-in-order: $fails failed"; exit 1; }
echo "test-make-in-order: all passed"
