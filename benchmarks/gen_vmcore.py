"""Write a synthetic ELF vmcore of a chosen size and page mix for the benchmarks.

    python -m benchmarks.gen_vmcore --size 1G --zero 45 --text 40 /tmp/v.vmcore

The mix is drawn in runs of 1..512 frames: zero pages, text-like pages (words from a
small vocabulary: compressible about 2:1 by lzo) and random (incompressible) pages, in
the given percentages (random = the rest). Layout as /proc/vmcore: PT_NOTE with
VMCOREINFO, a kernel-text PT_LOAD repeating 16 MiB of RAM, RAM below 3 GiB and above
4 GiB (sizes over 3 GiB), and page tables so makedumpfile can read the utsname.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.vmcore_synth import Synth, mix_summary  # noqa: E402

DEFAULT_MIX = dict(zero=45, text=40)   # random: the remaining 15 %


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def generate(path, size, zero=DEFAULT_MIX["zero"], text=DEFAULT_MIX["text"], seed=7):
    """Write the vmcore; returns {kind: frames} of the RAM it holds."""
    s = Synth.mixed(size, zero=zero, text=text, seed=seed)
    s.write(path)
    return {k: v for k, v in mix_summary(s).items() if v}


def describe(mix):
    total = sum(mix.values())
    return ", ".join("%s %.1f%%" % (k, 100.0 * v / total) for k, v in sorted(mix.items())
                     if v * 1000 >= total)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1G", help="RAM size (K/M/G suffixes)")
    ap.add_argument("--zero", type=int, default=DEFAULT_MIX["zero"], help="percent zero pages")
    ap.add_argument("--text", type=int, default=DEFAULT_MIX["text"], help="percent text pages")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("path")
    args = ap.parse_args(argv)
    mix = generate(args.path, parse_size(args.size), args.zero, args.text, args.seed)
    print("%s: %d bytes; %s" % (args.path, os.path.getsize(args.path), describe(mix)))


if __name__ == "__main__":
    main()
