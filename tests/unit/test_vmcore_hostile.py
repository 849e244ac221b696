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


# ---- vmcore-dmesg: buffer sizes the dump's own variables claim (found by fuzzing) ----
def _log_dump(tmp_path, build):
    from tests import vmcore_synth as S
    s = S.Synth.standard()
    build(S, s)
    return s.write(str(tmp_path / "vmcore"))


def _lockless_huge_ring(S, s):
    S.lockless_log(s, [(1000, b"line", 2)])
    rb_at = S.LOG_BUF + 24 * 16 + 88 * 16 + (1 << 12)
    s.plant(rb_at + 48, struct.pack("<I", 31))          # size_bits: a 2 GiB text ring


def _lockless_huge_desc(S, s):
    S.lockless_log(s, [(1000, b"line", 2)])
    s.extra_info[s.extra_info.index("SIZE(prb_desc)=24")] = "SIZE(prb_desc)=1048576"


def _structured_huge_buf(S, s):
    S.structured_log(s, [(1000, b"line", b"")])
    s.plant(s.kernel_paddr(S.LOG_VARS) + 8, struct.pack("<I", 0xfffffff0))


def _plain_huge_buf(S, s):
    S.plain_log(s, b"<6>line\n")
    s.plant(s.kernel_paddr(S.LOG_VARS) + 8, struct.pack("<I", 0x80000000))


def _lockless_small_struct(S, s):
    S.lockless_log(s, [(1000, b"line", 2)])
    i = s.extra_info.index("SIZE(printk_ringbuffer)=88")
    s.extra_info[i] = "SIZE(printk_ringbuffer)=44"


def _structured_small_record(S, s):
    S.structured_log(s, [(1000, b"line", b"")])
    s.extra_info[s.extra_info.index("SIZE(printk_log)=16")] = "SIZE(printk_log)=4"


@pytest.mark.parametrize("build,why", [
    (_lockless_small_struct, "offsets lie outside its structures"),
    (_structured_small_record, "record's VMCOREINFO offsets lie outside SIZE"),
    (_lockless_huge_ring, "the printk text ring claims 2147483648 bytes"),
    (_lockless_huge_desc, "printk record sizes look wrong"),
    (_structured_huge_buf, "log_buf claims 4294967280 bytes"),
    (_plain_huge_buf, "log_buf claims 2147483648 bytes"),
])
def test_dmesg_buffer_sizes_are_checked_against_the_dump(tmp_path, build, why):
    """A log buffer size read from the crashed kernel's memory is bounded by the memory
    the dump holds before anything is allocated (it once asked malloc for the claim, an
    out-of-memory under the fuzzer's limit); the error names what claimed what."""
    elf = _log_dump(tmp_path, build)
    with pytest.raises(vmcore.VmcoreError, match=why):
        vmcore.dmesg(elf)
    import subprocess
    proc = subprocess.run([vmcore.executable("vmcore-dmesg"), elf], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    assert proc.returncode == 1 and why in proc.stderr.decode(), proc.stderr
    assert proc.stdout == b""


def test_flattened_stream_without_data_records(tmp_path):
    """A flattened stream of only its header and end marker: -R fails with a clear error
    rather than 'saved (0 records)', and the reader refuses it (its index was once
    qsorted from NULL)."""
    hdr = bytearray(4096)
    hdr[:16] = b"makedumpfile\0\0\0\0"
    struct.pack_into(">QQ", hdr, 16, 1, 1)
    stream = tmp_path / "stream"
    stream.write_bytes(bytes(hdr) + struct.pack(">qq", -1, -1))
    out = tmp_path / "out"
    proc = T.run("-R", str(out), input=stream.read_bytes())
    assert proc.returncode == 1, proc.stderr
    assert b"holds no data records" in proc.stderr and not out.exists()


# ---- ELF: memory claimed past the dumped kernel's physical address space ----
def _elf_with_last_load(src, tmp_path, paddr=None, memsz=None):
    b = bytearray(open(src, "rb").read())
    phoff, = struct.unpack_from("<Q", b, 32)
    phnum, = struct.unpack_from("<H", b, 56)
    last = [i for i in range(phnum) if struct.unpack_from("<I", b, phoff + 56 * i)[0] == 1][-1]
    o = phoff + 56 * last
    if paddr is not None:
        struct.pack_into("<Q", b, o + 24, paddr)
    if memsz is not None:
        struct.pack_into("<Q", b, o + 40, memsz)
    path = tmp_path / "bad.elf"
    path.write_bytes(bytes(b))
    return str(path)


def test_zero_fill_past_the_kernels_address_space_is_refused_at_once(tmp_path):
    """A PT_LOAD whose p_memsz claims 64 TiB of zero fill once had the copier loop over
    16 G frames and write 4 GiB of bitmaps; the claim is now checked against the dumped
    kernel's physical address space (46 bits with 4-level paging) before anything."""
    _, src = T.standard_vmcore(tmp_path)
    bad = _elf_with_last_load(src, tmp_path, memsz=64 << 40)
    for args in (["-l", "-d", "1"], ["-E", "-d", "0"]):
        proc = T.run(*args, bad, tmp_path / "out", check=1)
        err = proc.stderr.decode()
        assert "as zero fill past its file data" in err and "46-bit" in err, err
        assert not (tmp_path / "out").exists()
    with pytest.raises(vmcore.VmcoreError, match="physical address space"):
        vmcore.open(bad)


def test_a_high_segment_inside_the_address_space_is_copied_quickly(tmp_path):
    """RAM just under 2^46 is legal: the kdump bitmaps are sized by it (2 x 2 GiB, as
    makedumpfile's would be) and the copy finishes complete (seconds, not the minutes it
    once took), with the high frames where they were."""
    _, src = T.standard_vmcore(tmp_path)
    high = _elf_with_last_load(src, tmp_path, paddr=(1 << 46) - (2 << 20))
    out = tmp_path / "out"
    T.run("-l", "-d", "1", "--message-level", "0", high, out, check=0)
    with vmcore.open(str(out)) as d, vmcore.open(high) as h:
        assert not d.incomplete
        top = [r for r in h.runs()][-1]
        assert top[0] == ((1 << 46) - (2 << 20)) // 4096
        assert d.read_page(top[0]) == h.read_page(top[0])
