#!/usr/bin/env bash
# fuzz.sh TARGET SECONDS [libFuzzer args...]: runs one libFuzzer target under ASan+UBSan.
#
#   scripts/fuzz.sh protocol 60
#   scripts/fuzz.sh transport_message 1800 -jobs=1
#
# Targets are tests/fuzz/<TARGET>_fuzz.cc. Builds with Debian's clang-16 (installed if missing) in
# build-fuzz/, starts from the committed seed corpus tests/fuzz/corpus/<TARGET>/ (read only) and
# keeps new inputs in build-fuzz/corpus/<TARGET>/. A crash leaves its input in build-fuzz/ and
# exits non-zero; copy it into the committed corpus once fixed so the ctest replay keeps it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${1:?usage: fuzz.sh TARGET SECONDS}
seconds=${2:?usage: fuzz.sh TARGET SECONDS}
shift 2
[ -f "tests/fuzz/${target}_fuzz.cc" ] || { echo "fuzz.sh: no target tests/fuzz/${target}_fuzz.cc" >&2; exit 2; }

scripts/deps.sh --fuzz

# clang 16 predates the __cpp_concepts value libstdc++ 12 wants for <expected>; its concepts support
# is complete for what <expected> uses.
cxxflags="-D__cpp_concepts=202002L -Wno-macro-redefined -g -O1"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_COMPILER=clang++-16 "-DCMAKE_CXX_FLAGS_DEBUG=$cxxflags" \
  -DSWITCHBOARD_FUZZ=ON -DSWITCHBOARD_SANITIZE=address -DSWITCHBOARD_WERROR=OFF \
  -DSWITCHBOARD_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --target "fuzz_${target}" -j "${JOBS:-2}"

work="build-fuzz/corpus/${target}"
mkdir -p "$work"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd build-fuzz
exec "./tests/fuzz/fuzz_${target}" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
  "$@" "corpus/${target}" "$root/tests/fuzz/corpus/${target}"
