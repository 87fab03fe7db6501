# Merges the plans of a sweep's values (.plan/*.mk, written by `ste plan`) into one makefile, so that one make runs
# the runs of every value at once (JOBS at a time across values): each rule once (a run the values share, such as a
# pretrain an override does not change, has the same target in each plan and is trained once), and the union of
# their PLAN_EVALS as SWEEP_EVALS. The other PLAN_ variables describe one value and are dropped.
/^PLAN_EVALS := / { sub(/^PLAN_EVALS := /, "SWEEP_EVALS += "); print; next }
/^PLAN_/ { next }
/^\t/ { if (keep) print; next }
/^[^#[:space:]][^:=]*:/ {
    target = substr($0, 1, index($0, ":") - 1)
    keep = !(target in seen)
    seen[target] = 1
    if (keep) print
    next
}
{ keep = 1; print }
