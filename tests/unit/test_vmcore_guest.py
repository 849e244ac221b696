"""Guest dumps taken by the hypervisor: QEMU's dump-guest-memory ELF form (paging=false).

The synthetic memory of the other vmcore tests, written as QEMU writes it: no kernel-text
PT_LOAD (p_vaddr the physical address, or 0), data packed right after the notes (not
page aligned), CORE and QEMU notes per vCPU, the guest's VMCOREINFO only when it ran
with -device vmcoreinfo, PN_XNUM past 65534 segments. Read back page by page against
the source, copied at -d 1 and -d 31 (the same frames as from the /proc/vmcore form),
with VMCOREINFO supplied from a file when the dump has none; a 32-bit guest's dump is
refused by name.
"""
import struct
import subprocess

import pytest

from kexec_py import vmcore
from tests import vmcore_synth as S
from tests import vmcore_testlib as T
from tests.vmcore_synth import Synth

from .test_vmcore_levels import build, excluded


@pytest.fixture(scope="module")
def levels(tmp_path_factory):
    """The level-capable synthetic kernel as /proc/vmcore, as QEMU with VMCOREINFO, and
    as QEMU without it; and its VMCOREINFO text as makedumpfile -g writes it."""
    d = tmp_path_factory.mktemp("guest")
    s = build()
    S.lockless_log(s, [(1000000 * i, b"guest line %d" % i, 2) for i in range(5)])
    info = d / "vmcoreinfo.txt"
    info.write_bytes(s.vmcoreinfo())
    return {"synth": s, "proc": s.write(str(d / "proc.vmcore")),
            "qemu": s.write_qemu(str(d / "qemu.elf")),
            "bare": s.write_qemu(str(d / "bare.elf"), vmcoreinfo=False, vaddr="zero"),
            "info": str(info)}


def test_qemu_layout_is_what_the_test_means(levels):
    with open(levels["qemu"], "rb") as f:
        head = f.read(64 + 56 * 3)
    phnum = struct.unpack_from("<H", head, 56)[0]
    offsets = [struct.unpack_from("<Q", head, 64 + 56 * i + 8)[0] for i in range(1, 3)]
    vaddrs = [struct.unpack_from("<QQ", head, 64 + 56 * i + 16) for i in range(1, 3)]
    assert phnum == 1 + len(levels["synth"].ranges)
    assert any(off % 4096 for off in offsets)             # not page aligned
    assert all(v == p for v, p in vaddrs)                 # no kernel-text mapping


@pytest.mark.parametrize("name", ["qemu", "bare"])
def test_every_page_reads_back(levels, name):
    s = levels["synth"]
    present, lost = T.check_with_reader(s, levels[name])
    assert (present, lost) == (len(s.frames()), 0)


def test_phys_base_from_vmcoreinfo_gives_the_kernel_mapping(levels):
    with vmcore.open(levels["qemu"]) as d:
        assert d.release == S.RELEASE and d.phys_base == 0
        assert "guest line 4" in d.dmesg()


def test_level_31_keeps_the_same_frames_as_from_proc_vmcore(levels, tmp_path):
    ram = set(levels["synth"].frames())
    got = {}
    for name in ("proc", "qemu"):
        out = str(tmp_path / name)
        vmcore.copy(levels[name], out, compression="lzo", dump_level=31)
        with vmcore.open(out) as d:
            got[name] = set(d.pages())
    assert got["qemu"] == got["proc"] == ram - excluded(31)


def test_notes_are_carried_into_the_output(levels, tmp_path):
    for fmt in ("kdump", "elf"):
        out = str(tmp_path / fmt)
        vmcore.copy(levels["qemu"], out, format=fmt, dump_level=1)
        with vmcore.open(out) as d:
            notes = d.notes
        assert notes.count(b"QEMU\0") == 2 and notes.count(b"CORE\0") == 2, fmt
        assert b"VMCOREINFO\0" in notes


def test_without_vmcoreinfo_levels_above_1_say_how_to_get_one(levels, tmp_path):
    T.run("-l", "-d", "1", "--message-level", "0", levels["bare"], tmp_path / "d1", check=0)
    proc = T.run("-l", "-d", "31", levels["bare"], tmp_path / "d31", check=1)
    err = proc.stderr.decode()
    assert "-device vmcoreinfo" in err and "--vmcoreinfo FILE" in err, err
    assert not (tmp_path / "d31").exists()
    with pytest.raises(vmcore.OptionError, match="--vmcoreinfo"):
        vmcore.copy(levels["bare"], str(tmp_path / "py31"), dump_level=31)


def test_vmcoreinfo_file_supplies_the_missing_note(levels, tmp_path):
    ram = set(levels["synth"].frames())
    for args in (["--vmcoreinfo", levels["info"]], ["-i", levels["info"]]):
        out = tmp_path / ("d31" + args[0])
        T.run(*args, "-l", "-d", "31", "--message-level", "0", levels["bare"], out, check=0)
        with vmcore.open(str(out)) as d:
            assert set(d.pages()) == ram - excluded(31)
            assert d.release == S.RELEASE
    with open(levels["info"]) as f:
        text = f.read()
    st = vmcore.copy(levels["bare"], str(tmp_path / "py31"), dump_level=31, vmcoreinfo=text)
    assert st.pages_written == len(ram - excluded(31))
    with vmcore.open(levels["bare"], vmcoreinfo=text) as d:
        assert d.release == S.RELEASE and "guest line 2" in d.dmesg()
    assert "guest line 3" in vmcore.dmesg(levels["bare"], vmcoreinfo=text)


def test_vmcore_dmesg_takes_a_vmcoreinfo_file(levels):
    dmesg = vmcore.executable("vmcore-dmesg")
    bare = subprocess.run([dmesg, levels["bare"]], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert bare.returncode == 1 and "VMCOREINFO" in bare.stderr
    ok = subprocess.run([dmesg, "--vmcoreinfo", levels["info"], levels["bare"]],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == subprocess.run([dmesg, levels["qemu"]], stdout=subprocess.PIPE,
                                       universal_newlines=True).stdout
    assert "guest line 4" in ok.stdout


@pytest.mark.parametrize("text,why", [(b"", "empty"), (b"no equals sign\n", "KEY=VALUE"),
                                      (b"A=\x01\x02\n", "not text"),
                                      (b"A=1\n" * 300000, "bigger than 1 MiB")])
def test_bad_vmcoreinfo_files_are_named(levels, tmp_path, text, why):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(text)
    proc = T.run("-i", bad, "-d", "1", levels["bare"], tmp_path / "out", check=1)
    assert why in proc.stderr.decode(), proc.stderr.decode()
    assert not (tmp_path / "out").exists()


def test_pn_xnum_segment_count(tmp_path):
    """70000 segments (each a 64-byte piece of its own frame): e_phnum is PN_XNUM and the
    count is in section header 0; read and copied in n log n."""
    s = Synth()
    n = 70000
    s.kinds = bytearray([S.TEXT]) * (2 * n)
    s.ranges = [(pfn * 4096 * 2, pfn * 4096 * 2 + 64) for pfn in range(n)]
    path = s.write_qemu(str(tmp_path / "xnum.elf"), vmcoreinfo=False, xnum=True)
    with open(path, "rb") as f:
        assert struct.unpack_from("<H", f.read(64), 56)[0] == 0xFFFF
    with vmcore.open(path) as d:
        assert d.nr_pages == n
        for pfn in (0, 2 * 12345, 2 * (n - 1)):
            assert d.read_page(pfn) == s.page(pfn)
    st = vmcore.copy(path, str(tmp_path / "out"), compression="zlib")
    assert st.pages_written == n


def test_a_32_bit_guest_dump_is_refused_by_name(tmp_path):
    path = tmp_path / "i386.elf"
    path.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HHI", 4, 3, 1) +
                     bytes(64))
    with pytest.raises(vmcore.DumpFormatError, match="32-bit x86 dump"):
        vmcore.open(str(path))
    proc = T.run("-d", "1", path, tmp_path / "out", check=1)
    assert "32-bit x86 dump" in proc.stderr.decode()


@pytest.mark.parametrize("patch,why", [
    (lambda h, sh: struct.pack_into("<Q", h, 40, 0), "no section header 0"),
    (lambda h, sh: struct.pack_into("<I", sh, 44, 0), "counts no program headers"),
    (lambda h, sh: struct.pack_into("<I", sh, 44, 0xFFFFFFFF), "do not fit in the file"),
])
def test_bad_pn_xnum_headers_are_named(tmp_path, patch, why):
    s = Synth()
    s.kinds = bytearray([S.TEXT]) * 4
    s.ranges = [(0, 4096 * 4)]
    data = bytearray(open(s.write_qemu(str(tmp_path / "x.elf"), xnum=True), "rb").read())
    head, sh = data[:64], data[64:128]
    patch(head, sh)
    data[:64], data[64:128] = head, sh
    (tmp_path / "bad.elf").write_bytes(bytes(data))
    with pytest.raises(vmcore.DumpFormatError, match=why):
        vmcore.open(str(tmp_path / "bad.elf"))


def test_elf_output_past_65534_segments_uses_pn_xnum(tmp_path):
    """65600 separate frames in: 65600 PT_LOADs (+ the PT_NOTE) out, so e_phnum is PN_XNUM
    and section header 0 holds the count; our reader and drgn read it back."""
    s = Synth()
    n = 65600
    s.kinds = bytearray([S.TEXT]) * (2 * n)
    s.ranges = [(pfn * 4096 * 2, pfn * 4096 * 2 + 64) for pfn in range(n)]
    src = s.write_qemu(str(tmp_path / "many.elf"), xnum=True)   # drgn wants VMCOREINFO
    out = str(tmp_path / "out.elf")
    vmcore.copy(src, out, format="elf", dump_level=0)
    with open(out, "rb") as f:
        eh = f.read(64)
        shoff = struct.unpack_from("<Q", eh, 40)[0]
        assert struct.unpack_from("<HHHH", eh, 56) == (0xFFFF, 64, 1, 0)
        f.seek(shoff)
        assert struct.unpack_from("<I", f.read(64), 44)[0] == n + 1
    with vmcore.open(out) as d:
        assert d.nr_pages == n
        for pfn in (0, 2 * 40000, 2 * (n - 1)):
            assert d.read_page(pfn) == s.page(pfn)
    import drgn
    prog = drgn.Program()
    prog.set_core_dump(out)
    assert prog.read(2 * (n - 1) * 4096, 64, True) == s.page(2 * (n - 1))[:64]
    with pytest.raises(drgn.FaultError):
        prog.read(4096, 8, True)
