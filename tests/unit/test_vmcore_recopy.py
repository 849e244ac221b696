"""kdump-compressed dumps as the copier's input (issue 10 item 2): re-filter a -d 1 dump to
-d 31, re-compress it, turn it into ELF, read a flattened stream (QEMU's kdump-* form)
directly; the frames kept are the ones a copy from the original vmcore keeps, every page
equals the source, and an incomplete input never gives a complete output."""
import pytest

from kexec_py import vmcore
from tests import vmcore_testlib as T

from .test_vmcore_levels import build, excluded


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("recopy")
    s = build()
    path = s.write(str(d / "vmcore"))
    d1 = str(d / "d1.zlib")
    vmcore.copy(path, d1, compression="zlib", dump_level=1)
    flat = str(d / "d1.flat")
    with open(flat, "wb") as f:
        vmcore.copy(path, f, compression="lzo", dump_level=0, flattened=True)
    return {"synth": s, "vmcore": path, "d1": d1, "flat": flat}


@pytest.mark.parametrize("level,codec", [(31, "lzo"), (31, "zstd"), (1, "none"), (8, "zlib")])
def test_refilter_keeps_what_a_direct_copy_keeps(src, tmp_path, level, codec):
    s = src["synth"]
    direct, again = str(tmp_path / "direct"), str(tmp_path / "again")
    vmcore.copy(src["vmcore"], direct, compression=codec, dump_level=level)
    st = vmcore.copy(src["d1"], again, compression=codec, dump_level=level)
    with vmcore.open(direct) as a, vmcore.open(again) as b:
        assert set(b.pages()) == set(a.pages())
        assert b.compression == codec and b.dump_level == level
        assert b.release == a.release and b.phys_base == a.phys_base
        for pfn in sorted(b.pages())[::37]:
            assert b.read_page(pfn) == s.page(pfn)
        if level == 31:
            assert set(b.pages()) == set(s.frames()) - excluded(31)
        assert st.pages_written == len(set(a.pages()))


def test_kdump_to_elf_is_read_by_drgn(src, tmp_path):
    out = str(tmp_path / "elf")
    vmcore.copy(src["d1"], out, format="elf", dump_level=0)
    T.check_with_drgn(src["synth"], out)


def test_flattened_stream_is_read_without_rearranging(src, tmp_path):
    out = tmp_path / "from-flat"
    T.run("-z", "-d", "31", "--message-level", "0", src["flat"], out, check=0)
    with vmcore.open(str(out)) as d:
        assert set(d.pages()) == set(src["synth"].frames()) - excluded(31)
    T.run("--verify", out, check=0)


def test_an_incomplete_input_gives_an_incomplete_output(src, tmp_path):
    cut = str(tmp_path / "cut")
    with pytest.raises(vmcore.IncompleteDumpError):
        vmcore.copy(src["vmcore"], cut, compression="zlib", dump_level=1,
                    size_limit=256 * 1024)
    out = tmp_path / "recopied"
    proc = T.run("-l", "-d", "31", cut, out, check=2)
    assert "INCOMPLETE" in proc.stderr.decode()
    with vmcore.open(str(out)) as d:
        assert d.incomplete
    assert T.run("--verify", out).returncode == 2      # marked incomplete, never "done"
