"""Hostile headers: sizes a dump claims are checked against the file and the
architecture before anything is allocated or looped over (issue 11). Each case is a
regression input for a defect an ASan build found: the kdump header's bitmap size and
max_mapnr once sized a calloc of up to 1 TiB (the release build then failed with an
empty message). make test-sanitize runs these under ASan, where such an allocation
aborts."""
import struct

import pytest

from kexec_py import vmcore
from tests import vmcore_testlib as T


@pytest.fixture(scope="module")
def kdump_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    _, src = T.standard_vmcore(d)
    out = str(d / "good.kdump")
    vmcore.copy(src, out, compression="lzo", dump_level=1)
    with open(out, "rb") as f:
        return f.read()


def patched(tmp_path, data, *fields):
    b = bytearray(data)
    for fmt, off, value in fields:
        struct.pack_into(fmt, b, off, value)
    path = tmp_path / "bad.kdump"
    path.write_bytes(bytes(b))
    return str(path)


BS = 4096


@pytest.mark.parametrize("fields,why", [
    # header version 6+: the sub header's 64-bit max_mapnr (offset 96) claims 2^50 frames
    ([("<Q", BS + 96, 1 << 50)], "beyond a 52-bit physical address space"),
    # a bitmap of 2^31 blocks (8 TiB) and a max_mapnr to match, in a file of kilobytes
    ([("<I", 436, 1 << 31), ("<Q", BS + 96, 1 << 38)], "past the end of the file"),
    ([("<I", 436, 3)], "bad bitmap size"),
])
def test_kdump_header_sizes_are_checked_before_allocating(kdump_file, tmp_path, fields, why):
    bad = patched(tmp_path, kdump_file, *fields)
    with pytest.raises(vmcore.VmcoreError, match=why):
        vmcore.open(bad)
    proc = T.run("-l", "-d", "31", bad, tmp_path / "out", check=1)
    assert why in proc.stderr.decode(), proc.stderr.decode()
    assert not (tmp_path / "out").exists()
    dmesg = T.run("--verify", bad, check=None)
    assert dmesg.returncode != 0 and why in dmesg.stderr.decode()
