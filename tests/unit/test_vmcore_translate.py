"""x86_64 kernel virtual -> physical translation on synthetic dumps: kernel text through
phys_base, the direct map, and 4- and 5-level page-table walks (4 KiB, 2 MiB and 1 GiB
pages), in C (Dump.vtop/read_virt, on the ELF vmcore and on our kdump-compressed copy)
and in Python (the oracle tests/x86_oracle.py); both must agree with the layout the test built."""
import pytest

from kexec_py import vmcore
from tests import x86_oracle
from tests.vmcore_synth import DIRECT_MAP, KERNEL_TEXT_VADDR, Synth
from tests.vmcore_testlib import run

VMEMMAP = 0xffffea0000000000
VMALLOC = 0xffffc90000000000
BIG = 0xffff900000000000      # a 1 GiB mapping


def layout(levels):
    s = Synth.standard()
    if levels == 5:
        s.five_level()
    tables = iter(range(0x10000000 // 4096 + 20, 0x10000000 // 4096 + 60))
    # vmemmap: 4 KiB pages backed by scattered frames, one 2 MiB page
    s.map_virtual(VMEMMAP, 0x10000000 + 100 * 4096, 12, tables)
    s.map_virtual(VMEMMAP + 4096, 0x100000 + 5 * 4096, 12, tables)
    s.map_virtual(VMEMMAP + (1 << 21), 0x10000000 + 0x200000 - 0x200000, 21, tables)
    s.map_virtual(VMALLOC + 0x5000, 0x20000000 + 0x3000, 12, tables)
    s.map_virtual(BIG, 0, 30, tables)
    # the direct map through a 2 MiB page too (kdump files have no PT_LOADs to tell it)
    s.map_virtual(DIRECT_MAP + 0x10000000, 0x10000000, 21, tables)
    return s


CASES = [
    (KERNEL_TEXT_VADDR + 0x1234, 0x1000000 + 0x1234),
    (VMEMMAP + 0x10, 0x10000000 + 100 * 4096 + 0x10),
    (VMEMMAP + 4096 + 0xfe0, 0x100000 + 5 * 4096 + 0xfe0),
    (VMEMMAP + (1 << 21) + 0x12345, 0x10000000 + 0x12345),
    (VMALLOC + 0x5008, 0x20003008),
    (BIG + 0x10000000 + 0x42, 0x10000042),
    (DIRECT_MAP + 0x10000000 + 0x1ff000, 0x101ff000),
]
UNMAPPED = [VMEMMAP + 2 * 4096, VMALLOC, 0xffff800000000000]


@pytest.fixture(scope="module", params=[4, 5])
def dumps(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("translate%d" % request.param)
    s = layout(request.param)
    elf = s.write(str(d / "vmcore"))
    kd = str(d / "dump.kdump")
    run("-l", "-d", "1", "--message-level", "0", elf, kd, check=0)
    return s, elf, kd


def test_c_translation_on_elf_and_kdump(dumps):
    s, elf, kd = dumps
    for path in (elf, kd):
        with vmcore.open(path) as d:
            for vaddr, paddr in CASES:
                assert d.vtop(vaddr) == paddr, (path, hex(vaddr))
                assert d.read_virt(vaddr, 24) == s.read(paddr, 24), (path, hex(vaddr))
            for vaddr in UNMAPPED:
                with pytest.raises(vmcore.VmcoreError, match="cannot translate"):
                    d.vtop(vaddr)


def test_read_virt_across_pages_with_different_frames(dumps):
    s, elf, kd = dumps
    want = s.read(0x10000000 + 100 * 4096 + 4000, 96) + s.read(0x100000 + 5 * 4096, 200)
    for path in (elf, kd):
        with vmcore.open(path) as d:
            assert d.read_virt(VMEMMAP + 4000, 296) == want


def test_python_translator_agrees(dumps):
    s, elf, kd = dumps
    for path in (elf, kd):
        with vmcore.open(path) as d:
            t = x86_oracle.X86Translator(d)
            assert t.levels == s.levels
            for vaddr, paddr in CASES:
                assert t.vtop(vaddr) == paddr == d.vtop(vaddr)
            assert t.read(VMEMMAP + 4000, 296) == d.read_virt(VMEMMAP + 4000, 296)
            for vaddr in UNMAPPED:
                with pytest.raises(x86_oracle.TranslationError):
                    t.vtop(vaddr)


def test_python_direct_map_shortcut_and_leaf_cache(dumps):
    s, elf, _ = dumps
    with vmcore.open(elf) as d:
        t = x86_oracle.X86Translator(d, direct_map=(DIRECT_MAP, DIRECT_MAP + (1 << 40)))
        assert t.vtop(DIRECT_MAP + 0x20000800) == 0x20000800
        assert t.vtop(VMEMMAP + (1 << 21) + 8) == 0x10000008
        assert t._leaf == (VMEMMAP + (1 << 21), 0x10000000, 1 << 21)
        assert t.vtop(VMEMMAP + (1 << 21) + 0x1000) == 0x10001000


def test_kernel_text_needs_phys_base_only():
    class Fake:
        vmcoreinfo = {"NUMBER(phys_base)": "-16777216", "KERNELOFFSET": "2a000000"}
    t = x86_oracle.X86Translator(Fake())
    assert t.phys_base == -0x1000000 and t.kernel_offset == 0x2a000000
    assert t.vtop(0xffffffffab000000) == 0x2a000000
    with pytest.raises(x86_oracle.TranslationError, match="init_top_pgt"):
        t.vtop(VMEMMAP)

