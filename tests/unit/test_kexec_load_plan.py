"""The kexec_load path without a kernel: memory map, segment placement, boot_params,
purgatory patching, the crash ELF core header, and the purgatory's SHA-256 in C.

Everything reads a FakeRoot; the syscall itself is never made here (the VM tests do).
"""
import ctypes
import hashlib
import os
import random
import struct
import subprocess

import pytest

from kexec_py.errors import ImageError, KexecError
from kexec_py.load import crash, image, kexec_load, memory, purgatory
from kexec_py.load.memory import MemRange
from kexec_py.load.segments import SegmentPlan

from .conftest import FakeRoot, make_bzimage

MEMMAP = [  # (start, end, type) as /sys/firmware/memmap shows them
    (0x0, 0x9FBFF, "System RAM"), (0x9FC00, 0x9FFFF, "Reserved"),
    (0xF0000, 0xFFFFF, "Reserved"), (0x100000, 0x7FFDFFFF, "System RAM"),
    (0x7FFE0000, 0x7FFFFFFF, "ACPI Tables"), (0xFFFC0000, 0xFFFFFFFF, "Reserved"),
    (0x100000000, 0x17FFFFFFF, "System RAM"),
]


def machine(tmp_path, memmap=MEMMAP, cpus=2):
    root = FakeRoot(tmp_path / "root").standard()
    for i, (s, e, t) in enumerate(memmap):
        root.write("/sys/firmware/memmap/%d/start" % i, "%#x\n" % s)
        root.write("/sys/firmware/memmap/%d/end" % i, "%#x\n" % e)
        root.write("/sys/firmware/memmap/%d/type" % i, t + "\n")
    root.write("/sys/devices/system/cpu/possible", "0-%d\n" % (cpus - 1))
    for c in range(cpus):
        root.write("/sys/devices/system/cpu/cpu%d/crash_notes" % c, "%x\n" % (0x7F43A400 + c * 0x100000))
        root.write("/sys/devices/system/cpu/cpu%d/crash_notes_size" % c, "368\n")
    root.write("/sys/kernel/vmcoreinfo", "0x00000000013e0000 1024\n")
    root.write("/proc/kallsyms", "ffffffffb4e00000 T _text\nffffffffb4e00000 T _stext\n"
                                 "ffffffffb8230000 B _end\n")
    old_bp = bytearray(4096)
    old_bp[0:4] = b"SCRN"
    struct.pack_into("<I", old_bp, 0x23C, 0)
    struct.pack_into("<Q", old_bp, 0x70, 0xF59C0)
    root.write("/sys/kernel/boot_params/data", bytes(old_bp))
    return root


def open_images(root, tmp_path, **kw):
    kpath = root.kernel(**kw)
    ipath = root.initrd(data=os.urandom(300000))
    return image.open_kernel(kpath), image.open_initrds([ipath])


def test_firmware_memmap_and_iomem_fallback(tmp_path):
    root = machine(tmp_path)
    mm = memory.memory_map(str(root))
    assert mm[0] == MemRange(0, 0x9FBFF, memory.E820_RAM)
    assert MemRange(0x7FFE0000, 0x7FFFFFFF, memory.E820_ACPI) in mm
    os.system("rm -rf %s" % root.p("/sys/firmware/memmap"))
    mm = memory.memory_map(str(root))  # from /proc/iomem now: top level only
    assert MemRange(0x100000, 0x7FFDFFFF, memory.E820_RAM) in mm
    assert all(r.type != memory.E820_RAM or r.start != 0x1000000 for r in mm)


def test_crash_ranges_and_subtract():
    ram = [MemRange(0, 99), MemRange(200, 299)]
    assert memory.subtract(ram, [MemRange(50, 249)]) == [MemRange(0, 49), MemRange(250, 299)]
    assert memory.intersect(ram, MemRange(90, 210)) == [MemRange(90, 99), MemRange(200, 210)]


def test_segment_plan_alignment_no_overlap_and_limit():
    plan = SegmentPlan([MemRange(0x100000, 0x8FFFFFF)])
    a = plan.add("a", b"x" * 5000, align=0x200000, prefer=0x1000000)
    assert (a.mem, a.memsz) == (0x1000000, 0x2000)
    b = plan.add("b", b"y", top_down=True)
    assert b.end == 0x8FFFFFF and b.mem % 4096 == 0
    c = plan.add("c", b"z" * 4096, align=0x200000)
    assert c.mem == 0x200000
    for i in range(13):
        plan.add("s%d" % i, b"q")
    assert len(plan.check()) == 16
    with pytest.raises(KexecError, match="at most 16 segments"):
        plan.add("17th", b"q")
    full = SegmentPlan([MemRange(0x100000, 0x100FFF)])
    with pytest.raises(KexecError, match="no room for the big segment"):
        full.add("big", b"x" * 8192)


def test_plan_normal_load(tmp_path):
    root = machine(tmp_path)
    kimg, initrd = open_images(root, tmp_path)
    p = kexec_load.plan(kimg, initrd, "root=/dev/sda ro", root=str(root))
    names = [s.name for s in p.segments]
    assert sorted(names) == ["initrd", "kernel", "purgatory", "setup"]
    seg = {s.name: s for s in p.segments}
    hdr = kimg.header
    assert seg["kernel"].mem == hdr.pref_address  # free, so the preferred address is used
    assert seg["kernel"].memsz == hdr.init_size
    assert seg["kernel"].data == open(kimg.path, "rb").read()[hdr.setup_size:]
    assert seg["initrd"].end <= 0x7FFFFFFF and seg["initrd"].mem % 4096 == 0
    assert seg["initrd"].mem > seg["kernel"].end  # high
    bp = seg["setup"].data
    assert bp[0x1F1:0x268] != bytes(0x268 - 0x1F1)
    assert bp[0x202:0x206] == b"HdrS"
    assert bp[0x210] == 0xD0
    ramdisk, ramdisk_size = struct.unpack_from("<II", bp, 0x218)
    assert ramdisk == seg["initrd"].mem and ramdisk_size == len(seg["initrd"].data)
    cmd_ptr = struct.unpack_from("<I", bp, 0x228)[0]
    off = cmd_ptr - seg["setup"].mem
    assert bp[off:off + 17] == b"root=/dev/sda ro\0"
    assert bp[0x1E8] == len(MEMMAP)
    first = struct.unpack_from("<QQI", bp, 0x2D0)
    assert first == (0, 0x9FC00, 1)
    assert bp[0:4] == b"SCRN"  # screen_info from the running kernel
    assert struct.unpack_from("<Q", bp, 0x70)[0] == 0xF59C0
    assert p.entry == seg["purgatory"].mem
    assert p.flags == 62 << 16


def test_purgatory_params_and_digest(tmp_path):
    root = machine(tmp_path)
    kimg, initrd = open_images(root, tmp_path)
    p = kexec_load.plan(kimg, initrd, "x", root=str(root), serial_port=0x3F8)
    seg = {s.name: s for s in p.segments}
    fields = purgatory.PARAMS.unpack_from(seg["purgatory"].data, purgatory.PARAMS_OFFSET)
    magic, entry, bp_addr, port, no_checks, nregions = fields[:6]
    digest, regions = fields[7], fields[8:]
    assert magic == purgatory.MAGIC
    assert entry == seg["kernel"].mem + 0x200 and bp_addr == seg["setup"].mem
    assert port == 0x3F8 and no_checks == 0 and nregions == 3
    covered = {(regions[2 * i], regions[2 * i + 1]) for i in range(nregions)}
    others = [s for s in p.segments if s.name != "purgatory"]
    assert covered == {(s.mem, len(s.data)) for s in others}
    h = hashlib.sha256()
    for i in range(nregions):
        start = regions[2 * i]
        h.update([s for s in others if s.mem == start][0].data)
    assert digest == h.digest()


def test_corrupt_digest_wrapper(monkeypatch):
    """The VM test's corrupted-digest kexec lives in tests/ (no switch in the product)."""
    from tests.vm import kexec_corrupt_digest
    blob = purgatory.load_blob()
    params = purgatory.PurgatoryParams(entry=1, boot_params=2, regions=((0x1000, b"abc"),))
    good = purgatory.PARAMS.unpack_from(purgatory.patch(blob, params), 32)[7]
    monkeypatch.setattr(purgatory.PurgatoryParams, "digest", purgatory.PurgatoryParams.digest)
    kexec_corrupt_digest.corrupt()
    bad = purgatory.PARAMS.unpack_from(purgatory.patch(blob, params), 32)[7]
    assert good == hashlib.sha256(b"abc").digest() and bad != good
    assert not any("CORRUPT" in name for name in dir(purgatory))


def test_e820_beyond_128_goes_to_setup_data(tmp_path):
    many = [(0x100000 + i * 0x200000, 0x100000 + i * 0x200000 + 0xFFFFF,
             "System RAM" if i % 2 == 0 else "Reserved") for i in range(150)]
    many.append((0x20000000, 0x7FFFFFFF, "System RAM"))
    root = machine(tmp_path, memmap=many)
    kimg, initrd = open_images(root, tmp_path)
    p = kexec_load.plan(kimg, initrd, "x", root=str(root))
    setup = [s for s in p.segments if s.name == "setup"][0]
    bp = setup.data
    assert bp[0x1E8] == 128
    ptr = struct.unpack_from("<Q", bp, 0x250)[0]
    off = ptr - setup.mem
    nxt, kind, length = struct.unpack_from("<QII", bp, off)
    assert (nxt, kind, length) == (0, 1, (151 - 128) * 20)
    last = struct.unpack_from("<QQI", bp, off + 16 + length - 20)
    assert last == (0x20000000, 0x60000000, 1)


def test_panic_plan_elf_header_e820_and_cmdline(tmp_path):
    root = machine(tmp_path)
    kimg, initrd = open_images(root, tmp_path)
    p = kexec_load.plan(kimg, initrd, "irqpoll nr_cpus=1", panic=True, root=str(root))
    target = MemRange(0x170000000, 0x177FFFFFF)  # the highest "Crash kernel" range
    for s in p.segments:
        assert target.start <= s.mem and s.end <= target.end, s.name
    assert p.flags == (62 << 16) | 1
    seg = {s.name: s for s in p.segments}
    elf = seg["elfcorehdr"]
    assert p.cmdline == "irqpoll nr_cpus=1 elfcorehdr=%dK" % (elf.mem >> 10)
    hdr = elf.data
    assert hdr[:4] == b"\x7fELF" and struct.unpack_from("<H", hdr, 16)[0] == 4  # ET_CORE
    phnum = struct.unpack_from("<H", hdr, 56)[0]
    phdrs = [crash.PHDR.unpack_from(hdr, 64 + 56 * i) for i in range(phnum)]
    notes = [ph for ph in phdrs if ph[0] == crash.PT_NOTE]
    loads = [ph for ph in phdrs if ph[0] == crash.PT_LOAD]
    assert [n[4] for n in notes] == [0x7F43A400, 0x7F53A400, 0x13E0000]
    assert [n[5] for n in notes] == [368, 368, 0x1024]
    text = loads[0]
    assert (text[3], text[4], text[5]) == (0xFFFFFFFFB4E00000, 0x1000000, 0x3430000)
    ram = [(ph[4], ph[4] + ph[5] - 1) for ph in loads[1:]]
    # System RAM minus the low 1 MiB and both crash ranges
    assert ram == [(0x100000, 0x6EFFFFFF), (0x7F000000, 0x7FFDFFFF),
                   (0x100000000, 0x16FFFFFFF), (0x178000000, 0x17FFFFFFF)]
    for ph in loads[1:]:
        assert ph[2] == ph[4]  # p_offset == p_paddr
    bp = seg["setup"].data
    n = bp[0x1E8]
    e820 = [struct.unpack_from("<QQI", bp, 0x2D0 + 20 * i) for i in range(n)]
    ram820 = [(a, a + s - 1) for a, s, t in e820 if t == 1]
    assert (0x1000, 0x9FBFF) in ram820  # low 1M System RAM
    assert (0x6F000000, 0x7EFFFFFF) in ram820  # the low crash range, whole
    assert all(not (a <= elf.mem <= b) for a, b in ram820)  # header is not RAM
    assert any(t == 3 for _, _, t in e820)  # ACPI tables kept


def test_panic_needs_a_big_enough_reserve(tmp_path):
    root = machine(tmp_path)
    root.write("/proc/iomem", "00100000-7ffdffff : System RAM\n  7f000000-7f3fffff : "
                              "Crash kernel\n")
    kimg, initrd = open_images(root, tmp_path)
    with pytest.raises(KexecError, match=r"reserve is 4\.0 MiB but the capture kernel needs "
                                         r"at least \d+\.\d MiB \(kernel 34\.0 MiB"):
        kexec_load.plan(kimg, initrd, "x", panic=True, root=str(root))


def test_panic_without_reserve_exits_254(tmp_path):
    root = machine(tmp_path).no_crash_reserve()
    kimg, initrd = open_images(root, tmp_path)
    with pytest.raises(KexecError) as e:
        kexec_load.plan(kimg, initrd, "x", panic=True, root=str(root))
    assert e.value.exit_code == 254


@pytest.mark.parametrize("kw,reason", [
    ({"version": 0x020A}, "older than 2.12"),
    ({"xloadflags": 0}, "no 64-bit entry point"),
])
def test_kernels_kexec_load_cannot_take(tmp_path, kw, reason):
    root = machine(tmp_path)
    data = bytearray(make_bzimage(version=kw.get("version", 0x020F)))
    if "xloadflags" in kw:
        struct.pack_into("<H", data, 0x236, kw["xloadflags"])
    path = root.write("/boot/old", bytes(data))
    kimg = image.open_kernel(path)
    with pytest.raises(ImageError, match=reason + r".*use -s"):
        kexec_load.plan(kimg, None, "x", root=str(root))


def test_cmdline_longer_than_cmdline_size(tmp_path):
    root = machine(tmp_path)
    path = root.write("/boot/k", make_bzimage(cmdline_size=64))
    with pytest.raises(ImageError, match="at most 64"):
        kexec_load.plan(image.open_kernel(path), None, "x" * 65, root=str(root))


def test_purgatory_blob_is_position_independent():
    blob = purgatory.load_blob()
    assert blob[0] in (0xE9, 0xEB)  # starts with a jump over the parameter block
    assert len(blob) < 64 * 1024


@pytest.fixture(scope="module")
def host_sha256(tmp_path_factory):
    """The purgatory's sha256.c compiled for the host as a shared library."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "csrc", "purgatory", "sha256.c")
    lib = str(tmp_path_factory.mktemp("sha") / "libsha.so")
    # make test-sanitize (KPY_SANITIZE=1) builds it with ASan and UBSan as well
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"] \
        if os.environ.get("KPY_SANITIZE") == "1" else []
    subprocess.run(["cc", "-O2", "-shared", "-fPIC"] + sanitize + ["-o", lib, src], check=True)
    return ctypes.CDLL(lib)


def test_purgatory_sha256_matches_hashlib(host_sha256):
    rng = random.Random(1234)
    sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 4096, 65537]
    sizes += [rng.randrange(0, 20000) for _ in range(40)]
    out = ctypes.create_string_buffer(32)
    for n in sizes:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        host_sha256.sha256_digest(data, ctypes.c_size_t(n), out)
        assert out.raw == hashlib.sha256(data).digest(), n


def test_purgatory_sha256_incremental_updates(host_sha256):
    rng = random.Random(99)
    data = bytes(rng.getrandbits(8) for _ in range(10000))
    ctx = ctypes.create_string_buffer(256)
    out = ctypes.create_string_buffer(32)
    host_sha256.sha256_init(ctx)
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 300)
        chunk = data[pos:pos + step]
        host_sha256.sha256_update(ctx, chunk, ctypes.c_size_t(len(chunk)))
        pos += step
    host_sha256.sha256_final(ctx, out)
    assert out.raw == hashlib.sha256(data).digest()
