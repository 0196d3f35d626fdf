#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time, starting from its seed corpus, two at a time.
# Builds the fuzz preset first (clang, ASan+UBSan). Exits non-zero when a target finds a crash,
# a leak, undefined behaviour, a timeout or runs out of memory; the input is kept as
# build/fuzz/artifacts/<target>-crash-... (add it to tests/fuzz/<target>_corpus/ once fixed).
#   gateway/scripts/fuzz.sh [SECONDS] [TARGET...]   SECONDS per target (default 20); TARGET e.g. payload
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
shift || true

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

build=build/fuzz
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(find "$build/tests/fuzz" -maxdepth 1 -type f -executable -name 'fuzz_*' ! -name '*_replay' \
    -printf '%f\n' | sed 's/^fuzz_//' | sort)
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz: no targets in $build/tests/fuzz" >&2; exit 1; }
mkdir -p "$build/artifacts"

run_one() {  # run_one TARGET: new inputs go to a scratch corpus, never into the committed seeds
  local target=$1 scratch
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  if "$build/tests/fuzz/fuzz_$target" "$scratch" "tests/fuzz/${target}_corpus" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
      >"$build/artifacts/$target.log" 2>&1; then
    echo "fuzz: $target: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$build/artifacts/$target.log" |
      grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    echo "fuzz: $target: FAILED (log: $build/artifacts/$target.log)"
    tail -n 40 "$build/artifacts/$target.log"
    return 1
  fi
}
export -f run_one
export build seconds
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'run_one {}'
