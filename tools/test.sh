#!/usr/bin/env bash
# Quick start, command 2 (and what CI runs): install what is missing, then build and run the
# whole suite through CTest in three build trees (Release, ASan+UBSan, TSan), check the
# formatting, build with clang warning-free, and build a consumer against the installed
# package. Each stage prints its duration; any failure stops the script non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
jobs=$(nproc)

stage() { printf '\n=== %s ===\n' "$*"; SECONDS=0; }
done_stage() { printf '=== done in %ss ===\n' "$SECONDS"; }

stage "format check (clang-format-14)"
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find include src tests bench examples -name '*.[ch]pp')
clang-format-14 --dry-run --Werror "${files[@]}"
done_stage

stage "Release: build and test"
cmake --preset release -DGORT_WERROR=ON >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release
done_stage

stage "install + find_package(gort) consumer"
rm -rf build/install build/consumer
cmake --install build/release --prefix build/install >/dev/null
cmake -S tests/install -B build/consumer -G Ninja -DCMAKE_PREFIX_PATH="$PWD/build/install" >/dev/null
cmake --build build/consumer
build/consumer/gort_consumer
done_stage

stage "clang-14: warning-free build"
cmake --preset clang -DGORT_WERROR=ON -DGORT_BUILD_TESTS=OFF >/dev/null
cmake --build --preset clang -j "$jobs"
done_stage

stage "aarch64: cross-build, run the smoke checks under qemu-user"
cmake -S tests/arch -B build/aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" >/dev/null
cmake --build build/aarch64 -j "$jobs"
qemu-aarch64 build/aarch64/arch_smoke
# qemu-user accepts MADV_GUARD_INSTALL without doing it: force the mprotect guards there.
set +e
out=$(GORT_STACK_GUARD=mprotect qemu-aarch64 build/aarch64/arch_smoke overflow 2>&1); rc=$?
set -e
grep -q "fatal error: stack overflow" <<<"$out" && [[ $rc == 2 ]] || { echo "$out"; echo "aarch64 overflow check failed (rc=$rc)"; exit 1; }
set +e
out=$(qemu-aarch64 build/aarch64/arch_smoke panic 2>&1); rc=$?
set -e
grep -q "panic: std::runtime_error: arch smoke" <<<"$out" && [[ $rc == 2 ]] || { echo "$out"; echo "aarch64 panic check failed (rc=$rc)"; exit 1; }
echo "aarch64: stack overflow and panic reports: 2 passed, 0 failed"
done_stage

stage "ASan+UBSan: build and test"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset asan
done_stage

stage "TSan: build and test"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --preset tsan
done_stage
