"""pytest-benchmark suite: vmcore-copy and its peers on the same synthetic vmcore, output
on the same file system. Each run checks its output; nothing is asserted about speed
(compare.py prints the side-by-side table with ratios)."""
import os
import shutil
import subprocess

import pytest

from kexec_py import vmcore

OURS = {
    "lzo": ["-l", "-d", "1"],
    "lzo-t2": ["-l", "-d", "1", "--num-threads", "2"],
    "zstd-t2": ["-z", "-d", "1", "--num-threads", "2"],
    "zlib-t2": ["-c", "-d", "1", "--num-threads", "2"],
    "none": ["-d", "1"],
    "elf": ["-E", "-d", "1"],
}


def _runner(cmd, out, stdout=None):
    def run():
        if os.path.exists(out):
            os.unlink(out)
        proc = subprocess.run(cmd, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return run


@pytest.mark.parametrize("name", sorted(OURS))
def test_vmcore_copy(benchmark, bench_vmcore, tmp_path, name):
    out = str(tmp_path / "dump")
    cmd = [vmcore.executable()] + OURS[name] + ["--message-level", "0", bench_vmcore, out]
    benchmark.pedantic(_runner(cmd, out), rounds=3, iterations=1)
    with vmcore.open(out) as d:
        assert not d.incomplete and d.nr_pages > 0
    benchmark.extra_info["bytes"] = os.path.getsize(out)


@pytest.mark.skipif(not shutil.which("makedumpfile"), reason="peer not installed")
@pytest.mark.parametrize("opt", ["-l", "-c"])
def test_makedumpfile(benchmark, bench_vmcore, tmp_path, opt):
    out = str(tmp_path / "dump")
    cmd = ["makedumpfile", opt, "-d", "1", "--message-level", "0", bench_vmcore, out]
    benchmark.pedantic(_runner(cmd, out), rounds=3, iterations=1)
    benchmark.extra_info["bytes"] = os.path.getsize(out)


def test_cp_sparse(benchmark, bench_vmcore, tmp_path):
    out = str(tmp_path / "copy")
    benchmark.pedantic(_runner(["cp", "--sparse=always", bench_vmcore, out], out),
                       rounds=3, iterations=1)
    assert os.path.getsize(out) == os.path.getsize(bench_vmcore)


def test_python_api_copy(benchmark, bench_vmcore, tmp_path):
    out = str(tmp_path / "dump")

    def run():
        if os.path.exists(out):
            os.unlink(out)
        return vmcore.copy(bench_vmcore, out, compression="lzo", threads=2)

    stats = benchmark.pedantic(run, rounds=3, iterations=1)
    assert stats.pages_written == stats.pages_in
