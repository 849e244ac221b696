"""kexec_py.kdump.crashkernel (crashkernel= syntax, reserve, diagnosis, defaults, estimate)
and the initramfs reader in kexec_py.cpio."""
import gzip
import io
import lzma
import os

import pytest

from kexec_py import cpio
from kexec_py.cpio import CpioWriter
from kexec_py.errors import FormatError, KexecError
from kexec_py.kdump import crashkernel as ck
from kexec_py.load import state
from tests.unit.conftest import (CRASH_RESERVE, IOMEM, RELEASE, FakeRoot, compress,
                                 make_bzimage, write_file, zstd_tool)

M = 1 << 20
G = 1 << 30

# RAM of conftest's IOMEM: three System RAM ranges, just under 4G in all
IOMEM_RAM = (0x9fbff - 0x1000 + 1) + (0x7ffdffff - 0x100000 + 1) + 0x80000000

NOKASLR_IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000a0000-000bffff : PCI Bus 0000:00
000f0000-000fffff : System ROM
00100000-7ffdffff : System RAM
  01000000-01e00fff : Kernel code
  01e01000-0260ffff : Kernel rodata
  02800000-02b3ffff : Kernel data
  0300c000-033fffff : Kernel bss
7ffe0000-7fffffff : Reserved
100000000-17fffffff : System RAM
"""


def zeros(iomem):
    """/proc/iomem as a non-root user reads it."""
    out = []
    for line in iomem.splitlines():
        indent = line[:len(line) - len(line.lstrip())]
        name = line.split(" : ", 1)[1]
        out.append("%s00000000-00000000 : %s" % (indent, name))
    return "\n".join(out) + "\n"


class Root(FakeRoot):
    """A FakeRoot that can be passed as root= directly."""

    def __fspath__(self):
        return self.path


@pytest.fixture
def host(tmp_path):
    return Root(tmp_path / "root").standard()


@pytest.fixture
def bare(tmp_path):
    return Root(tmp_path / "root")


def booted(root, cmdline, iomem=None, crash_size=0):
    """A machine booted with cmdline that reserved nothing (unless iomem says so)."""
    if iomem is None:
        iomem = "\n".join(l for l in IOMEM.split("\n") if "Crash kernel" not in l)
    root.write("/proc/cmdline", cmdline + "\n")
    root.write("/proc/iomem", iomem)
    root.write("/sys/kernel/kexec_crash_size", "%d\n" % crash_size)
    return root


# parse

@pytest.mark.parametrize("text,kind,size,offset", [
    ("256M", "size", 256 * M, None),
    ("128M@16M", "size", 128 * M, 16 * M),
    ("131072K", "size", 128 * M, None),
    ("1g", "size", G, None),
    ("2T", "size", 2 << 40, None),
    ("0x10000000@0x1000000", "size", 256 * M, 16 * M),
    ("134217728", "size", 128 * M, None),
    ("512M,high", "high", 512 * M, None),
    ("128M,low", "low", 128 * M, None),
    ("64M,cma", "cma", 64 * M, None),
    ("auto", "auto", 0, None),
])
def test_parse_simple_forms(text, kind, size, offset):
    c = ck.parse(text)
    assert (c.kind, c.size, c.offset) == (kind, size, offset)
    assert str(c) == text


def test_parse_range_expression():
    c = ck.parse("1G-4G:192M,4G-64G:256M,64G-:512M")
    assert c.kind == "ranges" and c.offset is None
    assert [(r.start, r.end, r.size) for r in c.ranges] == [
        (G, 4 * G, 192 * M), (4 * G, 64 * G, 256 * M), (64 * G, None, 512 * M)]
    assert [str(r) for r in c.ranges] == ["1G-4G", "4G-64G", "64G-"]
    c = ck.parse("512M-2G:64M,2G-:128M@16M")
    assert c.offset == 16 * M and c.ranges[0].start == 512 * M


@pytest.mark.parametrize("ram,expected", [
    (G - 200 * M, None),             # below the first range (824M -> 896M)
    (G - 1, 192 * M),                # rounded up to 128M: that is 1G
    (G, 192 * M),                    # start inclusive
    (4 * G - 100 * M, 256 * M),      # rounded up to 128M: 3996M -> 4G
    (4 * G - 128 * M, 192 * M),      # already a multiple of 128M: stays below 4G
    (4 * G, 256 * M),                # end exclusive
    (64 * G, 512 * M),
    (10 << 40, 512 * M),             # open end
])
def test_size_for_ranges(ram, expected):
    got = ck.parse("1G-4G:192M,4G-64G:256M,64G-:512M").size_for(ram)
    assert (got[0] if got else None) == expected


def test_size_for_other_forms():
    assert ck.parse("128M@16M").size_for(8 * G) == (128 * M, 16 * M)
    assert ck.parse("2G-:256M@64M").size_for(8 * G) == (256 * M, 64 * M)
    assert ck.parse("512M,high").size_for(8 * G) == (512 * M, None)
    assert ck.parse("auto").size_for(8 * G) is None


@pytest.mark.parametrize("bad,words", [
    ("", "no value"),
    ("abc", "not a memory size"),
    ("256Q", "not a memory size"),
    ("4G-1G:128M", "ends before it starts"),
    ("1G-4G", "not start-[end]:size"),
    ("1G-4G:", "not a memory size"),
    ("1G-4G:192M,", "not start-[end]:size"),
    ("128M@", "not a memory offset"),
    ("128M@x", "not a memory offset"),
    ("1G-:256M,high", "takes a plain size"),
    ("512M,high@16M", "not a memory size"),
    ("-256M", "not a memory size"),
])
def test_parse_errors_are_one_line(bad, words):
    with pytest.raises(ck.CrashkernelError) as e:
        ck.parse(bad)
    assert words in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 1 and isinstance(e.value, KexecError)


def test_from_cmdline_and_choose():
    vals = ck.from_cmdline("ro crashkernel=512M,high quiet crashkernel=128M,low")
    assert [v.kind for v in vals] == ["high", "low"]
    main, low = ck.choose(vals)
    assert (main.text, low.text) == ("512M,high", "128M,low")
    # a plain value wins over ,high; the last plain one wins
    vals = ck.from_cmdline("crashkernel=256M crashkernel=1G,high crashkernel=384M")
    assert ck.choose(vals)[0].text == "384M" and ck.choose(vals)[1] is None
    assert ck.choose(ck.from_cmdline("crashkernel=128M,low")) == (None, ck.parse("128M,low"))
    assert ck.from_cmdline("ro quiet") == []
    with pytest.raises(ck.CrashkernelError):
        ck.from_cmdline("crashkernel=lots")
    with pytest.raises(ck.CrashkernelError):
        ck.from_cmdline("crashkernel")


def test_format_and_add_sizes():
    assert ck.format_size(256 * M) == "256M"
    assert ck.format_size(G) == "1G"
    assert ck.format_size(1536 * M) == "1536M"
    assert ck.format_size(1000) == "1000"
    assert ck.add_to_sizes("2G-64G:256M,64G-:512M", 64 * M) == "2G-64G:320M,64G-:576M"
    assert ck.add_to_sizes("1G-4G:192M,4G-64G:256M,64G-:512M", 64 * M) == \
        "1G-4G:256M,4G-64G:320M,64G-:576M"
    assert ck.add_to_sizes("1G-4G:960M", 64 * M) == "1G-4G:1G"
    assert ck.add_to_sizes("128M@16M", 64 * M) == "192M@16M"
    assert ck.add_to_sizes("512M,high", 64 * M) == "576M,high"


# the machine

def test_system_ram_and_rounding(host):
    assert ck.system_ram(host) == IOMEM_RAM
    assert ck.ram_for_table(IOMEM_RAM) == 4 * G
    assert ck.ram_for_table(2 * G) == 2 * G


def test_system_ram_unreadable(host):
    host.write("/proc/iomem", zeros(IOMEM))
    assert ck.system_ram(host) is None
    os.remove(host.p("/proc/iomem"))
    assert ck.system_ram(host) is None


def test_reserved(host):
    res = ck.reserved(host)
    assert res.exists and res.size == CRASH_RESERVE and res.iomem_readable
    assert res.ranges == ((0x6f000000, 0x7effffff), (0x170000000, 0x177ffffff))
    assert res.sysfs_size == CRASH_RESERVE
    assert "384M reserved at 0x6f000000-0x7effffff" in res.describe()
    assert ck.showmem_line(host) == "Reserved 384MB memory for crash kernel"


def test_reserved_as_non_root(host):
    host.write("/proc/iomem", zeros(IOMEM))
    res = ck.reserved(host)
    assert res.exists and res.size == CRASH_RESERVE and not res.iomem_readable
    os.remove(host.p("/sys/kernel/kexec_crash_size"))
    res = ck.reserved(host)
    assert not res.exists and res.describe() == "unreadable without root"
    assert "needs root" in ck.showmem_line(host)


def test_reserved_none(host):
    host.no_crash_reserve()
    res = ck.reserved(host)
    assert not res.exists and res.describe() == "not reserved"
    assert ck.showmem_line(host) == "No memory reserved for crash kernel"
    # only iomem (no sysfs file): the ranges count
    booted(host, "ro", iomem=IOMEM)
    os.remove(host.p("/sys/kernel/kexec_crash_size"))
    assert ck.reserved(host).size == CRASH_RESERVE


def test_state_crash_reserve_size_unchanged(host):
    assert state.crash_reserve_size(host) == CRASH_RESERVE
    host.write("/proc/iomem", zeros(IOMEM))
    assert state.crash_reserve_size(host) == CRASH_RESERVE   # falls back to sysfs
    host.no_crash_reserve()
    assert state.crash_reserve_size(host) == 0


# diagnose

def test_diagnose_none_when_reserved(host):
    assert ck.diagnose(host) is None


def test_diagnose_no_crashkernel(host):
    booted(host, "BOOT_IMAGE=/vmlinuz ro quiet")
    msg = ck.diagnose(host)
    assert "without crashkernel=" in msg and "kdumpctl reset-crashkernel" in msg
    assert "reboot" in msg


def test_diagnose_no_range_holds_ram(host):
    booted(host, "ro crashkernel=8G-64G:256M,64G-:512M")
    msg = ck.diagnose(host)
    assert "reserves nothing on this machine" in msg
    assert "4095M of RAM (4G when rounded up to 128M)" in msg
    assert "8G-64G, 64G-" in msg


def test_diagnose_size_zero(host):
    booted(host, "crashkernel=1G-8G:0M")
    assert "gives size 0" in ck.diagnose(host)


def test_diagnose_too_large(host):
    booted(host, "crashkernel=8G")
    msg = ck.diagnose(host)
    assert "asks for 8G but the machine has only 4095M of RAM" in msg


def test_diagnose_kb_fixed_offset_on_nokaslr(host):
    """The knowledge base's crashkernel=128M@16M where a nokaslr kernel sits at 16M."""
    booted(host, "ro root=LABEL=/ rhgb quiet nokaslr crashkernel=128M@16M", NOKASLR_IOMEM)
    msg = ck.diagnose(host)
    assert "crashkernel=128M@16M asks for [0x1000000-0x8ffffff]" in msg
    assert "Kernel code [0x1000000-0x1e00fff]" in msg
    assert "nokaslr" in msg and "cannot be honoured" in msg
    assert "crashkernel=128M" in msg and "get-default-crashkernel" in msg
    assert "\n" not in msg


def test_diagnose_fixed_offset_over_a_hole_and_reserved(host):
    booted(host, "crashkernel=64M@0x7c000000", NOKASLR_IOMEM)   # runs past 0x7ffdffff
    msg = ck.diagnose(host)
    assert "Reserved [0x7ffe0000-0x7fffffff]" in msg
    assert "a hole with no System RAM [0x80000000-0x7fffffff]" not in msg
    conflicts = ck.fixed_offset_conflicts(state.iomem_ranges(host), 0x7c000000, 128 * M)
    names = [c[0] for c in conflicts]
    assert names == ["Reserved", "a hole with no System RAM"]
    assert conflicts[1][1:] == (0x80000000, 0x83ffffff)


def test_diagnose_fixed_offset_free_now(host):
    booted(host, "crashkernel=128M@1G", NOKASLR_IOMEM)
    msg = ck.diagnose(host)
    assert "is free RAM in /proc/iomem now" in msg and "crashkernel=128M)" in msg


def test_diagnose_low_alone_and_auto_and_invalid(host):
    booted(host, "crashkernel=128M,low")
    assert "only sizes the low part" in ck.diagnose(host)
    booted(host, "crashkernel=auto")
    assert "RHEL 6, 7 and 8" in ck.diagnose(host)
    booted(host, "crashkernel=12X")
    msg = ck.diagnose(host)
    assert "invalid crashkernel=12X" in msg and "kdumpctl reset-crashkernel" in msg


def test_diagnose_generic_and_high(host):
    booted(host, "crashkernel=512M,high crashkernel=128M,low")
    msg = ck.diagnose(host)
    assert "no free block of 512M above 4G" in msg
    booted(host, "crashkernel=256M")
    assert "no free block of 256M at boot" in ck.diagnose(host)


def test_diagnose_without_root(host):
    booted(host, "crashkernel=256M", zeros(IOMEM))
    msg = ck.diagnose(host)
    assert "cannot be told" in msg and "root" in msg
    # what /proc/cmdline alone tells still works without root
    booted(host, "ro quiet", zeros(IOMEM))
    assert "without crashkernel=" in ck.diagnose(host)


# defaults

@pytest.mark.parametrize("os_release,expected", [
    ('NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n',
     "1G-4G:192M,4G-64G:256M,64G-:512M"),
    ('ID="rhel"\nVERSION_ID="10.0"\n', "2G-64G:256M,64G-:512M"),
    ('ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="10"\n', "2G-64G:256M,64G-:512M"),
    ('ID="centos"\nVERSION_ID="8"\n', "1G-4G:192M,4G-64G:256M,64G-:512M"),
    ('ID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n',
     "1G-4G:192M,4G-64G:256M,64G-:512M"),
    ('ID=fedora\nVERSION_ID=41\n', "2G-64G:256M,64G-:512M"),
    ('ID=debian\nVERSION_ID="12"\n', "2G-64G:256M,64G-:512M"),
    ("", "2G-64G:256M,64G-:512M"),
])
def test_default_crashkernel(bare, os_release, expected):
    if os_release:
        bare.write("/etc/os-release", os_release)
    assert ck.default_crashkernel(bare) == expected


def test_default_crashkernel_old_rhel_without_os_release(bare):
    bare.write("/etc/redhat-release", "Red Hat Enterprise Linux Server release 5.11 (Tikanga)\n")
    assert ck.default_crashkernel(bare) == "128M@16M"
    bare.write("/etc/redhat-release", "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n")
    assert ck.default_crashkernel(bare) == "1G-4G:192M,4G-64G:256M,64G-:512M"


CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme %s\n\n"


@pytest.mark.parametrize("flags,active", [
    ("sse2 sme", True),                  # host with SME on (the kernel clears it otherwise)
    ("sse2 hypervisor sev sev_es", True),  # SEV guest
    ("sse2 sev", False),                 # SEV-capable host: SEV is for its guests
    ("sse2 hypervisor", False),
])
def test_sme_sev_adds_64M(bare, flags, active):
    bare.write("/etc/os-release", 'ID="rhel"\nVERSION_ID="10.0"\n')
    bare.write("/proc/cpuinfo", CPUINFO % flags)
    assert ck.memory_encryption_active(bare) is active
    assert ck.default_crashkernel(bare) == (
        "2G-64G:320M,64G-:576M" if active else "2G-64G:256M,64G-:512M")


def test_default_size(host):
    host.write("/etc/os-release", 'ID="rhel"\nVERSION_ID="9.4"\n')
    assert ck.default_size(host) == 256 * M      # 4G after rounding
    assert ck.default_size(host, ram_bytes=2 * G) == 192 * M
    host.write("/etc/os-release", 'ID="rhel"\nVERSION_ID="10.0"\n')
    assert ck.default_size(host, ram_bytes=G) == 0


# the initramfs reader

def archive(files, mtime=1700000000):
    buf = io.BytesIO()
    w = CpioWriter(buf, mtime=mtime)
    for name, data in files:
        w.add_file(name, data)
    w.close()
    return buf.getvalue()


EARLY = [("kernel/x86/microcode/AuthenticAMD.bin", b"\x01" * 100)]
MAIN = [("init", b"#!/bin/sh\n"),
        ("usr/lib/modules/6.1/kernel/fs/xfs/xfs.ko.xz", b"x" * 5000),
        ("usr/lib/modules/6.1/kernel/drivers/virtio_blk.ko", b"v" * 300),
        ("usr/lib/modules/6.1/kernel/drivers/dm-crypt.ko.zst", b"d" * 10)]


def names_of(files):
    """Member names as the writer stores them: parents first, each directory once."""
    out = []
    for name, _ in files:
        parts = name.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in out:
                out.append(d)
        out.append(name)
    return out


@pytest.mark.parametrize("kind", ["none", "gzip", "xz", "zstd"])
def test_cpio_early_plus_compressed_main(tmp_path, kind):
    if kind == "zstd" and not zstd_tool():
        pytest.skip("zstd command not installed")
    main = archive(MAIN)
    body = main if kind == "none" else compress(kind, main, tmp_path)
    path = write_file(str(tmp_path / "initrd.img"), archive(EARLY) + body)
    assert cpio.list_names(path) == names_of(EARLY) + names_of(MAIN)


def test_cpio_concatenated_with_zero_padding_and_two_streams(tmp_path):
    data = (archive(EARLY) + b"\0" * 512 + archive([("a", b"1")]) +
            gzip.compress(archive([("b", b"22")])) + b"\0" * 3 +
            lzma.compress(archive([("c", b"333")]) + b"\0" * 8 + archive([("d", b"4")])))
    path = write_file(str(tmp_path / "i.img"), data)
    assert cpio.list_names(path)[-4:] == ["a", "b", "c", "d"]
    members = {m.name: m for m in cpio.iter_members(path, want=lambda n: n in ("c", "d"))}
    assert members["c"].data == b"333" and members["d"].data == b"4"
    assert members["b"].data is None and members["b"].size == 2 and members["b"].is_file
    assert cpio.read_member(path, "c") == b"333"
    assert cpio.read_member(path, "nope") is None


def test_cpio_later_member_overrides(tmp_path):
    path = write_file(str(tmp_path / "i.img"),
                      archive([("etc/x", b"old")]) + gzip.compress(archive([("etc/x", b"new")])))
    assert cpio.read_member(path, "etc/x") == b"new"


@pytest.mark.parametrize("damage,words", [
    (lambda a: a[:200], "needs"),                                  # cut in the middle
    (lambda a: a[:6] + b"ZZZZZZZZ" + a[14:], "not hex"),
    (lambda a: b"NOTCPIO!" + a, "neither a cpio archive nor compressed data"),
    (lambda a: a[:54] + b"7FFFFFFF" + a[62:], "needs"),            # filesize past the end
    (lambda a: a[:94] + b"00100000" + a[102:], "name size"),       # namesize 1M
    (lambda a: a[:94] + b"00000000" + a[102:], "name size"),
])
def test_cpio_damaged_files_raise_format_error(tmp_path, damage, words):
    good = archive([("file", b"x" * 1000)])
    path = write_file(str(tmp_path / "bad.img"), damage(good))
    with pytest.raises(FormatError) as e:
        cpio.list_names(path)
    assert words in str(e.value) and str(path) in str(e.value)


def test_cpio_damaged_compressed(tmp_path):
    body = gzip.compress(archive(MAIN))
    path = write_file(str(tmp_path / "cut.img"), archive(EARLY) + body[:len(body) // 2])
    with pytest.raises(FormatError):
        cpio.list_names(path)
    path = write_file(str(tmp_path / "junk.img"), gzip.compress(archive(MAIN) + b"JUNKJUNK"))
    with pytest.raises(FormatError, match="junk after the archives"):
        cpio.list_names(path)
    if zstd_tool():
        z = compress("zstd", archive(MAIN), tmp_path)
        path = write_file(str(tmp_path / "zcut.img"), z[:len(z) - 10])
        with pytest.raises(FormatError, match="zstd"):
            cpio.list_names(path)


def test_cpio_zstd_followed_by_more(tmp_path):
    if not zstd_tool():
        pytest.skip("zstd command not installed")
    z = compress("zstd", archive([("z", b"zz")]), tmp_path)
    pad = b"\0" * (4 + (-len(z)) % 4)   # keeps the next header 4-byte aligned, as the kernel wants
    path = write_file(str(tmp_path / "z.img"), z + pad + archive([("after", b"1")]))
    assert cpio.list_names(path) == ["z", "after"]
    assert cpio.zstd_stream_length(open(path, "rb"), 0, os.path.getsize(path), path) == len(z)


def test_cpio_missing_file(tmp_path):
    with pytest.raises(KexecError, match="cannot read"):
        cpio.list_names(str(tmp_path / "nope.img"))


def test_cpio_lz4_is_refused_clearly(tmp_path):
    path = write_file(str(tmp_path / "l.img"), b"\x02\x21\x4c\x18" + b"\0" * 100)
    with pytest.raises(FormatError, match="lz4-compressed archives are not supported"):
        cpio.list_names(path)


# estimate

PROC_MODULES = """\
xfs 2097152 1 - Live 0xffffffffc0a00000
virtio_blk 24576 2 - Live 0xffffffffc0100000
dm_crypt 65536 0 - Live 0xffffffffc0200000
nouveau 2318336 0 - Live 0xffffffffc0300000
"""


@pytest.fixture
def estimate_host(host):
    host.write("/etc/os-release", 'ID="rhel"\nVERSION_ID="9.4"\n')
    host.write("/proc/modules", PROC_MODULES)
    host.kernel("/boot/vmlinuz-6.1")                              # init_size 32M
    initrd = archive(EARLY) + gzip.compress(archive(MAIN))
    host.write("/boot/initramfs-6.1kdump.img", initrd)
    return host


def test_estimate(estimate_host):
    h = estimate_host
    initrd = h.p("/boot/initramfs-6.1kdump.img")
    est = ck.estimate(h, h.p("/boot/vmlinuz-6.1"), initrd)
    size = os.path.getsize(initrd)
    # the capture kernel is the running one: in memory, its text..bss span in /proc/iomem;
    # loading it takes init_size
    span = 0x260ffff - 0x1000000 + 1
    assert est.kernel_size == span and "iomem" in est.kernel_from
    assert est.load_size == 0x2000000
    assert est.modules_size == 2097152 + 24576 + 65536     # nouveau is not in the initramfs
    assert est.initramfs_size == size
    assert est.baseline == 256 * M
    unpacked = sum(-(-len(data) // 4096) * 4096 for _, data in EARLY + MAIN)
    assert est.unpacked_size == unpacked
    need = max(span + est.modules_size + size + unpacked + 16 * M, 32 * M + size + M)
    assert est.recommended == max(256 * M, -(-need // (8 * M)) * 8 * M)
    assert est.large_modules == (("xfs", 2097152),)
    assert est.reserved == CRASH_RESERVE and not est.short
    assert est.lines() == [
        "Reserved crashkernel:    384M",
        "Recommended crashkernel: 256M",
        "",
        "Kernel image size:   22M",
        "Kernel load size:    32M",
        "Kernel modules size: 2M",
        "Initramfs size:      0M",
        "Initramfs unpacked:  0M",
        "Runtime reservation: 16M",
        "Large modules:",
        "    xfs: 2097152",
    ]


def test_estimate_kernel_other_than_the_running_one(estimate_host):
    """Another kernel (or no Kernel ranges to read): init_size stands for both; a big
    decompression room makes loading the larger need."""
    h = estimate_host
    h.write("/proc/sys/kernel/osrelease", "6.2.0-other\n")
    est = ck.estimate(h, h.p("/boot/vmlinuz-6.1"), h.p("/boot/initramfs-6.1kdump.img"))
    assert est.kernel_size == est.load_size == 0x2000000 and "init_size" in est.kernel_from
    assert "Kernel load size:" not in "\n".join(est.lines())
    assert ck.kernel_runtime_size(h, h.p("/boot/vmlinuz-6.1")) == (None, "not the running kernel")
    assert ck.kernel_runtime_size(h, h.p("/boot/none")) == (None, "the kernel cannot be read")
    h.write("/proc/sys/kernel/osrelease", "%s\n" % RELEASE)
    h.kernel("/boot/vmlinuz-big", init_size=200 * M)
    h.write("/proc/modules", "")
    est = ck.estimate(h, h.p("/boot/vmlinuz-big"), h.p("/boot/none.img"))
    assert est.kernel_size == 0x260ffff - 0x1000000 + 1 and est.load_size == 200 * M
    assert est.recommended == max(est.baseline, 208 * M)     # 200M + 1M, rounded up to 8M


def test_estimate_short_reserve_and_luks(estimate_host):
    h = estimate_host
    h.write("/sys/kernel/kexec_crash_size", "%d\n" % (128 * M))
    est = ck.estimate(h, h.p("/boot/vmlinuz-6.1"), h.p("/boot/initramfs-6.1kdump.img"),
                      luks_keyslot_mem=1 << 30)
    assert est.luks_size == G + 20 * M
    lines = est.lines()
    assert lines[0].startswith("Encrypted kdump target requires extra memory")
    assert "LUKS required size:  1044M" in lines
    assert lines[-1] == ("WARNING: Current crashkernel size is lower than recommended size "
                         "%dM." % (est.recommended // M))


def test_estimate_without_initramfs_or_kernel(estimate_host):
    h = estimate_host
    est = ck.estimate(h, h.p("/boot/vmlinuz-none"), h.p("/boot/none.img"))
    assert est.initramfs_size == 0 and est.modules_size == 0
    assert any("does not exist" in n and "kdumpctl rebuild" in n for n in est.notes)
    assert est.kernel_size == 0x1e00fff - 0x1000000 + 1 + 0x260ffff - 0x1e01000 + 1
    assert "Large modules: <none>" in est.lines()
    assert est.lines()[0].startswith("Note: ")


def test_estimate_reads_dracut_hostonly_list(estimate_host, tmp_path):
    h = estimate_host
    initrd = archive([("usr/lib/dracut/hostonly-kernel-modules.txt", b"nouveau\ndm-crypt\n"),
                      ("squash-root.img", b"s" * 100)])
    h.write("/boot/sq.img", initrd)
    est = ck.estimate(h, h.p("/boot/vmlinuz-6.1"), h.p("/boot/sq.img"))
    assert est.modules_size == 2318336 + 65536
    assert est.large_modules == (("nouveau", 2318336),)
    # an image with its modules in it: those count, not every module the host had
    h.write("/boot/plain.img", archive([
        ("usr/lib/dracut/hostonly-kernel-modules.txt", b"nouveau\ndm-crypt\n"),
        ("usr/lib/modules/6.1/kernel/drivers/md/dm-crypt.ko", b"m" * 100)]))
    est = ck.estimate(h, h.p("/boot/vmlinuz-6.1"), h.p("/boot/plain.img"))
    assert est.modules_size == 65536 and est.large_modules == ()


def test_estimate_elf_kernel(estimate_host, tmp_path):
    import struct
    head = bytearray(64 + 2 * 56)
    head[:4] = b"\x7fELF"
    head[4], head[5] = 2, 1
    struct.pack_into("<Q", head, 0x20, 64)
    struct.pack_into("<HH", head, 0x36, 56, 2)
    for i, memsz in enumerate((10 * M, 6 * M)):
        struct.pack_into("<I", head, 64 + i * 56, 1)
        struct.pack_into("<Q", head, 64 + i * 56 + 40, memsz)
    path = write_file(str(tmp_path / "vmlinux"), bytes(head))
    assert ck.kernel_image_size(estimate_host, path) == \
        (16 * M, "PT_LOAD segments of the ELF kernel")


def test_estimate_needs_iomem(estimate_host):
    h = estimate_host
    h.write("/proc/iomem", zeros(IOMEM))
    with pytest.raises(ck.CrashkernelError, match="as root"):
        ck.estimate(h, h.p("/boot/vmlinuz-6.1"), h.p("/boot/initramfs-6.1kdump.img"))


def test_estimate_damaged_initramfs_is_a_note(estimate_host):
    h = estimate_host
    h.write("/boot/bad.img", b"\0" * 10 + b"garbage" * 10)
    est = ck.estimate(h, h.p("/boot/vmlinuz-6.1"), h.p("/boot/bad.img"))
    assert est.modules_size == 0 and any("cannot list the capture initramfs" in n for n in est.notes)
    assert est.unpacked_size == 2 * est.initramfs_size
    assert est.initramfs_size == 80


def test_make_bzimage_init_size_is_what_conftest_says():
    assert int.from_bytes(make_bzimage()[0x260:0x264], "little") == 0x2000000


@pytest.mark.skipif(not __import__("shutil").which("cpio"), reason="GNU cpio is the oracle")
@pytest.mark.parametrize("kind", ["gzip", "xz", "zstd"])
def test_cpio_reader_agrees_with_gnu_cpio(tmp_path, kind):
    """An initramfs laid out as dracut writes it: a GNU cpio early archive (padded to 512
    bytes) and a compressed GNU cpio main archive; the names match `cpio -t`."""
    import subprocess
    if kind == "zstd" and not zstd_tool():
        pytest.skip("zstd command not installed")

    def gnu_archive(top, names):
        for n in names:
            write_file(str(tmp_path / top / n), n.encode() * 3)
        return subprocess.run("cd %s && find . | LC_ALL=C sort | cpio -o -H newc --quiet"
                              % (tmp_path / top), shell=True, check=True,
                              stdout=subprocess.PIPE).stdout

    early = gnu_archive("early", ["kernel/x86/microcode/GenuineIntel.bin"])
    main = gnu_archive("main", ["init", "usr/lib/modules/6.1/kernel/fs/ext4/ext4.ko.xz",
                                "usr/bin/vmcore-copy", "etc/kdump/plan"])
    assert len(early) % 512 == 0
    path = write_file(str(tmp_path / "initramfs.img"), early + compress(kind, main, tmp_path))
    expected = []
    for part in (early, main):
        expected += subprocess.run(["cpio", "-t", "--quiet"], input=part, check=True,
                                   stdout=subprocess.PIPE).stdout.decode().split()
    assert cpio.list_names(path) == expected


def test_sizes_are_read_as_memparse_reads_them():
    """Found by fuzzing: '09M' raised a bare ValueError (a traceback from kdumpctl).
    memparse() takes a leading 0 as octal, so 010M is 8M and 09M is no size at all."""
    assert ck.parse("010M").size == 8 << 20
    assert ck.parse("0x10M").size == 16 << 20
    assert ck.parse("0").size == 0
    for bad in ("09M", "1-09M:64M", "08", "256M@09M"):
        with pytest.raises(ck.CrashkernelError, match="is not a memory"):
            ck.parse(bad)
