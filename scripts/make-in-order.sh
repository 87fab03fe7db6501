#!/usr/bin/env bash
# Makes goals in the order given, N makes at a time, each goal by a make of its own:
#
#   scripts/make-in-order.sh N [make options…] -- GOAL…
#
# A run's goal (its eval.h5) is then trained and at once evaluated. One `make -jN` over all the goals may start the next
# goal's training first and leave a finished run unevaluated for hours (scripts/campaign.sh commits a run only once it is
# evaluated). The goals must share no prerequisite still to be made, or two makes would build it at once. After a make
# fails no further goal starts; the ones running finish; exit 1. MAKE names the make to run (default make).
set -euo pipefail
jobs=${1:?usage: scripts/make-in-order.sh N [make options…] -- GOAL…}
shift
options=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do options+=("$1"); shift; done
[ $# -gt 0 ] || { echo "make-in-order: no '--' before the goals" >&2; exit 2; }
shift
[ $# -gt 0 ] || exit 0
queue=$(mktemp)
trap 'rm -f "$queue" "$queue.lock" "$queue.failed"' EXIT
printf '%s\n' "$@" > "$queue"
pids=()
for _ in $(seq 1 "$jobs"); do
  (
    while [ ! -e "$queue.failed" ]; do
      goal=$(flock "$queue.lock" sh -c 'head -n 1 "$1"; sed -i 1d "$1"' - "$queue")
      [ -n "$goal" ] || break
      "${MAKE:-make}" "${options[@]}" "$goal" || { touch "$queue.failed"; exit 1; }
    done
  ) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
