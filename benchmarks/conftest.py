"""Benchmarks: a synthetic vmcore shared by the session. KPY_BENCH_SIZE picks its size
(default 64M: the quick mode CI runs, which asserts nothing about speed)."""
import os

import pytest

from benchmarks.gen_vmcore import generate, parse_size


@pytest.fixture(scope="session")
def bench_vmcore(tmp_path_factory):
    size = parse_size(os.environ.get("KPY_BENCH_SIZE", "64M"))
    path = str(tmp_path_factory.mktemp("bench") / "bench.vmcore")
    generate(path, size)
    with open(path, "rb") as f:      # warm the page cache
        while f.read(1 << 24):
            pass
    yield path
    os.unlink(path)
