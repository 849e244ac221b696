"""Xen domain dumps (`xl dump-core`: the xc_core format) as input to the copier, the
reader and vmcore-dmesg (issue 10, item 3).

No Xen runs here: the files are written from the published format by
Synth.write_xc_core (HVM with .xen_pfn, PV with .xen_p2m; map entries shuffled and padded
with ~0 as a live dump pads them; a PV guest's page tables hold machine frames). An
independent reader judges them: Debian's python3-libkdumpfile (run by the system's
python3, which has it) must return, frame by frame, the bytes our reader returns and the
bytes our copies hold. Dump level 31 needs the guest's VMCOREINFO from a file (the format
has none) and keeps the same frames as from the /proc/vmcore form of the same memory;
for PV that needs the page-table walk through the p2m. Broken files are refused by name.
"""
import hashlib
import json
import os
import struct
import subprocess

import pytest

from kexec_py import vmcore
from tests import vmcore_synth as S
from tests import vmcore_testlib as T

from .test_vmcore_levels import build, excluded

SYSTEM_PYTHON = "/usr/bin/python3"

# Run by the system's python3 (python3-libkdumpfile): sha1 of every frame it can read.
LIBKDUMPFILE = r"""
import hashlib, json, sys, kdumpfile
k = kdumpfile.kdumpfile(sys.argv[1])
out = {"format": k.attr["file.format"], "xlat": int(k.attr["xen.xlat"]), "pages": {}}
for pfn in json.load(sys.stdin):
    try:
        data = k.read(kdumpfile.KDUMP_KPHYSADDR, pfn * 4096, 4096)
    except Exception as e:
        out["pages"][str(pfn)] = "error: %s" % e
        continue
    out["pages"][str(pfn)] = hashlib.sha1(data).hexdigest()
print(json.dumps(out))
"""


def libkdumpfile(path, pfns):
    proc = subprocess.run([SYSTEM_PYTHON, "-c", LIBKDUMPFILE, str(path)],
                          input=json.dumps(pfns), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def sha(data):
    return hashlib.sha1(data).hexdigest()


@pytest.fixture(scope="module")
def xen(tmp_path_factory):
    d = tmp_path_factory.mktemp("xen")
    s = build()
    S.lockless_log(s, [(1000000 * i, b"xen guest line %d" % i, 2) for i in range(5)])
    info = d / "vmcoreinfo.txt"
    info.write_bytes(s.vmcoreinfo())
    return {"synth": s, "info": str(info), "proc": s.write(str(d / "proc.vmcore")),
            "hvm": s.write_xc_core(str(d / "hvm.xc"), pad=5),
            "pv": s.write_xc_core(str(d / "pv.xc"), pv=True, pad=3),
            "dir": d}


def expected(s, pfn, kind):
    page = s.page(pfn)
    if kind == "pv" and s.kinds[pfn] == S.PGTABLE:
        page = S._pv_table(page)
    return page


def test_the_files_are_what_the_test_means(xen):
    """Shuffled map, padding present, and libkdumpfile takes them as xc_core of the
    right kind (xen.xlat: 0 auto-translated HVM, 1 PV)."""
    for kind, xlat, ent in (("hvm", 0, 8), ("pv", 1, 16)):
        with open(xen[kind], "rb") as f:
            data = f.read(1 << 16)
        assert struct.unpack_from("<H", data, 56)[0] == 0          # no program headers
        got = libkdumpfile(xen[kind], [1])
        assert got["format"] == "xc_core_elf" and got["xlat"] == xlat
    s = xen["synth"]
    assert len(s.frames()) > 4000


@pytest.mark.parametrize("kind", ["hvm", "pv"])
def test_every_frame_matches_libkdumpfile(xen, kind):
    s = xen["synth"]
    frames = s.frames()
    theirs = libkdumpfile(xen[kind], frames)["pages"]
    with vmcore.open(xen[kind]) as d:
        assert sorted(d.pages()) == frames
        for pfn in frames:
            ours = d.read_page(pfn)
            assert ours == expected(s, pfn, kind), hex(pfn)
            assert theirs[str(pfn)] == sha(ours), hex(pfn)
    # a frame that is not in the dump is not in it for either reader
    missing = max(frames) + 10
    assert libkdumpfile(xen[kind], [missing])["pages"][str(missing)].startswith("error")
    with vmcore.open(xen[kind]) as d, pytest.raises(vmcore.PageNotInDump):
        d.read_page(missing)


@pytest.mark.parametrize("kind", ["hvm", "pv"])
@pytest.mark.parametrize("fmt", ["kdump", "elf"])
def test_copies_hold_the_frames_libkdumpfile_reads(xen, tmp_path, kind, fmt):
    s = xen["synth"]
    out = str(tmp_path / ("out." + fmt))
    args = ["-E"] if fmt == "elf" else ["-z"]
    T.run(*args, "-d", "1", "--message-level", "0", xen[kind], out, check=0)
    theirs = libkdumpfile(xen[kind], s.frames())["pages"]
    with vmcore.open(out) as d:
        got = set(d.pages())
        for pfn in got:
            assert sha(d.read_page(pfn)) == theirs[str(pfn)], hex(pfn)
    # -d 1 leaves out zero frames only (kdump output may list them, as one shared page)
    assert set(s.frames()) - set(s.zero_frames()) <= got <= set(s.frames())
    assert T.run("--verify", out, check=0).returncode == 0


@pytest.mark.parametrize("kind", ["hvm", "pv"])
def test_level_31_with_a_vmcoreinfo_file_keeps_the_frames_proc_vmcore_gives(xen, tmp_path,
                                                                             kind):
    """The filter walks vmemmap through the guest's page tables: for PV through the p2m
    (machine frames), so the same frames come out as from the /proc/vmcore form."""
    ref = str(tmp_path / "ref")
    vmcore.copy(xen["proc"], ref, compression="lzo", dump_level=31)
    out = tmp_path / "d31"
    T.run("-l", "-d", "31", "-i", xen["info"], "--message-level", "0", xen[kind], out,
          check=0)
    with vmcore.open(ref) as a, vmcore.open(str(out)) as b:
        want = set(a.pages())
        assert set(b.pages()) == want == set(xen["synth"].frames()) - excluded(31)
        assert b.release == S.RELEASE


def test_level_31_without_vmcoreinfo_says_how_to_get_it(xen, tmp_path):
    T.run("-l", "-d", "1", "--message-level", "0", xen["hvm"], tmp_path / "d1", check=0)
    err = T.run("-l", "-d", "31", xen["hvm"], tmp_path / "d31", check=1).stderr.decode()
    assert "xc_core" in err and "--vmcoreinfo FILE" in err, err
    assert not (tmp_path / "d31").exists()


@pytest.mark.parametrize("kind", ["hvm", "pv"])
def test_vmcore_dmesg_with_a_vmcoreinfo_file(xen, kind):
    dmesg = vmcore.executable("vmcore-dmesg")
    bare = subprocess.run([dmesg, xen[kind]], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert bare.returncode == 1 and "VMCOREINFO" in bare.stderr
    ok = subprocess.run([dmesg, "--vmcoreinfo", xen["info"], xen[kind]],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True)
    assert ok.returncode == 0, ok.stderr
    assert "xen guest line 4" in ok.stdout
    with open(xen["info"]) as f:
        assert "xen guest line 2" in vmcore.dmesg(xen[kind], vmcoreinfo=f.read())


def test_elf_output_reads_with_drgn(xen, tmp_path):
    out = tmp_path / "xen.elf"
    T.run("-E", "-d", "1", "-i", xen["info"], "--message-level", "0", xen["hvm"], out,
          check=0)
    # drgn sees the kernel through the ELF's VMCOREINFO note (from the file given)
    T.check_with_drgn(xen["synth"], str(out))


# ---- broken files ----

def _sections(path):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, strndx = struct.unpack_from("<HH", data, 60)
    str_off, = struct.unpack_from("<Q", data, shoff + strndx * 64 + 24)
    out = {}
    for i in range(shnum):
        h = shoff + i * 64
        name_at, = struct.unpack_from("<I", data, h)
        name = data[str_off + name_at:data.index(b"\0", str_off + name_at)].decode()
        out[name] = h
    return data, out


def _patch(src, dst, fn):
    data, sect = _sections(src)
    fn(data, sect)
    with open(dst, "wb") as f:
        f.write(data)
    return dst


def _map_entry(data, sect, i, value, ent=8):
    off, = struct.unpack_from("<Q", data, sect[".xen_pfn"] + 24)
    struct.pack_into("<Q", data, off + i * ent, value)


def _first_pfn(data, sect):
    off, = struct.unpack_from("<Q", data, sect[".xen_pfn"] + 24)
    i = 0
    while struct.unpack_from("<Q", data, off + 8 * i)[0] == 2**64 - 1:
        i += 1
    return i, struct.unpack_from("<Q", data, off + 8 * i)[0]


def duplicate(data, sect):
    i, pfn = _first_pfn(data, sect)
    off, = struct.unpack_from("<Q", data, sect[".xen_pfn"] + 24)
    j = i + 1
    while struct.unpack_from("<Q", data, off + 8 * j)[0] == 2**64 - 1:
        j += 1
    _map_entry(data, sect, j, pfn)


def beyond_52_bits(data, sect):
    _map_entry(data, sect, _first_pfn(data, sect)[0], 1 << 41)


def ragged_map(data, sect):
    size, = struct.unpack_from("<Q", data, sect[".xen_pfn"] + 32)
    struct.pack_into("<Q", data, sect[".xen_pfn"] + 32, size - 3)


def map_longer_than_pages(data, sect):
    size, = struct.unpack_from("<Q", data, sect[".xen_pages"] + 32)
    struct.pack_into("<Q", data, sect[".xen_pages"] + 32, size - 4096 * 20)


def pv_magic(data, sect):
    off, = struct.unpack_from("<Q", data, sect[".note.Xen"] + 24)
    at = data.index(struct.pack("<Q", 0xF00FEBEE), off)
    struct.pack_into("<Q", data, at, 0xF00FEBED)


def no_map(data, sect):
    struct.pack_into("<I", data, sect[".xen_pfn"], 0)      # the name becomes ""


def no_pages(data, sect):
    struct.pack_into("<I", data, sect[".xen_pages"], 0)


def huge_strtab(data, sect):
    struct.pack_into("<Q", data, sect[".shstrtab"] + 32, 1 << 40)


def map_past_end(data, sect):
    struct.pack_into("<Q", data, sect[".xen_pfn"] + 32, 1 << 50)


@pytest.mark.parametrize("patch,why", [
    (duplicate, "listed twice"), (beyond_52_bits, "52-bit"),
    (ragged_map, "not a whole number"), (map_longer_than_pages, "has no page"),
    (pv_magic, "does not match"), (no_map, "no page map"),
    (no_pages, "no .xen_pages section"), (huge_strtab, "section name table claims"),
    (map_past_end, "past the end of the file")])
def test_broken_files_are_named(xen, tmp_path, patch, why):
    bad = _patch(xen["hvm"], str(tmp_path / "bad.xc"), patch)
    proc = T.run("-l", "-d", "1", bad, tmp_path / "out", check=1)
    assert why in proc.stderr.decode(), proc.stderr.decode()
    assert not (tmp_path / "out").exists()
    with pytest.raises(vmcore.VmcoreError, match=why):
        vmcore.open(bad)


def test_a_dump_cut_short_is_copied_as_incomplete(xen, tmp_path):
    """The pages section runs past the end (a copy of the dump that stopped): the copy
    stops at the first frame whose page is not in the file, exits 2 and is marked
    incomplete, never complete (and never reads past the end through mmap: SIGBUS)."""
    cut = tmp_path / "cut.xc"
    size = os.path.getsize(xen["hvm"])
    with open(xen["hvm"], "rb") as f, open(cut, "wb") as g:
        g.write(f.read(size - 4096 * 100))
    out = tmp_path / "out"
    T.run("-l", "-d", "1", cut, out, check=2)
    verify = T.run("--verify", out, check=None)
    assert verify.returncode != 0 and b"marked incomplete" in verify.stderr + verify.stdout
