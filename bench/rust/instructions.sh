#!/usr/bin/env bash
# Instructions per warm resolve answered from process memory, counted by
# callgrind (counts, not seconds: repeatable on a busy machine). Two runs
# that differ only in the number of resolves; the difference divided by
# the difference in count removes set-up and tear-down.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
cargo build --release -q -p lupa-bench
bin="$CARGO_TARGET_DIR/release/lupa-bench"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Metrics on (the default) and off: counting's own cost per resolve.
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1.$2" "$bin" warm-loop --ops "$1" --metrics "$2" \
        >/dev/null 2>"$out/log.$1.$2"
    grep -E '^(summary|totals):' "$out/cg.$1.$2" | head -1 | awk '{print $2}'
}
small=1000
large=21000
for metrics in on off; do
    a=$(count $small $metrics)
    b=$(count $large $metrics)
    per=$(( (b - a) / (large - small) ))
    echo "{\"case\": \"warm_resolve_instructions\", \"metrics\": \"$metrics\", \"instructions_per_resolve\": $per, \"runs\": [[${small}, ${a}], [${large}, ${b}]]}"
done
