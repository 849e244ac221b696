#!/bin/sh
# The C library and tools built with ASan and UBSan, and every test that drives them run
# against that build (make test-sanitize; .ci/run calls it). The normal build is left
# alone: the tree is copied to build/sanitize/src and built there in place.
#   tools/test-sanitize.sh VENV_PYTHON [pytest args]
set -eu
VPY=$1
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT/build/sanitize/src
rm -rf "$DEST"
mkdir -p "$DEST"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | \
    xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$DEST"
export KPY_SANITIZE=1
(cd "$DEST" && "$ROOT/$VPY" setup.py -q build_ext --inplace >build.log 2>&1) || {
    tail -40 "$DEST/build.log"; exit 1; }
# Python itself is not instrumented: the runtimes are preloaded for the cffi module;
# leaks are Python's own, so only memory errors and undefined behaviour are fatal.
ASAN_LIB=$(cc -print-file-name=libasan.so)
UBSAN_LIB=$(cc -print-file-name=libubsan.so)
# Reports go to files as well: a test that captures a tool's output, or a Python process
# that dies with its captured output, would hide them.
rm -rf "$DEST/reports" && mkdir -p "$DEST/reports"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$DEST/reports/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$DEST/reports/ubsan
cd "$DEST"
status=0
LD_PRELOAD="$ASAN_LIB $UBSAN_LIB" PYTHONPATH="$DEST" "$ROOT/$VPY" -m pytest -q -p no:cacheprovider \
    tests/unit/test_vmcore_*.py tests/unit/test_native.py tests/unit/test_kdump_insmod.py \
    "tests/unit/test_kexec_load_plan.py::test_purgatory_sha256_matches_hashlib" \
    "tests/unit/test_kexec_load_plan.py::test_purgatory_sha256_incremental_updates" "$@" ||
    status=$?
if ls "$DEST"/reports/* >/dev/null 2>&1; then
    echo "test-sanitize: sanitizer reports:"
    for f in "$DEST"/reports/*; do echo "--- $f"; head -60 "$f"; done
    exit 1
fi
exit $status
