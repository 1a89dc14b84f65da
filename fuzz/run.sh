#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target, one after another, and prints a table of what each
# did. Not part of CI (issue 6, item 5: each target ≥ 10 M executions or a stated time).
#
#   fuzz/run.sh                      # every target, 10 M runs or 300 s each, whichever first
#   FUZZ_TIME=60 fuzz/run.sh archive # one target for a minute
#
# FUZZ_TIME  seconds per target (default 300); FUZZ_RUNS  executions per target (default 10M);
# FUZZ_JOBS  parallel jobs per target (default 1); FUZZ_TOOLCHAIN (default nightly).
# Crashes land in fuzz/artifacts/<target>/; reproduce one with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")"

time_s=${FUZZ_TIME:-300}
runs=${FUZZ_RUNS:-10000000}
jobs=${FUZZ_JOBS:-1}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(agent_config scanner_rules archive http_routes cache_decoder)
fi

# Longest input per target: archives need room for a few members, the rest are small texts.
max_len() {
    case $1 in
        archive) echo 65536 ;;
        http_routes) echo 4096 ;;
        cache_decoder) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
./seeds.sh
cargo "+$toolchain" fuzz build -O -a

# With -jobs libFuzzer runs workers that log to fuzz-N.log; one job runs in this process.
parallel=
if [ "$jobs" -gt 1 ]; then
    parallel="-jobs=$jobs -workers=$jobs"
fi

mkdir -p logs
rows=()
for t in "${targets[@]}"; do
    log=logs/$t.log
    started=$(date +%s)
    status=ok
    nice -n 10 cargo "+$toolchain" fuzz run -O -a "$t" -- \
        -runs="$runs" -max_total_time="$time_s" -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 $parallel \
        >"$log" 2>&1 || status=CRASH
    wall=$(($(date +%s) - started))
    logs=("$log" fuzz-*.log)
    execs=$(awk '/stat::number_of_executed_units/ {n += $2} END {print n + 0}' "${logs[@]}")
    rate=$(awk '/stat::average_exec_per_sec/ {n += $2} END {print n + 0}' "${logs[@]}")
    rm -f fuzz-*.log
    rows+=("$(printf '%-15s %12s %8ss %10s  %s' "$t" "$execs" "$wall" "$rate" "$status")")
done

printf '%-15s %12s %9s %10s  %s\n' target executions time exec/s result
printf '%s\n' "${rows[@]}"
