"""Build and run the fuzz targets and print a table: the C parsers under libFuzzer
(tests/fuzz/fuzz_targets.c) and the Python parsers under atheris (tests/fuzz/py_targets.py).

    make fuzz [FUZZ_SECONDS=600]            every target, FUZZ_SECONDS each (default 60)
    .venv/bin/python -m tests.fuzz.run [--seconds N] [--replay-only] [--table FILE]
                                       [--out DIR] [TARGET...]

Each C target is built with clang -fsanitize=fuzzer,address,undefined from the library's
own sources; each Python target runs in atheris' libFuzzer with bytecode coverage. Inputs: seeds written by the test generators (tests/fuzz/seeds.py,
regenerated each run), the corpus kept in git (tests/fuzz/corpus/TARGET: regression
inputs of every defect found, and small inputs worth keeping) and a working corpus under
DIR/corpus/TARGET (DIR is build/fuzz) that grows from run to run. First every kept input and seed is
replayed once; then the target fuzzes for the time given. A crash, sanitizer report,
timeout (25 s) or memory blow-up (2.5 GB) leaves the input in DIR/crashes/ and
makes the run fail. Table columns: target, executions, corpus size (inputs), coverage
(libFuzzer's edge count), crashes.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "csrc"))
import build_tools  # noqa: E402

from tests.fuzz.seeds import PY_TARGETS, TARGETS as C_TARGETS  # noqa: E402

TARGETS = C_TARGETS + PY_TARGETS
OUT = os.path.join(ROOT, "build", "fuzz")
FLAGS = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
         "-fno-omit-frame-pointer", "-std=gnu11", "-D_GNU_SOURCE"]
LIBFUZZER_OPTS = ["-timeout=25", "-rss_limit_mb=2560", "-malloc_limit_mb=2560",
                  "-print_final_stats=1"]


def build(target):
    """build/fuzz/bin/TARGET, rebuilt when a source is newer."""
    sources = [os.path.join(ROOT, "csrc", s) for s in build_tools.VMCORE_SOURCES] + [
        os.path.join(ROOT, "csrc", "kexec", "decompress.c"),
        os.path.join(HERE, "fuzz_targets.c")]
    exe = os.path.join(OUT, "bin", target)
    if os.path.exists(exe) and all(os.path.getmtime(s) < os.path.getmtime(exe)
                                   for s in sources + [os.path.join(ROOT, "csrc", "include",
                                                                    "kexecpy.h")]):
        return exe
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    macros, libs = build_tools.vmcore_features()
    cmd = (["clang"] + FLAGS + ["-DFUZZ_%s" % target.upper()] +
           ["-D%s=%s" % m for m in macros] +
           ["-I" + os.path.join(ROOT, "csrc", "include"), "-o", exe] + sources +
           ["-l" + lib for lib in libs] + ["-lzstd"])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if proc.returncode != 0:
        raise SystemExit("fuzz: building %s failed:\n%s" % (target, proc.stdout[-4000:]))
    return exe


def stats(text):
    """(executions, coverage) from libFuzzer's output."""
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    cov = re.findall(r"\bcov: (\d+)", text)
    return int(execs[-1]) if execs else 0, int(cov[-1]) if cov else 0


def command(target):
    """The fuzzer's argv before its options."""
    if target in PY_TARGETS:
        return [sys.executable, "-m", "tests.fuzz.py_targets", target]
    return [build(target)]


def run_target(target, seconds, seed_dir, replay_only=False):
    cmd = command(target)
    kept = os.path.join(HERE, "corpus", target)
    work = os.path.join(OUT, "corpus", target)
    crashes = os.path.join(OUT, "crashes")
    os.makedirs(work, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    for old in glob.glob(os.path.join(crashes, target + "-*")):
        os.unlink(old)
    prefix = os.path.join(crashes, target + "-")
    inputs = [d for d in (kept, os.path.join(seed_dir, target)) if os.path.isdir(d)]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    log = []
    # 1. every kept input and seed once
    files = [os.path.join(d, f) for d in inputs for f in sorted(os.listdir(d))]
    if files:
        p = subprocess.run(cmd + LIBFUZZER_OPTS + ["-artifact_prefix=" + prefix, "-runs=1"]
                           + files, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, env=env)
        log.append(p.stdout)
        if p.returncode != 0:
            return {"target": target, "executions": len(files), "corpus": len(files),
                    "coverage": 0, "crashes": max(1, len(glob.glob(prefix + "*"))),
                    "log": "".join(log)[-6000:], "replayed": len(files)}
    execs, cov = len(files), 0     # a replay runs each kept input and seed once
    if replay_only:
        seconds = 0
    else:
        started = time.monotonic()
        p = subprocess.run(cmd + LIBFUZZER_OPTS + ["-artifact_prefix=" + prefix,
                                                   "-max_total_time=%d" % seconds,
                                                   work] + inputs, cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, env=env,
                           timeout=seconds + 600)
        log.append(p.stdout)
        execs, cov = stats(p.stdout)
        seconds = time.monotonic() - started
    found = glob.glob(prefix + "*")
    return {"target": target, "executions": execs, "corpus": len(os.listdir(work)),
            "coverage": cov, "crashes": len(found), "replayed": len(files),
            "seconds": round(seconds, 1), "log": "".join(log)[-6000:] if found else ""}


def table(rows):
    lines = ["| target | kind | seconds | executions | corpus (inputs) | coverage | crashes |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        kind = "Python (atheris)" if r["target"] in PY_TARGETS else "C (libFuzzer+ASan+UBSan)"
        lines.append("| %s | %s | %d | %d | %d | %d | %d |" % (
            r["target"], kind, r.get("seconds", 0), r["executions"], r["corpus"],
            r["coverage"], r["crashes"]))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("targets", nargs="*", default=list(TARGETS))
    ap.add_argument("--seconds", type=int, default=60, help="fuzzing time per target")
    ap.add_argument("--replay-only", action="store_true",
                    help="only run every kept input and seed once")
    ap.add_argument("--table", help="also write the table to this file")
    ap.add_argument("--out", help="working directory (default build/fuzz)")
    args = ap.parse_args(argv)
    global OUT
    if args.out:
        OUT = os.path.abspath(args.out)
    if not shutil.which("clang") and any(t in C_TARGETS for t in args.targets):
        raise SystemExit("fuzz: clang is missing: make deps installs it")
    from tests.fuzz import seeds
    seed_dir = os.path.join(OUT, "seeds")
    seeds.write(seed_dir)
    rows = []
    for t in args.targets:
        if t not in TARGETS:
            raise SystemExit("fuzz: unknown target %s (%s)" % (t, ", ".join(TARGETS)))
        r = run_target(t, args.seconds, seed_dir, args.replay_only)
        rows.append(r)
        print("fuzz: %-6s %s" % (t, "CRASH" if r["crashes"] else "ok"), flush=True)
        if r["crashes"]:
            print(r["log"], flush=True)
    out = table(rows)
    print(out)
    if args.table:
        with open(args.table, "w") as f:
            f.write(out + "\n")
    return 1 if any(r["crashes"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
