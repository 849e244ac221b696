"""Side by side: vmcore-copy against makedumpfile and `cp --sparse=always` on the same
synthetic vmcore (page cache warm, output on the same file system), in one run.

    python -m benchmarks.compare --sizes 1G,4G --rounds 3 [--dir /tmp] [--markdown]

For each size it writes a vmcore (gen_vmcore's mix), runs every command `rounds` times
round-robin (so background noise hits all of them alike), keeps the best time, and prints
time, ratio to makedumpfile -l -d 1, size, size ratio and peak RSS. The vmcores and
dumps are deleted afterwards. Ratios, not bare times, are the result.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.gen_vmcore import describe, generate, parse_size  # noqa: E402
from kexec_py import native, vmcore  # noqa: E402

REFERENCE = "makedumpfile -l -d 1"
CP = "cp --sparse=always"


def commands(copier):
    """(label, argv-with-IN-and-OUT) in table order."""
    ours = [("-l -d 1", ["-l", "-d", "1"]),
            ("-l -d 1 --num-threads 2", ["-l", "-d", "1", "--num-threads", "2"]),
            ("-z -d 1", ["-z", "-d", "1"]),
            ("-z -d 1 --num-threads 2", ["-z", "-d", "1", "--num-threads", "2"]),
            ("-c -d 1 --num-threads 2", ["-c", "-d", "1", "--num-threads", "2"]),
            ("-p -d 1", ["-p", "-d", "1"]),
            ("-d 1 (no compression)", ["-d", "1"]),
            ("-E -d 1", ["-E", "-d", "1"])]
    rows = [(REFERENCE, ["makedumpfile", "-l", "-d", "1", "--message-level", "0", "IN", "OUT"]),
            ("makedumpfile -c -d 1", ["makedumpfile", "-c", "-d", "1", "--message-level", "0",
                                      "IN", "OUT"]),
            ("makedumpfile -E -d 1", ["makedumpfile", "-E", "-d", "1", "--message-level", "0",
                                      "IN", "OUT"]),
            (CP, ["cp", "--sparse=always", "IN", "OUT"])]
    rows += [("vmcore-copy " + label, [copier] + args + ["--message-level", "0", "IN", "OUT"])
             for label, args in ours if "-p" not in args or native.codec_available("snappy")]
    return rows


def run_once(argv, src, out):
    if os.path.exists(out):
        os.unlink(out)
    cmd = ["/usr/bin/time", "-f", "%M"] + [src if a == "IN" else out if a == "OUT" else a
                                           for a in argv]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          universal_newlines=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), proc.stderr[-500:]))
    rss_kib = int(proc.stderr.split()[-1])
    return elapsed, os.path.getsize(out), rss_kib


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def measure(src, outdir, rounds, rows):
    results = {label: {"times": []} for label, _ in rows}
    for _ in range(rounds):
        for label, argv in rows:
            warm(src)
            out = os.path.join(outdir, "out")
            t, size, rss = run_once(argv, src, out)
            r = results[label]
            r["times"].append(t)
            r["size"], r["rss"] = size, max(rss, r.get("rss", 0))
            os.unlink(out)
    for r in results.values():
        r["best"] = min(r["times"])
    return results


def table(size_name, mix, results, markdown):
    ref, cp = results[REFERENCE], results[CP]
    head = ("command", "best s", "vs makedumpfile -l", "vs cp", "size MiB",
            "size vs mkd -l", "peak RSS MiB")
    lines = ["%s synthetic vmcore (%s)" % (size_name, mix)]
    fmt = "| %s |" if markdown else "%s"
    sep = " | " if markdown else "  "
    lines.append(fmt % sep.join(head))
    if markdown:
        lines.append("|" + "|".join("---" for _ in head) + "|")
    for label, r in results.items():
        cells = (label, "%.2f" % r["best"], "%.2fx" % (ref["best"] / r["best"]),
                 "%.2fx" % (cp["best"] / r["best"]), "%.0f" % (r["size"] / 1048576.0),
                 "%.3f" % (r["size"] / float(ref["size"])) if "-E" not in label and
                 "cp " not in label and "no compression" not in label else "-",
                 "%.1f" % (r["rss"] / 1024.0))
        lines.append(fmt % sep.join(cells))
    return "\n".join(lines)


def targets(results):
    """The issue's targets, each with its measured ratio."""
    ref = results[REFERENCE]
    cp = results[CP]
    one = results["vmcore-copy -l -d 1"]
    two = results["vmcore-copy -l -d 1 --num-threads 2"]
    z2 = results["vmcore-copy -z -d 1 --num-threads 2"]
    elf = results["vmcore-copy -E -d 1"]
    checks = [
        ("-l -d 1, 1 thread no slower than makedumpfile -l -d 1",
         ref["best"] / one["best"], ref["best"] / one["best"] >= 1.0),
        ("-l -d 1 size within 2% of makedumpfile's", one["size"] / ref["size"],
         abs(one["size"] / ref["size"] - 1) <= 0.02),
        ("-l -d 1 --num-threads 2 >= 1.4x makedumpfile -l -d 1", ref["best"] / two["best"],
         ref["best"] / two["best"] >= 1.4),
        ("-z -d 1 --num-threads 2 faster than makedumpfile -l -d 1",
         ref["best"] / z2["best"], ref["best"] / z2["best"] > 1.0),
        ("-z -d 1 --num-threads 2 file smaller than makedumpfile -l", z2["size"] / ref["size"],
         z2["size"] < ref["size"]),
        ("-E -d 1 no slower than cp --sparse=always", cp["best"] / elf["best"],
         cp["best"] / elf["best"] >= 1.0),
    ]
    return ["%-62s %6.3f  %s" % (text, ratio, "met" if ok else "NOT MET")
            for text, ratio, ok in checks]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1G,4G")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    for tool in ("makedumpfile", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit("compare: %s is needed" % tool)
    rows = commands(vmcore.executable())
    rss = {}
    workdir = os.path.join(args.dir, "kpy-bench-%d" % os.getpid())
    os.makedirs(workdir)
    try:
        for size_name in args.sizes.split(","):
            src = os.path.join(workdir, "synthetic-%s.vmcore" % size_name)
            mix = describe(generate(src, parse_size(size_name)))
            results = measure(src, workdir, args.rounds, rows)
            os.unlink(src)
            print(table(size_name, mix, results, args.markdown))
            print("\n".join(targets(results)))
            print()
            rss[size_name] = {k: v["rss"] for k, v in results.items()}
            sys.stdout.flush()
        if len(rss) > 1:
            names = list(rss)
            small, big = rss[names[0]], rss[names[-1]]
            for label in small:
                if label.startswith("vmcore-copy"):
                    print("peak RSS %s: %s %.1f MiB, %s %.1f MiB (%.3f)" % (
                        label, names[0], small[label] / 1024.0, names[-1],
                        big[label] / 1024.0, big[label] / float(small[label])))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
