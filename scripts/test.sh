#!/usr/bin/env bash
# test.sh [extra ctest args...]: install dependencies, build, run the test suite. Exits non-zero on
# any failure (dependency, configure, build or test).
#
#   scripts/test.sh                      Release build in build/ (or $BUILD_DIR), every test
#   SANITIZE=address scripts/test.sh     ASan+UBSan build in build-asan/, every test
#   SANITIZE=thread scripts/test.sh      TSan build in build-tsan/, the tests labelled `tsan`
#                                        (or, if none is labelled yet, those matching router|store)
#   scripts/test.sh -R protocol          extra arguments go to ctest
# Environment: BUILD_TYPE (default Release; sanitizer builds use Debug at -O1), BUILD_DIR, JOBS,
# CTEST_JOBS (default 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

sanitize=${SANITIZE:-}
cmake_args=()
ctest_select=()
case "$sanitize" in
  "")
    build_type=${BUILD_TYPE:-Release}
    build_dir=${BUILD_DIR:-build} ;;
  address|thread)
    # Debug keeps assertions and full stacks; -O1 keeps the suite fast enough to run often.
    build_type=${BUILD_TYPE:-Debug}
    cmake_args+=(-DSWITCHBOARD_SANITIZE="$sanitize" "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1")
    if [ "$sanitize" = address ]; then
      build_dir=${BUILD_DIR:-build-asan}
      export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_string_checks=1}
      export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    else
      build_dir=${BUILD_DIR:-build-tsan}
      export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp}
    fi ;;
  *) echo "test.sh: SANITIZE must be empty, 'address' or 'thread' (got '$sanitize')" >&2; exit 2 ;;
esac

scripts/deps.sh
t_deps=$(elapsed "$t0")

t1=$(date +%s.%N)
BUILD_DIR=$build_dir scripts/build.sh "$build_type" "${cmake_args[@]}"
t_build=$(elapsed "$t1")

if [ "$sanitize" = thread ]; then
  if ctest --test-dir "$build_dir" -N -L tsan | grep -q '^Total Tests: [1-9]'; then
    ctest_select=(-L tsan)
  else
    ctest_select=(-R 'router|store')
  fi
fi

runner=()
# TSan (g++ 12) cannot map its shadow memory with high ASLR entropy; run without ASLR there.
if [ "$sanitize" = thread ] && [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 ] \
   && setarch "$(uname -m)" -R true 2>/dev/null; then
  runner=(setarch "$(uname -m)" -R)
fi

t2=$(date +%s.%N)
status=0
"${runner[@]}" ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j "${CTEST_JOBS:-2}" \
  "${ctest_select[@]}" "$@" || status=$?
t_test=$(elapsed "$t2")

echo "test.sh: ${sanitize:-no} sanitizer, $build_type in $build_dir: deps $t_deps, build $t_build," \
     "tests $t_test, total $(elapsed "$t0") -> $([ $status -eq 0 ] && echo PASSED || echo "FAILED ($status)")"
exit "$status"
