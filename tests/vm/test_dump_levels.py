"""Dump levels on a real crash. Before the crash the guest holds anonymous pages with a
marker (a live process), page-cache pages of a file with another marker on ext4 (a loop
device over a tmpfs file: disk-backed, not shmem), and memory freed again (a third
marker). The capture kernel saves /proc/vmcore. On the host, for -d 2, 4, 8, 16 and 31,
our dump and makedumpfile's keep the same set of page frames (2nd bitmaps; differences
are listed and stay under 0.5%), every page holding a marker is kept or dropped as
makedumpfile does, at -d 31 no anonymous or page-cache marker page is kept, and drgn
reads kernel pages from our -d 31 dump. (Freed memory the kernel reused before the crash may be kept: at -d 16
and 31 at most 1% of the freed marker's frames, as makedumpfile keeps them.)"""
import os
import secrets
import shlex
import shutil
import struct
import subprocess

from kexec_py import vmcore
from kexec_py.vmcore import vmcoreinfo

from .test_vmcore_copy import marker_paddrs, ram_segments

LEVELS = (2, 4, 8, 16, 31)
MAKEDUMPFILE = shutil.which("makedumpfile") or "/usr/sbin/makedumpfile"

GUEST = r"""
mkdir -p "$OUT/shm" "$OUT/mnt" && mount -t tmpfs tmpfs "$OUT/shm" || exit 1
truncate -s 96M "$OUT/shm/disk.img" && mkfs.ext4 -q -F "$OUT/shm/disk.img" || { echo mkfs failed; exit 1; }
LOOP=$(losetup -f --show "$OUT/shm/disk.img") || { echo losetup failed; exit 1; }
mount -t ext4 "$LOOP" "$OUT/mnt" || { echo mount ext4 failed; exit 1; }
result fs "$(grep " $OUT/mnt " /proc/mounts | cut -d' ' -f3)"
python3 - %(rev)s "$OUT/mnt/cache.dat" <<'PY'
import os, sys
line = ("kpy-cache-%%s" %% sys.argv[1][::-1]).encode().ljust(64, b".")
block = line * (1 << 14)                      # 1 MiB
with open(sys.argv[2], "wb") as f:
    for _ in range(16):
        f.write(block)
    f.flush()
    os.fsync(f.fileno())
PY
python3 -c '
import sys, time
line = ("kpy-anon-%%s" %% sys.argv[1][::-1]).encode().ljust(64, b".")
held = bytearray(16 << 20)
for i in range(0, len(held), 64):
    held[i:i + 64] = line
open(sys.argv[2], "w").close()
time.sleep(100000)
' %(rev)s "$OUT/anon.ready" &
python3 -c '
import sys
line = ("kpy-freed-%%s" %% sys.argv[1][::-1]).encode().ljust(64, b".")
gone = bytearray(48 << 20)
for i in range(0, len(gone), 4096):
    gone[i:i + 64] = line
' %(rev)s
n=0; while [ ! -e "$OUT/anon.ready" ] && [ $n -lt 600 ]; do sleep 0.2; n=$((n+1)); done
result anon "$(test -e "$OUT/anon.ready" && echo 0 || echo 1)"
sync
kexec -s -p %(kernel)s --initrd=%(initrd)s --append=%(cmdline)s || { echo load failed; exit 1; }
echo c > /proc/sysrq-trigger
"""


def bitmap2(path):
    """Set of page frames in a kdump-compressed file's 2nd bitmap."""
    with open(path, "rb") as f:
        head = f.read(4096)
        bs, sub, blocks = struct.unpack_from("<III", head, 428)
        f.seek((1 + sub) * bs + blocks // 2 * bs)
        raw = f.read(blocks // 2 * bs)
    bits = int.from_bytes(raw, "little")
    out, pfn = set(), 0
    while bits:
        low = bits & -bits
        pfn = low.bit_length() - 1
        out.add(pfn)
        bits ^= low
    return out


def dump(raw, level, out, ours):
    if ours:
        cmd = [vmcore.executable(), "-l", "-d", str(level), "--message-level", "0", raw, out]
    else:
        cmd = [MAKEDUMPFILE, "-l", "-d", str(level), raw, out]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:])
    return bitmap2(out)


def test_dump_levels_match_makedumpfile(vm, vm_kernel):
    assert os.access(MAKEDUMPFILE, os.X_OK), "makedumpfile is missing: make test installs it"
    token = secrets.token_hex(10)
    cmdline = vm.cmdline(2, "irqpoll nr_cpus=1 reset_devices")
    vm.stage(1, GUEST % {"rev": token[::-1], "kernel": shlex.quote(vm_kernel.vmlinuz),
                         "initrd": shlex.quote(vm.initrd), "cmdline": shlex.quote(cmdline)})
    vm.stage(2, 'cp /proc/vmcore "$OUT/vmcore.raw"; result raw $?\n')
    vm.boot(extra_cmdline="crashkernel=160M")
    vm.expect(vm.read("result.fs", "").strip() == "ext4", "no ext4 mounted in the guest")
    vm.expect(vm.read("result.anon", "").strip() == "0", "the anonymous holder did not start")
    vm.expect(vm.read("result.raw", "").strip() == "0", "capture kernel: copy failed")
    raw = vm.path("vmcore.raw")
    try:
        check_levels(vm, raw, token)
    finally:
        os.unlink(raw)


def marker_pfns(raw, name, token):
    segs = ram_segments(raw)
    return {a // 4096 for a in marker_paddrs(raw, segs, ("kpy-%s-%s" % (name, token)).encode())}


def check_levels(vm, raw, token):
    markers = {name: marker_pfns(raw, name, token) for name in ("anon", "cache", "freed")}
    assert len(markers["freed"]) >= 2048, "the freed marker is not in memory"
    # 16 MiB each: 4096 frames of the live process, 4096 of ext4 page cache (+ the loop
    # file's tmpfs pages)
    assert len(markers["anon"]) >= 2048, "the live anonymous marker is not in memory"
    assert len(markers["cache"]) >= 2048, "the page-cache marker is not in memory"
    ram = dump(raw, 1, vm.path("ours.1"), True)
    os.unlink(vm.path("ours.1"))
    report = []
    for level in LEVELS:
        ours = dump(raw, level, vm.path("ours.%d" % level), True)
        theirs = dump(raw, level, vm.path("mdf.%d" % level), False)
        diff = sorted(ours ^ theirs)
        report.append("-d %d: ours %d, makedumpfile %d, differ %d; marker frames kept "
                      "(anon, cache, freed): %s" % (
                          level, len(ours), len(theirs), len(diff),
                          [len(p & ours) for p in markers.values()]))
        assert len(diff) <= 0.005 * len(ram), (level, [hex(p) for p in diff[:50]], report)
        for name, pfns in markers.items():
            kept_ours, kept_theirs = pfns & ours, pfns & theirs
            assert kept_ours == kept_theirs, (level, name, sorted(kept_ours ^ kept_theirs)[:20])
            if level == 31 and name != "freed":
                assert not kept_ours, (name, "marker pages kept at -d 31", len(kept_ours))
            if level & 16 and name == "freed":
                # freed memory is free pages, but the kernel may have reused a few (page
                # tables, slab) before the crash: those stay, in both dumps
                assert len(kept_ours) <= 0.01 * len(pfns), (level, len(kept_ours), len(pfns))
        if level != 31:
            os.unlink(vm.path("ours.%d" % level))
        os.unlink(vm.path("mdf.%d" % level))
    # the levels really drop what they should: page cache at 2, users at 8, free at 16
    assert ram - bitmap2(vm.path("ours.31")) >= markers["anon"] | markers["cache"]
    print("\n".join(report))
    check_drgn(vm.path("ours.31"))


def check_drgn(path):
    import drgn
    with vmcore.open(path) as d:
        info = d.vmcoreinfo
        assert d.dump_level == 31
        uts = vmcoreinfo.symbol(info, "init_uts_ns")
        paddr = d.vtop(uts)
        release = info["OSRELEASE"].encode()
    prog = drgn.Program()
    prog.set_core_dump(path)
    data = prog.read(paddr, 512, True)
    assert b"Linux" in data and release in data
