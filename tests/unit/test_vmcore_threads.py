"""--num-threads: the ordered writer makes the output byte-identical whatever the thread
count; memory stays flat as the dump grows (peak RSS of the child, not time)."""
import os
import subprocess

import pytest

from tests import vmcore_testlib as T
from tests.vmcore_synth import Synth


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return T.standard_vmcore(tmp_path_factory.mktemp("threads-src"))


@pytest.mark.parametrize("args", [["-l", "-d", "1"], ["-z", "-d", "0"], ["-c", "-d", "1"],
                                  ["-d", "1"], ["-E", "-d", "1"]])
def test_output_is_identical_for_any_thread_count(source, tmp_path, args):
    synth, src = source
    outs = []
    for n in (0, 1, 2, 3, 8):
        out = tmp_path / ("t%d" % n)
        T.run(*args, "--num-threads", n, "--message-level", "0", src, out, check=0)
        outs.append(out.read_bytes())
    assert all(o == outs[0] for o in outs[1:])
    T.check_with_reader(synth, str(tmp_path / "t2"))


def _peak_rss_kib(args):
    """Peak RSS through GNU time: a child forked from this (big) Python process would
    inherit its high-water mark across exec."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", T.executable()] +
                          [str(a) for a in args], stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.split()[-1])


def test_memory_does_not_grow_with_the_dump(tmp_path):
    sizes = {}
    for mib in (32, 256):
        s = Synth.mixed(mib << 20, zero=60, text=30, seed=mib)
        src = s.write(str(tmp_path / ("v%d" % mib)))
        for args in (["-l"], ["-z", "--num-threads", "2"], ["-E"]):
            out = tmp_path / "out"
            if out.exists():
                out.unlink()
            sizes[(mib, args[0])] = _peak_rss_kib(args + ["-d", "1", "--message-level", "0",
                                                          src, out])
        os.unlink(src)
    for codec in ("-l", "-z", "-E"):
        small, big = sizes[(32, codec)], sizes[(256, codec)]
        assert big <= small * 1.1 + 1024, (codec, small, big)   # 8x the data, same memory
        assert big < 64 * 1024, (codec, big)          # the ceiling
