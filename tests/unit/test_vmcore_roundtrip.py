"""Round trips: the synthetic vmcore (holes, a duplicate kernel-text PT_LOAD, zero runs of
250..262 frames and at range ends, incompressible and one-byte pages, frames cut by
range ends) copied into every format and codec, then read back by our reader and by
drgn: every RAM byte equals the source. crash names the kernel."""
import shutil
import struct
import subprocess

import pytest

from kexec_py import native, vmcore
from tests import vmcore_testlib as T
from tests.vmcore_synth import KERNEL_TEXT_VADDR, RELEASE

# snappy is built in when libsnappy's header is there (install-deps puts it on Debian);
# without it, -p must say so (test_snappy_missing_is_a_clear_error)
SNAPPY = native.codec_available("snappy")
CODECS = ["none", "zlib", "lzo", "zstd"] + (["snappy"] if SNAPPY else [])
CASES = [("kdump", c, lvl) for c in CODECS for lvl in (0, 1)] + [("elf", "none", 0),
                                                                  ("elf", "none", 1)]
FLAG = {"none": [], "zlib": ["-c"], "lzo": ["-l"], "zstd": ["-z"], "snappy": ["-p"]}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return T.standard_vmcore(tmp_path_factory.mktemp("vmcore-src"))


@pytest.fixture(scope="module")
def dumps(source, tmp_path_factory):
    """Every case written once by the executable."""
    out = tmp_path_factory.mktemp("vmcore-dumps")
    paths = {}
    for fmt, codec, level in CASES:
        path = out / ("%s-%s-d%d" % (fmt, codec, level))
        args = FLAG[codec] + (["-E"] if fmt == "elf" else []) + ["-d", level]
        T.run(*args, "--message-level", "0", source[1], path, check=0)
        paths[(fmt, codec, level)] = str(path)
    return paths


def test_the_source_itself_reads_back(source):
    synth, path = source
    present, lost = T.check_with_reader(synth, path)
    assert present == len(synth.frames()) and lost == 0
    T.check_with_drgn(synth, path)


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_our_reader_reads_every_page_back(source, dumps, case):
    synth, _ = source
    present, lost = T.check_with_reader(synth, dumps[case])
    assert (present, lost) == (len(synth.frames()), 0)


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_drgn_reads_every_ram_byte_back(source, dumps, case):
    T.check_with_drgn(source[0], dumps[case])


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_header_facts(source, dumps, case):
    synth, _ = source
    with vmcore.open(dumps[case]) as d:
        assert d.format == case[0]
        assert not d.incomplete and not d.flattened
        assert d.release == RELEASE and d.machine == "x86_64"
        assert d.vmcoreinfo["OSRELEASE"] == RELEASE
        assert d.nr_cpus == 2
        if case[0] == "kdump":
            assert d.compression == case[1]
            assert d.dump_level == case[2]
            assert d.nr_pages == len(synth.frames())


@pytest.mark.parametrize("case", [("kdump", "lzo", 1), ("kdump", "none", 0), ("elf", "none", 1)])
def test_crash_names_the_kernel(dumps, case):
    assert shutil.which("crash"), "crash is missing: tools/install-deps.sh"
    out = subprocess.run(["crash", "--osrelease", dumps[case]], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert out.stdout.strip() == RELEASE, out.stdout


def _kdump_layout(path):
    with open(path, "rb") as f:
        data = f.read()
    bs, sub, bitmap_blocks = struct.unpack_from("<III", data, 428)
    one = bitmap_blocks // 2 * bs
    table = (1 + sub) * bs + 2 * one
    return data, bs, sub, one, table


def test_kdump_header_fields(source, dumps):
    synth, _ = source
    data, bs, sub, one, table = _kdump_layout(dumps[("kdump", "lzo", 1)])
    assert data[:8] == b"KDUMP   "
    assert struct.unpack_from("<I", data, 8)[0] == 6
    assert data[12 + 65:12 + 65 + 10] == b"synth-host"     # utsname from init_uts_ns
    assert struct.unpack_from("<Q", data, 408)[0] == 1700000000
    assert struct.unpack_from("<I", data, 424)[0] == 0x2    # lzo, complete
    assert struct.unpack_from("<I", data, 460)[0] == 2
    max_pfn = synth.frames()[-1] + 1
    assert struct.unpack_from("<I", data, 440)[0] == max_pfn
    phys_base, level = struct.unpack_from("<QI", data, bs)
    assert level == 1
    off_vmi, size_vmi, off_note, size_note = struct.unpack_from("<QQQQ", data, bs + 32)
    assert off_note == bs + 104 and size_note == len(synth.notes())
    assert data[off_vmi:off_vmi + size_vmi] == synth.vmcoreinfo()
    assert struct.unpack_from("<Q", data, bs + 96)[0] == max_pfn
    assert one >= (max_pfn + 7) // 8
    # both bitmaps: exactly the RAM frames
    bits = {i for i in range(max_pfn) if data[(1 + sub) * bs + i // 8] >> (i % 8) & 1}
    assert bits == set(synth.frames())
    assert data[(1 + sub) * bs:(1 + sub) * bs + one] == data[(1 + sub) * bs + one:table]


def test_zero_pages_share_one_stored_page_at_level_1(source, dumps):
    synth, _ = source
    data, bs, sub, one, table = _kdump_layout(dumps[("kdump", "lzo", 1)])
    zeros = set(synth.zero_frames())
    descs = [struct.unpack_from("<QIIQ", data, table + 24 * i) for i, _ in
             enumerate(synth.frames())]
    zero_descs = {d for pfn, d in zip(synth.frames(), descs) if pfn in zeros}
    assert len(zeros) > 1000 and len(zero_descs) == 1
    off, size, flags, _ = zero_descs.pop()
    assert (size, flags) == (bs, 0) and data[off:off + bs] == bytes(bs)
    assert all(d[0] != 0 for d in descs)
    # incompressible pages are stored raw (flags 0), compressible ones with lzo (2)
    assert {d[2] for d in descs} == {0, 2}
    # level 0: every page has its own data
    data0, _, _, _, table0 = _kdump_layout(dumps[("kdump", "lzo", 0)])
    offs = [struct.unpack_from("<Q", data0, table0 + 24 * i)[0]
            for i, _ in enumerate(synth.frames())]
    assert len(set(offs)) == len(offs)


def _phdrs(path):
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    phoff, = struct.unpack_from("<Q", data, 32)
    flags, = struct.unpack_from("<I", data, 48)
    phnum, = struct.unpack_from("<H", data, 56)
    return flags, [struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * i) for i in range(phnum)]


def test_elf_zero_runs_of_256_or_more_are_left_to_p_memsz(source, dumps):
    synth, _ = source
    flags, ph = _phdrs(dumps[("elf", "none", 1)])
    assert flags & 1 == 0 and ph[0][0] == 4
    loads = [p for p in ph[1:] if p[0] == 1]
    zeros = set(synth.zero_frames())
    for typ, _, off, vaddr, paddr, filesz, memsz, _ in loads:
        assert paddr % 4096 == 0 and filesz % 4096 == 0 and memsz >= filesz
        first = paddr // 4096
        kept = range(first, first + filesz // 4096)
        left = range(first + filesz // 4096, first + memsz // 4096)
        assert all(p in zeros for p in left)
        # a written run of zeros inside a segment is shorter than 256 frames
        run = 0
        for p in kept:
            run = run + 1 if p in zeros else 0
            assert run < 256, "a zero run of 256 frames was written at %#x" % p
    # runs of 255 are written, 256+ split off: segments start right after each long run
    starts = {p[4] // 4096 for p in loads}
    base = 0x100000 // 4096
    pos = base + 300 + 1
    for n in range(250, 263):
        after = pos + n
        assert (after in starts) == (n >= 256), n
        pos = after + 1
    # leading run of 300 zero frames: a segment with p_filesz 0 covers it
    assert any(p[4] == 0x100000 and p[5] == 0 and p[6] == 300 * 4096 for p in loads)
    # no kernel-text duplicate: each frame once
    covered = [range(p[4] // 4096, (p[4] + p[6]) // 4096) for p in loads]
    assert sum(len(c) for c in covered) == len(synth.frames())


def test_elf_level_0_writes_every_page(source, dumps):
    synth, _ = source
    _, ph = _phdrs(dumps[("elf", "none", 0)])
    loads = [p for p in ph[1:] if p[0] == 1]
    assert all(p[5] == p[6] for p in loads)
    assert sum(p[5] for p in loads) == 4096 * len(synth.frames())


def test_outputs_carry_the_vmcoreinfo_note(source, dumps):
    synth, _ = source
    for path in dumps.values():
        with vmcore.open(path) as d:
            assert d.vmcoreinfo_text.encode() == synth.vmcoreinfo()
            assert d.notes == synth.notes()


def test_kernel_text_segment_is_not_copied_twice(source, dumps):
    synth, _ = source
    with vmcore.open(dumps[("kdump", "none", 0)]) as d:
        assert d.nr_pages == len(synth.frames())
        assert KERNEL_TEXT_VADDR  # the source has the duplicate segment
        assert list(d.pages()) == synth.frames()


def test_snappy_is_built_or_refused_clearly(source, tmp_path):
    proc = T.run("-p", "--message-level", "4", source[1], tmp_path / "d")
    if SNAPPY:
        assert proc.returncode == 0
        with vmcore.open(tmp_path / "d") as d:
            assert d.compression == "snappy"
    else:
        assert proc.returncode == 1
        assert b"snappy compression is not available" in proc.stderr
        assert not (tmp_path / "d").exists()
