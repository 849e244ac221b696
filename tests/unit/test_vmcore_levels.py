"""Dump levels 2-31 on a synthetic x86_64 vmcore whose kernel has struct pages (SPARSEMEM
+ vmemmap through 4-level page tables): each rule (free blocks with their order, page
cache, private cache, swap cache, anonymous, slab, hugetlb, compound heads and tails,
hwpoison, offline) leaves out exactly the frames the test planted for it, in one big
window and in 64-frame windows (blocks of 128 frames cross windows), and a missing
VMCOREINFO key is named."""
import pytest

from kexec_py import vmcore
from tests import vmcore_synth as S
from tests.vmcore_synth import Synth
from tests.vmcore_testlib import check_with_drgn

F = S.PAGE_FLAGS_61
LRU, PRIV, SWC, SWB = 1 << F["PG_lru"], 1 << F["PG_private"], 1 << F["PG_swapcache"], \
    1 << F["PG_swapbacked"]
SLAB, HWP, HEAD = 1 << F["PG_slab"], 1 << F["PG_hwpoison"], F["PG_head_mask"]
ANON = S.DIRECT_MAP + 0x12345001
FILE = S.DIRECT_MAP + 0x12345000
sp = S.struct_page


def tails(head, order, **kw):
    """Struct pages of a compound page: the head, the first tail (order, dtor), tails."""
    dtor = kw.pop("dtor", 0)
    out = {head: sp(flags=kw.pop("flags", 0) | HEAD, **kw)}
    for i in range(1, 1 << order):
        extra = dict(order=order, dtor=dtor) if i == 1 else {}
        out[head + i] = sp(head=S.DIRECT_MAP + 0x40000 + 1, flags=LRU if i == 2 else 0, **extra)
    return out


PAGES = {
    0x200: sp(mapcount=-129, private=3),                 # free, order 3
    0x210: sp(flags=LRU, mapping=FILE),                  # page cache
    0x211: sp(flags=LRU | PRIV, mapping=FILE),           # private page cache
    0x212: sp(flags=SWC | SWB, mapping=FILE),            # swap cache
    0x213: sp(flags=SWC, mapping=FILE),                  # swapcache without swapbacked: kept
    0x214: sp(mapping=ANON),                             # anonymous
    0x215: sp(flags=LRU, mapping=ANON),                  # anonymous on the LRU: user, not cache
    0x216: sp(flags=SLAB, mapping=ANON, mapcount=-129),  # slab: never anon nor free
    0x217: sp(flags=HWP),                                # hardware poisoned
    0x218: sp(mapcount=-257),                            # offline
    0x219: sp(flags=SLAB, mapcount=-257),                # slab, not offline
    0x3c0: sp(mapcount=-129, private=41),                # absurd order: one frame
}
PAGES.update(tails(0x220, 2, mapping=ANON))              # anonymous compound, order 2
PAGES.update(tails(0x228, 2, dtor=2))                    # hugetlb, order 2
PAGES.update(tails(0x230, 1, flags=LRU, mapping=FILE))   # cache compound, order 1
PAGES[0x480] = sp(mapcount=-129, private=7)              # free, 128 frames over 2 windows
PAGES.update(tails(0x500, 7, mapping=ANON))              # anonymous, 128 frames
PAGES[0x242] = sp(head=S.DIRECT_MAP + 1, flags=LRU, mapping=FILE)  # a stray tail: kept

R = lambda a, n: set(range(a, a + n))  # noqa: E731
EXCLUDED = {
    2: {0x210, 0x212} | R(0x230, 2),
    4: {0x210, 0x211, 0x212} | R(0x230, 2),
    8: {0x214, 0x215} | R(0x220, 4) | R(0x228, 4) | R(0x500, 128),
    16: R(0x200, 8) | {0x3c0} | R(0x480, 128),
}
ALWAYS = {0x217, 0x218}


def excluded(level):
    out = set(ALWAYS)
    for bit, frames in EXCLUDED.items():
        if level & bit:
            out |= frames
    return out


def build(drop_key=None, sections=(0, 2, 4)):
    s = Synth.standard()
    backing = iter(range(0x10000000 // 4096 + 70, 0x10000000 // 4096 + 200))
    S.sparsemem(s, PAGES, sections=list(sections), backing=backing)
    if drop_key:
        full = s.vmcoreinfo
        s.vmcoreinfo = lambda: b"".join(line for line in full().splitlines(True)
                                        if not line.startswith(drop_key.encode() + b"="))
    return s


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    s = build()
    return s, s.write(str(tmp_path_factory.mktemp("levels") / "vmcore"))


@pytest.mark.parametrize("level", [2, 4, 8, 16, 31, 3, 17, 24])
def test_each_level_leaves_out_exactly_the_planted_frames(source, tmp_path, level):
    s, path = source
    ram = set(s.frames())
    assert excluded(31) <= ram
    outs = []
    for window in (None, 64):
        out = str(tmp_path / ("d%s" % window))
        st = vmcore.copy(path, out, compression="lzo", dump_level=level, filter_window=window)
        with vmcore.open(out) as d:
            assert set(d.pages()) == ram - excluded(level), level
            assert d.dump_level == level
            for pfn in sorted(ram - excluded(level))[::97]:
                assert d.read_page(pfn) == s.page(pfn)
        assert st.pages_excluded == len(excluded(level))
        assert st.pages_written == len(ram) - len(excluded(level))
        with open(out, "rb") as f:
            outs.append(f.read())
    assert outs[0] == outs[1], "a 64-frame window changed the dump"


@pytest.mark.parametrize("level", [1, 2, 31])
def test_frames_above_the_last_section_with_struct_pages(tmp_path, level):
    """Memory the kernel never managed (above its highest memory section: a QEMU guest
    dump's VRAM and BIOS ROM, RAM left unused by mem=) is left out wherever pages are
    classified, as makedumpfile caps max_mapnr there. At -d 1 nothing is classified, so
    everything stays."""
    s = build(sections=(0, 2))
    path = s.write(str(tmp_path / "vmcore"))
    ram = set(s.frames())
    above = {p for p in ram if p >= 3 << 15}              # section 4's frames
    assert above
    out = str(tmp_path / "out")
    vmcore.copy(path, out, compression="lzo", dump_level=level)
    with vmcore.open(out) as d:
        got = set(d.pages())
    if level == 1:
        assert got >= ram - set(s.zero_frames())
    else:
        assert got == ram - excluded(level) - above


def test_drgn_reads_a_level_31_dump(source, tmp_path):
    s, path = source
    out = str(tmp_path / "d31")
    vmcore.copy(path, out, compression="zstd", dump_level=31, threads=2)
    import drgn
    prog = drgn.Program()
    prog.set_core_dump(out)
    assert prog.read(0x1000000, 4096, True) == s.page(0x1000)
    with pytest.raises(drgn.FaultError):
        prog.read(0x200 * 4096, 8, True)


def test_flattened_level_31_rebuilds_the_same_file(source, tmp_path):
    _, path = source
    direct, flat = str(tmp_path / "direct"), str(tmp_path / "flat")
    vmcore.copy(path, direct, compression="lzo", dump_level=31)
    with open(flat + ".stream", "wb") as f:
        vmcore.copy(path, f, compression="lzo", dump_level=31, flattened=True)
    vmcore.rearrange(flat + ".stream", flat)
    with open(direct, "rb") as a, open(flat, "rb") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize("key,level,ok_level", [
    ("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", 16, 14), ("NUMBER(PG_lru)", 2, 24),
    ("NUMBER(PG_private)", 2, 4), ("OFFSET(page.mapping)", 8, 16),
    ("NUMBER(SECTION_SIZE_BITS)", 31, 1)])
def test_missing_key_is_named(tmp_path, key, level, ok_level):
    path = build(drop_key=key).write(str(tmp_path / "vmcore"))
    with pytest.raises(vmcore.OptionError, match=r"needs %s in VMCOREINFO" % key.replace(
            "(", r"\(").replace(")", r"\)")):
        vmcore.copy(path, tmp_path / "bad", dump_level=level)
    assert not (tmp_path / "bad").exists()
    vmcore.copy(path, tmp_path / "ok", dump_level=ok_level)


def test_level_31_dump_still_checks_out_with_drgn_on_kept_ram(source, tmp_path):
    s, path = source
    out = str(tmp_path / "d1")
    vmcore.copy(path, out, compression="lzo", dump_level=1)
    check_with_drgn(s, out)


@pytest.mark.parametrize("level", [2, 8, 16, 31])
def test_elf_output_keeps_the_frames_the_kdump_output_keeps(source, tmp_path, level):
    """-E -d N: the left-out frames end PT_LOADs; the same frames as -l -d N, and every
    kept page reads back, through our reader and drgn."""
    s, path = source
    elf, kd = str(tmp_path / "elf"), str(tmp_path / "kdump")
    st = vmcore.copy(path, elf, format="elf", dump_level=level)
    vmcore.copy(path, kd, compression="lzo", dump_level=level)
    with vmcore.open(elf) as e, vmcore.open(kd) as k:
        kept = set(k.pages())
        got = set(e.pages())
        # at level 1 and above the ELF form may also drop long zero runs (p_memsz): the
        # frames it holds are the kdump form's, less those
        assert got <= kept and not (got & excluded(level))
        assert kept - got <= set(p for p in kept if not any(s.page(p)))
        for pfn in sorted(got)[::23]:
            assert e.read_page(pfn) == s.page(pfn)
    assert st.pages_excluded >= len(excluded(level))
    import drgn
    prog = drgn.Program()
    prog.set_core_dump(elf)
    assert prog.read(0x1000000, 4096, True) == s.page(0x1000)
    if level & 16:
        with pytest.raises(drgn.FaultError):
            prog.read(0x200 * 4096, 8, True)
