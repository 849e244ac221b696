"""`kexec -s -l KERNEL --initrd INITRD` up to the syscall: ours beside kexec-tools', in
one run (issue 12, item 3). Not a test: numbers for docs/performance.md.

    .venv/bin/python -m benchmarks.kexec_startup [--runs N] [KERNEL INITRD]

Each command runs N times (default 40); the table shows the median and the ratio to
kexec-tools. The package is byte-compiled first, as an installed one is. kexec-tools has no dry run, so it runs as uid 65534 and stops at the
syscall with EPERM, after reading both files; ours runs with --dry-run, which does the
same work and stops before the syscall. Rows:

- kexec-tools: /usr/sbin/kexec as nobody;
- ours, dev venv: the console script of the editable install (pip's editable finder
  adds its own import cost to every start);
- ours, plain path: what the console script runs, with `python -S` and the package
  and cffi on PYTHONPATH, as a system install without .pth hooks starts;
- python -S -c pass, python -c pass: the interpreter's own start-up, for reference.
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import sysconfig
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_ms(cmd, runs, env=None):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def default_files():
    for k in sorted(glob.glob("/var/cache/kexec-py-vm/*/vmlinuz")) + \
            sorted(glob.glob(os.path.expanduser("~/.cache/kexec-py/vm/*/vmlinuz"))):
        i = os.path.join(os.path.dirname(k), "initrd.img")
        if os.path.exists(i):
            return k, i
    raise SystemExit("no VM kernel cached: run `make kernel`, or name KERNEL INITRD")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", metavar="KERNEL INITRD")
    ap.add_argument("--runs", type=int, default=40)
    a = ap.parse_args(argv)
    kernel, initrd = a.files if len(a.files) == 2 else default_files()
    # An installed package is byte-compiled (the RPM's %py_byte_compile); this tree may
    # run with PYTHONDONTWRITEBYTECODE, where every start would compile every module.
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "kexec_py")],
                   check=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    peer = "/usr/sbin/kexec"
    venv_bin = os.path.dirname(sys.executable)
    plain_env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    args = ["-s", "-l", kernel, "--initrd", initrd]
    rows = [
        ("kexec-tools (as nobody, EPERM at the syscall)",
         ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", peer] + args, None),
        ("ours, dev venv console script (--dry-run)",
         [os.path.join(venv_bin, "kexec")] + args + ["--dry-run"], None),
        ("ours, python -S, plain path (--dry-run)",
         [sys.executable, "-S", "-c", "import sys; from kexec_py.cli.kexec import main; "
          "sys.argv[0] = 'kexec'; sys.exit(main())"] + args + ["--dry-run"], plain_env),
        ("python -S -c pass", [sys.executable, "-S", "-c", "pass"], None),
        ("python -c pass (dev venv)", [sys.executable, "-c", "pass"], None),
    ]
    results = [(name, median_ms(cmd, a.runs, env)) for name, cmd, env in rows]
    base = results[0][1]
    print("kernel %s (%d bytes), initrd %s (%d bytes), %d runs each, median"
          % (kernel, os.path.getsize(kernel), initrd, os.path.getsize(initrd), a.runs))
    print("| command | ms | x kexec-tools |")
    print("|---|---|---|")
    for name, ms in results:
        print("| %s | %.1f | %.2f |" % (name, ms, ms / base))


if __name__ == "__main__":
    main()
