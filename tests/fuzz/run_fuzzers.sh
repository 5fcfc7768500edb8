#!/usr/bin/env bash
# Runs every facet fuzzer for SECONDS each, from the seed corpus in tests/fuzz/corpus/<name>/; inputs that find new
# coverage are kept in BUILD_DIR/fuzz-corpus/<name>/, crashes in BUILD_DIR/fuzz-crashes/. Exit 77: not built.
# usage: run_fuzzers.sh BUILD_DIR SECONDS
set -euo pipefail
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
status=0
for name in image request; do
  binary=$build/tests/fuzz/facet_fuzz_$name
  if [[ ! -x $binary ]]; then
    echo "fuzz: $binary is not built (run make fuzz-build): skipped"
    exit 77
  fi
  corpus=$build/fuzz-corpus/$name
  crashes=$build/fuzz-crashes/$name
  mkdir -p "$corpus" "$crashes"
  echo "== fuzzing $name for ${seconds}s"
  # Leaks are checked by the sanitizer test build; here a leak report would stop the run at the first
  # process-lifetime allocation of a library.
  if ! ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "$binary" -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 -artifact_prefix="$crashes/" \
      "$corpus" "$here/corpus/$name" 2>&1 | tail -n 25; then
    status=1  # pipefail: the fuzzer's own status (a crash, a sanitizer report, a timeout)
  fi
done
exit $status
