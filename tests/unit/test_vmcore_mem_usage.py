"""vmcore-copy --mem-usage (makedumpfile's option of the name) and vmcore.mem_usage():
on the synthetic kernel of test_vmcore_levels, whose planted struct pages say exactly
which frames each dump level leaves out, every class is counted exactly; the table has
makedumpfile's layout; with every frame sampled the predicted size of a kdump-compressed
dump is the size vmcore-copy then writes, byte for byte, at every level and codec; with
1 frame in 16 sampled it stays close; a /proc/kcore-shaped file (PT_LOADs with p_paddr
-1 for vmalloc and vmemmap, offsets past its end) is read as the kernel's RAM; a file
without VMCOREINFO, one nobody may read, and a bad command line fail in one line."""
import json
import os
import struct

import pytest

from kexec_py import native, vmcore
from tests.unit.test_unprivileged import as_nobody, shared_tmp  # noqa: F401 (fixture)
from tests.unit.test_vmcore_levels import ALWAYS, EXCLUDED, build, excluded
from tests.vmcore_testlib import run

CODECS = [c for c in vmcore.COMPRESSIONS if c == "none" or native.codec_available(c)]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    s = build()
    return s, s.write(str(tmp_path_factory.mktemp("usage") / "vmcore"))


def test_classes_are_the_frames_each_level_leaves_out(source):
    s, path = source
    u = vmcore.mem_usage(path)
    ram = set(s.frames())
    assert u.total_pages == len(ram)
    assert u.non_pri_cache == len(EXCLUDED[2])
    assert u.pri_cache == len(EXCLUDED[4] - EXCLUDED[2])
    assert u.user == len(EXCLUDED[8])
    assert u.free == len(EXCLUDED[16])
    assert u.hwpoison + u.offline == len(ALWAYS) == 2
    kept = ram - excluded(31)
    assert u.zero == len([p for p in kept if not any(s.page(p))])
    assert u.kern_data + u.zero == len(kept)
    assert u.no_memmap == 0


def test_table_has_makedumpfiles_layout_and_json_agrees(source):
    _, path = source
    text = run("--mem-usage", path, check=0).stdout.decode()
    lines = text.split("\n")
    assert lines[1] == "TYPE\t\tPAGES\t\t\tEXCLUDABLE\tDESCRIPTION"
    assert lines[2] == "-" * 70
    doc = json.loads(run("--mem-usage", "--json", path, check=0).stdout)
    rows = {"ZERO": ("zero", "yes\t\tPages filled with zero"),
            "NON_PRI_CACHE": ("non_pri_cache", "yes\t\tCache pages without private flag"),
            "PRI_CACHE": ("pri_cache", "yes\t\tCache pages with private flag"),
            "USER": ("user", "yes\t\tUser process pages"),
            "FREE": ("free", "yes\t\tFree pages"),
            "KERN_DATA": ("kern_data", "no\t\tDumpable kernel data ")}
    for line, (name, (key, rest)) in zip(lines[3:9], rows.items()):
        tab = "\t" if len(name) >= 8 else "\t\t"
        assert line == "%s%s%-16d\t%s" % (name, tab, doc[key], rest), line
    assert "Total pages on system:\t%-16d" % doc["total_pages"] in text
    assert "Total size on system:\t%-16d Byte" % (doc["total_pages"] * 4096) in text
    assert "Predicted dump size" in text
    predicted = [l.split()[0] for l in lines if l[:2] in ("0 ", "1 ", "31")]
    assert predicted == ["0", "1", "31"]


@pytest.mark.parametrize("level", [0, 1, 2, 17, 31])
def test_prediction_is_exact_when_every_frame_is_sampled(source, tmp_path, level):
    _, path = source
    u = vmcore.mem_usage(path)
    assert u.sample_stride == 1
    for codec in CODECS:
        out = str(tmp_path / codec)
        st = vmcore.copy(path, out, compression=codec, dump_level=level)
        assert u.predict(level, compression=codec) == st.file_size == os.path.getsize(out), \
            (level, codec)
        os.unlink(out)
    st = vmcore.copy(path, str(tmp_path / "elf"), format="elf", dump_level=level)
    assert abs(u.predict(level, format="elf") - st.file_size) <= 0.2 * st.file_size, level


def test_cli_predicts_the_collectors_own_options(source, tmp_path):
    _, path = source
    doc = json.loads(run("--mem-usage", "-l", "-d", "17", "--json", path, check=0).stdout)
    assert sorted(doc["predicted"], key=int) == ["0", "1", "17", "31"]
    assert set(doc["predicted"]["31"]) == {"elf", "none", "lzo"}    # only -l sampled
    assert doc["collector"] == {"dump_level": 17, "format": "kdump", "compression": "lzo",
                                "bytes": doc["predicted"]["17"]["lzo"]}
    st = vmcore.copy(path, str(tmp_path / "d17"), compression="lzo", dump_level=17)
    assert doc["collector"]["bytes"] == st.file_size


def test_sampled_prediction_stays_close(source, tmp_path):
    _, path = source
    u = vmcore.mem_usage(path, compressions=("zlib",), sample_target=300)
    assert u.sample_stride == 16
    assert u.predict(31, compression="lzo") is None                 # not sampled
    st = vmcore.copy(path, str(tmp_path / "d31"), compression="zlib", dump_level=31)
    assert abs(u.predict(31, compression="zlib") - st.file_size) <= 0.1 * st.file_size
    # the counts do not depend on sampling
    assert u.free == vmcore.mem_usage(path).free


def kcore_shaped(src, dst):
    """src with /proc/kcore's extra PT_LOADs: vmalloc and vmemmap ranges whose p_paddr is
    -1 and whose offsets lie far past the end of the file (kcore's size is virtual)."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    extra = [(0xffffc90000000000, 32 << 40), (0xffffea0000000000, 1 << 40)]
    end = phoff + (phnum + len(extra)) * 56
    first_data = min(struct.unpack_from("<Q", data, phoff + i * 56 + 8)[0]
                     for i in range(phnum))
    assert end <= first_data, "no room for more program headers"
    for i, (vaddr, size) in enumerate(extra):
        struct.pack_into("<IIQQQQQQ", data, phoff + (phnum + i) * 56, 1, 7,
                         (vaddr - 0xffff888000000000) + 0x1000, vaddr, (1 << 64) - 1,
                         size, size, 4096)
    struct.pack_into("<H", data, 56, phnum + len(extra))
    with open(dst, "wb") as f:
        f.write(data)
    return dst


def test_a_kcore_shaped_file_counts_only_ram(source, tmp_path):
    _, path = source
    kcore = kcore_shaped(path, str(tmp_path / "kcore"))
    assert json.loads(run("--mem-usage", "--json", kcore, check=0).stdout) | \
        {"seconds": 0} == json.loads(run("--mem-usage", "--json", path, check=0).stdout) | \
        {"seconds": 0}


def test_no_vmcoreinfo_is_one_line(tmp_path):
    s = build()
    s.notes = lambda: struct.pack("<III", 5, 336, 1) + b"CORE\0\0\0\0" + bytes(336)
    path = s.write(str(tmp_path / "vmcore"))
    proc = run("--mem-usage", path, check=1)
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "no VMCOREINFO" in err and "4.19" in err, err
    assert proc.stdout == b""
    with pytest.raises(vmcore.DumpFormatError, match="no VMCOREINFO"):
        vmcore.mem_usage(path)


def test_unreadable_input_says_root_is_needed(source, shared_tmp):  # noqa: F811
    _, path = source
    private = os.path.join(shared_tmp, "kcore")
    with open(path, "rb") as a, open(private, "wb") as b:
        b.write(a.read())
    os.chmod(private, 0o400)
    proc = as_nobody(vmcore.executable(), "--mem-usage", private)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Permission denied" in proc.stderr \
        and "only root" in proc.stderr, proc.stderr


@pytest.mark.parametrize("argv", [["--mem-usage"], ["--mem-usage", "-F", "X"],
                                  ["--mem-usage", "A", "B"], ["--mem-usage", "--verify", "X"]])
def test_bad_command_lines(argv):
    proc = run(*argv, check=1)
    assert b"Usage:" in proc.stderr


def test_the_crash_kernels_reserve_is_left_out(source, tmp_path):
    """/proc/vmcore never holds the capture kernel's own reserve, so neither does the
    count: the "Crash kernel" ranges of /proc/iomem (any indentation) are left out."""
    s, path = source
    frames = s.frames()
    lo = next(p for p in frames if all(p + i in frames for i in range(256)) and p > 0x600)
    iomem = tmp_path / "iomem"
    iomem.write_text("00001000-0009fbff : System RAM\n"
                     "  %08x-%08x : Crash kernel\n"
                     "  00000000-00000000 : Crash kernel\n"      # as a non-root reader sees it
                     "garbage\n" % (lo * 4096, (lo + 256) * 4096 - 1))
    whole, cut = vmcore.mem_usage(path), vmcore.mem_usage(path, iomem=str(iomem))
    assert whole.crash_reserved == 0 and cut.crash_reserved == 256
    assert cut.total_pages == whole.total_pages - 256
    gone = set(range(lo, lo + 256))
    assert cut.zero == whole.zero - len([p for p in gone - excluded(31) if not any(s.page(p))])
    with pytest.raises(vmcore.DumpFormatError, match="cannot read .*none .the crash kernel"):
        vmcore.mem_usage(path, iomem=str(tmp_path / "none"))
