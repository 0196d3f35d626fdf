#!/usr/bin/env bash
# Checks the C++ against the repo's habits: clang-format (.clang-format) over gateway/, tests/ and
# benchmarks/, clang-tidy (.clang-tidy) over gateway/src. Exits non-zero on any finding.
#   gateway/scripts/lint.sh [--format | --tidy] [--fix] [--build-dir DIR] [-j N] [FILE...]
#     --format         only clang-format (seconds)
#     --tidy           only clang-tidy (minutes: it compiles every file)
#     --fix            rewrite the files instead of reporting (clang-format -i, clang-tidy -fix)
#     --build-dir DIR  where compile_commands.json is (default build/debug, configured with the
#                      debug preset when missing)
#     -j N             clang-tidy jobs (default: all cores)
#     FILE...          only these files (default: every tracked C++ file in scope)
# The tools are Debian 12's clang-format-14 and clang-tidy-14 (install-deps.sh installs them);
# another major version formats differently. CLANG_FORMAT / CLANG_TIDY override the binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."

run_format=1
run_tidy=1
fix=0
build_dir=build/debug
jobs=$(nproc)
files=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --format) run_tidy=0 ;;
    --tidy) run_format=0 ;;
    --fix) fix=1 ;;
    --build-dir) build_dir=$2; shift ;;
    -j) jobs=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "lint: unknown option $1" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done

tool() {  # tool NAME: the -14 binary when installed, else the plain one
  if command -v "$1-14" >/dev/null 2>&1; then echo "$1-14"; else echo "$1"; fi
}
CLANG_FORMAT=${CLANG_FORMAT:-$(tool clang-format)}
CLANG_TIDY=${CLANG_TIDY:-$(tool clang-tidy)}

# Tracked files when this is a git checkout; the same set found on disk otherwise.
sources() {  # sources DIR...
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    local patterns=()
    for dir in "$@"; do patterns+=("$dir/*.cpp" "$dir/*.hpp"); done
    git ls-files -- "${patterns[@]}"
  else
    find "$@" \( -name node_modules -prune \) -o \( -name '*.cpp' -o -name '*.hpp' \) -print | sort
  fi
}

status=0

if [[ $run_format -eq 1 ]]; then
  if [[ ${#files[@]} -gt 0 ]]; then
    format_files=("${files[@]}")
  else
    mapfile -t format_files < <(sources gateway tests benchmarks)
  fi
  version=$("$CLANG_FORMAT" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
  [[ $version == 14 ]] || echo "lint: warning: $CLANG_FORMAT is version $version, .clang-format is checked with 14" >&2
  if [[ $fix -eq 1 ]]; then
    "$CLANG_FORMAT" -i --style=file "${format_files[@]}"
  elif ! "$CLANG_FORMAT" --dry-run --Werror --style=file "${format_files[@]}"; then
    echo "lint: clang-format: files above differ from .clang-format (gateway/scripts/lint.sh --format --fix rewrites them)" >&2
    status=1
  else
    echo "lint: clang-format: ${#format_files[@]} files formatted"
  fi
fi

if [[ $run_tidy -eq 1 ]]; then
  if [[ ! -f $build_dir/compile_commands.json ]]; then
    [[ $build_dir == build/debug ]] || { echo "lint: no $build_dir/compile_commands.json" >&2; exit 2; }
    cmake --preset debug >/dev/null
  fi
  if [[ ${#files[@]} -gt 0 ]]; then
    tidy_files=()
    for f in "${files[@]}"; do [[ $f == gateway/src/*.cpp ]] && tidy_files+=("$f"); done
  else
    mapfile -t tidy_files < <(sources gateway/src | grep '\.cpp$')
  fi
  if [[ ${#tidy_files[@]} -gt 0 ]]; then
    # The compile commands may be gcc's: clang needs the flag CMake gives clang (RapidJSON's operator==).
    tidy_args=(-p "$build_dir" --quiet '--warnings-as-errors=*'
      --extra-arg=-Wno-ambiguous-reversed-operator --extra-arg=-Wno-unknown-warning-option)
    [[ $fix -eq 1 ]] && tidy_args+=(--fix)
    export CLANG_TIDY
    # One clang-tidy per file (xargs appends it), $jobs at a time; a file's findings print together.
    if ! printf '%s\0' "${tidy_files[@]}" | xargs -0 -P "$jobs" -n 1 bash -c \
        'out=$("$CLANG_TIDY" "$@" 2>&1) && exit 0; printf "%s\n" "$out"; exit 1' _ "${tidy_args[@]}"; then
      echo "lint: clang-tidy: findings above (.clang-tidy says which checks run and why others do not)" >&2
      status=1
    else
      echo "lint: clang-tidy: ${#tidy_files[@]} files clean"
    fi
  fi
fi

exit $status
