"""The Python API: copy() options, stats and callbacks; open() on every format; errors
that name the file and offset; the vmcoreinfo helpers."""
import os

import pytest

from kexec_py import vmcore
from kexec_py.errors import FormatError, KexecError
from kexec_py.vmcore import vmcoreinfo
from tests import vmcore_testlib as T
from tests.vmcore_synth import RELEASE, Synth


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return T.standard_vmcore(tmp_path_factory.mktemp("api-src"))


def test_copy_returns_stats(source, tmp_path):
    synth, src = source
    st = vmcore.copy(src, tmp_path / "d", compression="lzo", dump_level=1, threads=2)
    assert isinstance(st, vmcore.CopyStats)
    assert st.pages_in == st.pages_written == len(synth.frames())
    assert st.pages_zero == len(synth.zero_frames())
    assert (st.pages_excluded, st.pages_lost, st.incomplete) == (0, 0, False)
    assert st.file_size == os.path.getsize(tmp_path / "d") and st.bytes_out <= st.file_size
    assert st.page_size == 4096 and st.threads == 2 and st.compression == "lzo"
    assert st.to_dict()["format"] == "kdump"


def test_progress_callback_sees_every_page_once(source, tmp_path):
    synth, src = source
    calls = []
    vmcore.copy(src, tmp_path / "d", format="elf", progress=lambda *a: calls.append(a))
    dones = [c[0] for c in calls]
    assert dones == sorted(dones) and dones[-1] == len(synth.frames())
    assert all(c[1] == len(synth.frames()) for c in calls)
    assert calls[-1][2] > 0


def test_copy_from_and_to_file_descriptors(source, tmp_path):
    synth, src = source
    fd_in = os.open(src, os.O_RDONLY)
    fd_out = os.open(tmp_path / "d", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        vmcore.copy(fd_in, fd_out, compression="zstd")
    finally:
        os.close(fd_in)
        os.close(fd_out)
    T.check_with_reader(synth, str(tmp_path / "d"))


@pytest.mark.parametrize("kwargs,text", [
    (dict(format="xml"), "format must be"), (dict(compression="bz2"), "compression must be"),
    (dict(format="elf", compression="lzo"), "not compressed"),
    (dict(dump_level=31), "needs SYMBOL(mem_section) in VMCOREINFO"),
    (dict(dump_level=2, format="elf"), "needs SYMBOL(mem_section) in VMCOREINFO"),
    (dict(dump_level=-1), "dump_level must be"), (dict(threads=-2), "threads must be")])
def test_bad_options(source, tmp_path, kwargs, text):
    with pytest.raises(vmcore.OptionError) as info:
        vmcore.copy(source[1], tmp_path / "d", **kwargs)
    assert text in str(info.value) and isinstance(info.value, ValueError)
    assert not (tmp_path / "d").exists()


def test_existing_destination(source, tmp_path):
    (tmp_path / "d").write_bytes(b"x")
    with pytest.raises(vmcore.OptionError):
        vmcore.copy(source[1], tmp_path / "d")
    vmcore.copy(source[1], tmp_path / "d", overwrite=True)
    assert os.path.getsize(tmp_path / "d") > 1


def test_input_errors_name_file_and_offset(tmp_path):
    (tmp_path / "junk").write_bytes(b"\0" * 5000)
    with pytest.raises(vmcore.DumpFormatError) as info:
        vmcore.copy(tmp_path / "junk", tmp_path / "d")
    err = info.value
    assert isinstance(err, FormatError) and isinstance(err, KexecError)
    assert err.path == str(tmp_path / "junk") and err.offset == 0
    assert "offset 0" in str(err) and not (tmp_path / "d").exists()


def test_write_errors_name_the_destination(source, tmp_path):
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(vmcore.VmcoreError) as info:
            vmcore.copy(source[1], fd)
    finally:
        os.close(fd)
    assert "No space left" in str(info.value) or "headers" in str(info.value)


def test_open_reads_every_format(source, tmp_path):
    synth, src = source
    paths = {"elf-source": src}
    for name, kw in (("kdump", dict(compression="zlib")), ("elf", dict(format="elf"))):
        vmcore.copy(src, tmp_path / name, **kw)
        paths[name] = str(tmp_path / name)
    with open(tmp_path / "flat", "wb") as f:
        vmcore.copy(src, f, compression="lzo", flattened=True)
    paths["flat"] = str(tmp_path / "flat")
    for name, path in paths.items():
        with vmcore.open(path) as d:
            assert d.release == RELEASE, name
            assert d.page_size == 4096 and d.max_pfn == synth.frames()[-1] + 1
            a, b = synth.ram_spans()[1]
            assert d.read(a + 100, 3 * 4096) == synth.read(a + 100, 3 * 4096)
            assert list(d.pages()) == synth.frames(), name
            runs = list(d.runs())
            assert sum(c for _, c in runs) == d.nr_pages
            with pytest.raises(vmcore.PageNotInDump) as info:
                d.read_page(0x5000)              # a hole
            assert info.value.pfn == 0x5000 and path in str(info.value)
            assert d.verify().ok == len(synth.frames())
        assert "flat" not in name or d.flattened


def test_open_rejects_non_dumps(tmp_path):
    (tmp_path / "x").write_bytes(b"not a dump" * 100)
    with pytest.raises(vmcore.DumpFormatError) as info:
        vmcore.open(tmp_path / "x")
    assert str(tmp_path / "x") in str(info.value)
    with pytest.raises(FileNotFoundError):
        vmcore.open(tmp_path / "missing")


def test_vmcoreinfo_helpers(source):
    synth, src = source
    with vmcore.open(src) as d:
        info = d.vmcoreinfo
    assert info["PAGESIZE"] == "4096"
    assert vmcoreinfo.symbol(info, "init_uts_ns") > 0xffffffff80000000
    assert vmcoreinfo.number(info, "phys_base") == 0
    assert vmcoreinfo.offset(info, "uts_namespace.name") == 4
    assert vmcoreinfo.size(info, "page") == 64
    assert vmcoreinfo.symbol(info, "nope") is None
    assert vmcoreinfo.parse(b"A=1\nB=x=y\n\0junk") == {"A": "1", "B": "x=y"}


@pytest.mark.parametrize("ps", [16384, 65536])
def test_page_size_comes_from_vmcoreinfo(tmp_path, ps):
    s = Synth(page_size=ps, seed=3)
    s.add_range(0x1000000, 0x1000000 + 64 * ps, [(0, 10), (1, 20), (2, 5)])
    path = s.write(str(tmp_path / "v"))
    for kw in (dict(compression="lzo", threads=2), dict(format="elf")):
        st = vmcore.copy(path, tmp_path / ("d" + kw.get("format", "")), **kw)
        assert st.page_size == ps and st.pages_in == 64
    with vmcore.open(tmp_path / "d") as d:
        assert d.page_size == ps
        for pfn in s.frames():
            assert d.read_page(pfn) == s.page(pfn)
