#!/usr/bin/env bash
# A campaign: a profile whose runs take longer than one machine stays (experiments/fashion.yaml, resnet20-claims:
# about a day of CPU time), run from a pinned build and committed run by run, so that a lost machine costs only the
# runs in flight and another machine resumes the rest.
#
#   scripts/campaign.sh start  PROFILE [EXPERIMENT]   pin HEAD (a clean tree), commit the pin, run
#   scripts/campaign.sh resume PROFILE [EXPERIMENT]   the pinned commit's build, the runs not yet committed
#   scripts/campaign.sh harvest PROFILE [EXPERIMENT]  commit the runs finished since the last commit, once
#   scripts/campaign.sh snapshot PROFILE [EXPERIMENT] commit the resume state of the runs in flight (before a machine
#                                                     goes away: another resumes them from there, not from epoch 0)
#
# The pin (<results root>/CAMPAIGN: code version, threads, jobs) is committed; the code under the runs is that
# commit's, built in a git worktree (.campaign/PROFILE), so work landing on main does not change it (a resume
# refuses a changed code version). The worktree decodes its own data; its results folder is a link to this checkout's, and
# the profile's `resume_from_committed: true` makes the plan take a run as done when its committed files record its
# configuration, whatever their dates. Each finished run's eval.h5 and history.h5 are committed as it finishes,
# and the checkpoints other runs start from (the pretrains, the repel starts: the plan's PLAN_START_CHECKPOINTS)
# with them; other training state enters git only by `snapshot` (the resume files of the runs in flight, removed
# again in the commit of each such run when it finishes). Seeds run in order (0 complete before 1; the next seed's
# pretrain fills the cores a seed's last runs leave idle). Runs: JOBS at once, each evaluated as soon as it is trained,
# THREADS threads each (defaults 2 and 1, recorded in the pin; a resume uses the recorded threads). The runs take the
# machine's idle time: niced (NICE, default 19), and so is their scheduler autogroup, since Linux weighs a niced
# process against the processes of other sessions only through its group's nice value.
# `make -n runs EXPERIMENT=… PROFILE=…` lists what is left.
set -euo pipefail
cd "$(dirname "$0")/.."
main=$(pwd)
action=${1:?usage: scripts/campaign.sh start|resume|harvest|snapshot PROFILE [EXPERIMENT]}
profile=${2:?usage: scripts/campaign.sh start|resume|harvest|snapshot PROFILE [EXPERIMENT]}
experiment=${3:-experiments/fashion.yaml}
worktree=.campaign/$profile
log=.campaign/$profile.log

die() { echo "campaign: $*" >&2; exit 1; }
results=$(sed -n 's/^results: *\([^ #]*\).*/\1/p' "$experiment")
root=${results:-results}/$profile
pin=$root/CAMPAIGN

# The pinned build and the pinned config's plan (run in the worktree, whose results folder is this checkout's).
plan_var() {
  local plan
  plan=$(mktemp)
  (cd "$worktree" && .build/release/ste plan --config "$experiment" --profile "$profile" --make "$plan") >/dev/null
  sed -n "s/^$1 := //p" "$plan"
  rm -f "$plan"
}
starts() { plan_var PLAN_START_CHECKPOINTS; }
# The pretrain checkpoint of seed $1 among the start checkpoints in $2 (nothing when there is none).
pretrain_of() { echo "$2" | tr ' ' '\n' | grep -- "/pretrain/.*-s$1/checkpoint.h5$" || true; }

# The worktree at the pinned commit, its links to this checkout's data and results, and its release build.
prepare() {
  local code=$1 f
  mkdir -p .campaign "$root"
  if [ ! -d "$worktree" ]; then git worktree prune; git worktree add --detach "$worktree" "$code" >/dev/null; fi
  [ "$(git -C "$worktree" rev-parse HEAD)" = "$code" ] || die "$worktree is not at the pinned $code"
  mkdir -p "$worktree/$(dirname "$root")"
  [ -L "$worktree/$root" ] || ln -sn "$main/$root" "$worktree/$root"
  echo "campaign: building the pinned $code in $worktree"
  make -C "$worktree" --no-print-directory build >/dev/null
  for f in $(plan_var PLAN_DATA); do make -C "$worktree" --no-print-directory "$f" >/dev/null; done
}

# git in this checkout, retried while another git command holds the index.
git_retry() {
  local i
  for i in $(seq 1 30); do
    if git "$@" 2>/tmp/campaign-git.$$; then return 0; fi
    grep -q "index.lock" /tmp/campaign-git.$$ || { cat /tmp/campaign-git.$$ >&2; return 1; }
    sleep 5
  done
  cat /tmp/campaign-git.$$ >&2
  return 1
}

# The goals in order, JOBS at a time, each trained and at once evaluated (scripts/make-in-order.sh).
make_in_order() {
  scripts/make-in-order.sh "$jobs" -C "$worktree" --no-print-directory EXPERIMENT="$experiment" PROFILE="$profile" \
    THREADS="$threads" -- "$@"
}

# Commits every finished run whose files are not committed yet (a run is finished when its final files exist and
# its resume state is gone; files are written under a temporary name and renamed, so they are whole).
harvest() {
  local keep dir id files wall machine code
  keep=" $(starts) "
  for dir in "$root"/pretrain/* "$root"/runs/* "$root"/repel/*; do
    [ -d "$dir" ] || continue
    id=$(basename "$dir")
    [ -e "$dir/resume.h5" ] && continue
    [ -e "$dir/history.h5" ] || continue
    case $dir in */pretrain/*) files="$dir/history.h5" ;; *) [ -e "$dir/eval.h5" ] || continue; files="$dir/history.h5 $dir/eval.h5" ;; esac
    case $keep in *" $dir/checkpoint.h5 "*) [ -e "$dir/checkpoint.h5" ] || continue; files="$files $dir/checkpoint.h5" ;; esac
    # shellcheck disable=SC2086
    if git ls-files --error-unmatch $files >/dev/null 2>&1 && git diff --quiet HEAD -- $files; then continue; fi
    wall=$(h5dump -d /history/wall_seconds "$dir/history.h5" 2>/dev/null | tr -s ' ,' '\n' | grep -E '^[0-9.]+$' | tail -1)
    machine=$(h5dump -a /machine "$dir/history.h5" 2>/dev/null | sed -n 's/.*(0): "\(.*\)".*/\1/p' | head -1)
    code=$(h5dump -a /code_version "$dir/history.h5" 2>/dev/null | sed -n 's/.*(0): "\(.*\)".*/\1/p' | head -1)
    # shellcheck disable=SC2086
    git_retry add -f $files
    # A snapshot of its resume state, committed while it ran, goes with it (the finished run removed the file).
    if git ls-files --error-unmatch "$dir/resume.h5" >/dev/null 2>&1; then
      git_retry rm -q --cached "$dir/resume.h5"
      files="$files $dir/resume.h5"
    fi
    # shellcheck disable=SC2086
    git_retry commit -q -m "$profile: $id finished (code $code; $machine; $(printf '%.0f' "${wall:-0}") s of training and testing)" \
      -m "Run by scripts/campaign.sh from the pinned build in $worktree ($(cat "$pin" | tr '\n' ' '))." -- $files
    echo "campaign: committed $id"
  done
}

case $action in
  start)
    [ ! -e "$pin" ] || die "$pin exists: the campaign was started; resume it"
    git diff --quiet HEAD -- Sources Package.swift Makefile experiments || die "uncommitted changes: commit them first (the pin is HEAD)"
    prepare "$(git rev-parse HEAD)"
    printf 'code=%s\nthreads=%s\njobs=%s\nstarted=%s\n' "$(git rev-parse HEAD)" "${THREADS:-1}" "${JOBS:-2}" \
      "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$pin"
    git_retry add "$pin"
    git_retry commit -q -m "$profile: campaign pinned at $(git rev-parse --short HEAD) (scripts/campaign.sh)" -- "$pin"
    exec "$0" resume "$profile" "$experiment"
    ;;
  harvest)
    [ -e "$pin" ] || die "no $pin: start the campaign first"
    prepare "$(sed -n 's/^code=//p' "$pin")"
    harvest
    ;;
  snapshot)
    # Resume files are written under a temporary name and renamed, so each is whole when added.
    states=$(find "$root" -name resume.h5 | sort)
    [ -n "$states" ] || die "no run in flight under $root"
    # shellcheck disable=SC2086
    git_retry add -f $states
    # shellcheck disable=SC2086
    git_retry commit -q -m "$profile: resume state of the runs in flight ($(hostname), $(date -u +%FT%TZ))" \
      -m "scripts/campaign.sh snapshot: a resume on another machine continues them from here." -- $states
    echo "campaign: committed the resume state of $(echo "$states" | wc -l) runs"
    ;;
  resume)
    [ -e "$pin" ] || die "no $pin: start the campaign first"
    # Idle time only (see the header); results do not depend on the priority.
    renice -n "${NICE:-19}" -p $$ >/dev/null 2>&1 || true
    echo "${NICE:-19}" > /proc/self/autogroup 2>/dev/null || true
    code=$(sed -n 's/^code=//p' "$pin"); threads=$(sed -n 's/^threads=//p' "$pin"); jobs=${JOBS:-$(sed -n 's/^jobs=//p' "$pin")}
    prepare "$code"
    {
      echo "campaign $profile: code $code, $jobs runs at once, $threads thread(s) each, on $(hostname) ($(nproc) cores), from $(date -u +%FT%TZ)"
      harvest
      seeds=$(plan_var PLAN_PRETRAINS | tr ' ' '\n' | sed 's/.*-s//' | sort -n | uniq)
      ( while sleep 60; do harvest || true; done ) &
      harvester=$!
      trap 'kill $harvester 2>/dev/null || true' EXIT
      evals=$(plan_var PLAN_EVALS | tr ' ' '\n')
      for seed in $seeds; do
        # The cells other runs start from first, evaluated, so that they are committed (with their checkpoints) before
        # the long runs that need them; then longest first, so that the last hours do not leave a core idle: Fig. 2's
        # runs (the low-lr phase and then the normal schedule), the other repel runs and controls, then the other cells.
        starts=" $(starts) "
        goals=$(echo "$evals" | grep -- "-s$seed/eval.h5" | while read -r goal; do
          case $starts in *" ${goal%eval.h5}checkpoint.h5 "*) echo "0 $goal"; continue ;; esac
          case $goal in *-identity-from-*) echo "1 $goal" ;; *-from-*) echo "2 $goal" ;; *) echo "3 $goal" ;; esac
        done | sort -s -n -k1,1 | cut -d' ' -f2)
        # The start cells first, on their own, after the seed's pretrain (which they all need): the long runs start
        # from them.
        first=$(echo "$goals" | head -n "$(echo "$evals" | grep -- "-s$seed/eval.h5" | while read -r goal; do
          case $starts in *" ${goal%eval.h5}checkpoint.h5 "*) echo "$goal" ;; esac; done | wc -l)")
        rest=$(echo "$goals" | tail -n +"$(($(echo "$first" | grep -c . || true) + 1))")
        pretrain=$(pretrain_of "$seed" "$starts")
        # The next seed's pretrain last in both lists: it takes the core that the seed's last start cell and its last
        # runs would leave idle (a pretrain needs no other run), so the next seed begins with its start cells. (The
        # start cells' list runs only while one is left, or it would hold the long runs back for the pretrain.)
        next=$(echo "$seeds" | awk -v s="$seed" '$1 > s' | head -1)
        [ -z "$next" ] || next=$(pretrain_of "$next" "$starts")
        # shellcheck disable=SC2086
        if [ -n "$first" ] && ! make -C "$worktree" --no-print-directory -q EXPERIMENT="$experiment" PROFILE="$profile" THREADS="$threads" $first; then
          make_in_order $pretrain
          # shellcheck disable=SC2086
          make_in_order $first $next
          harvest
        fi
        # shellcheck disable=SC2086
        make_in_order $rest $next
        harvest
        echo "campaign: seed $seed complete $(date -u +%FT%TZ)"
      done
      echo "campaign $profile: every run done $(date -u +%FT%TZ)"
    } 2>&1 | tee -a "$log"
    ;;
  *) die "unknown action '$action' (start, resume, harvest, snapshot)" ;;
esac
