"""Dump levels on a real crash. Before the crash the guest holds anonymous pages with a
marker (a live process), page-cache pages of a file with another marker on ext4 (a loop
device over a tmpfs file: disk-backed, not shmem), and memory freed again (a third
marker). The capture kernel saves /proc/vmcore. On the host, for -d 2, 4, 8, 16 and 31,
our dump and makedumpfile's keep the same set of page frames (2nd bitmaps; differences
are listed and stay under 0.5%), every page holding a marker is kept or dropped as
makedumpfile does, at -d 31 no anonymous or page-cache marker page is kept, and drgn
reads kernel pages from our -d 31 dump. (Freed memory the kernel reused before the crash may be kept: at -d 16
and 31 at most 1% of the freed marker's frames, as makedumpfile keeps them.)

Before the crash the first kernel also runs `vmcore-copy --mem-usage -l /proc/kcore`,
`makedumpfile --mem-usage /proc/kcore` and ours again: makedumpfile's count of each
class (ZERO, NON_PRI_CACHE, PRI_CACHE, USER, FREE, KERN_DATA) and its total lie within
2% of ours (of the run before it or the one after it; a class under 1000 pages may
differ by the 20 pages the tools' own runs move), once makedumpfile's KERN_DATA and
total lose the frames of /proc/kcore's kernel-text PT_LOAD, which it counts a second
time (that segment repeats RAM; the total it prints exceeds the RAM that /proc/vmcore
will hold by exactly its size). Both leave out the crash kernel's reserve. The -d 31 lzo
size ours predicted is within 25% of the dump the capture kernel then writes with
vmcore-copy -l -d 31."""
import json
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
mu() { %(copy)s --mem-usage -l --json /proc/kcore > "$OUT/mu.ours.$1.json" 2> "$OUT/mu.ours.$1.err"; result mu_ours$1 $?; }
cat /proc/iomem > "$OUT/iomem.txt"
dd if=/proc/kcore of="$OUT/kcore.head" bs=4096 count=4 2>/dev/null
mu 1
# makedumpfile copies vmcoreinfo to /tmp (read-only here) whatever TMPDIR says: a tmpfs
# over it for that run; $OUT may be under /tmp, so write relative to the working directory
mount -t tmpfs tmpfs /tmp && { TMPDIR=/tmp %(mdf)s --mem-usage /proc/kcore > mu.mdf.txt 2>&1; echo $? > result.mu_mdf; umount /tmp; }
mu 2
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
                         "initrd": shlex.quote(vm.initrd), "cmdline": shlex.quote(cmdline),
                         "copy": shlex.quote(vmcore.executable()),
                         "mdf": shlex.quote(MAKEDUMPFILE)})
    vm.stage(2, '%s -l -d 31 --message-level 0 /proc/vmcore "$OUT/capture.31"; result cap31 $?\n'
                'cp /proc/vmcore "$OUT/vmcore.raw"; result raw $?\n'
             % shlex.quote(vmcore.executable()))
    vm.boot(extra_cmdline="crashkernel=160M")
    vm.expect(vm.read("result.fs", "").strip() == "ext4", "no ext4 mounted in the guest")
    vm.expect(vm.read("result.anon", "").strip() == "0", "the anonymous holder did not start")
    vm.expect(vm.read("result.raw", "").strip() == "0", "capture kernel: copy failed")
    raw = vm.path("vmcore.raw")
    try:
        check_mem_usage(vm)
        check_levels(vm, raw, token)
    finally:
        os.unlink(raw)


MDF_ROWS = {"ZERO": "zero", "NON_PRI_CACHE": "non_pri_cache", "PRI_CACHE": "pri_cache",
            "USER": "user", "FREE": "free", "KERN_DATA": "kern_data",
            "Total pages on system:": "total_pages"}


def kernel_text_frames(head):
    """Frames of /proc/kcore's kernel-text PT_LOAD (the one at __START_KERNEL_map with a
    physical address), from the start of the file."""
    phoff, = struct.unpack_from("<Q", head, 32)
    phnum, = struct.unpack_from("<H", head, 56)
    for i in range(phnum):
        p_type, _, _, vaddr, paddr, filesz = struct.unpack_from("<IIQQQQ", head, phoff + 56 * i)
        if p_type == 1 and vaddr >= 0xffffffff80000000 and vaddr < 0xffffffffc0000000 \
                and paddr != (1 << 64) - 1:
            return filesz // 4096
    raise AssertionError("no kernel-text PT_LOAD in /proc/kcore")


def check_mem_usage(vm):
    """--mem-usage in the first kernel against makedumpfile's, and its prediction against
    the capture kernel's -l -d 31 dump."""
    for name in ("mu_ours1", "mu_mdf", "mu_ours2", "cap31"):
        vm.expect(vm.read("result." + name, "").strip() == "0",
                  "%s failed: %s" % (name, (vm.read("mu.mdf.txt", "") if name == "mu_mdf"
                                            else vm.read("mu.ours.1.err", ""))[-1500:]))
    ours = [json.loads(vm.read("mu.ours.%d.json" % i)) for i in (1, 2)]
    theirs = {}
    for line in vm.read("mu.mdf.txt").splitlines():
        name, _, rest = line.partition("\t")
        f = rest.split()
        if name.strip() in MDF_ROWS and f and f[0].isdigit():
            theirs[MDF_ROWS[name.strip()]] = int(f[0])
    assert set(theirs) == set(MDF_ROWS.values()), vm.read("mu.mdf.txt")
    with open(vm.path("kcore.head"), "rb") as f:
        text = kernel_text_frames(f.read())
    assert ours[0]["crash_reserved"] > 0, "the crash kernel's reserve was not left out"
    report = ["makedumpfile counts the %d kernel-text frames twice" % text]
    theirs["kern_data"] -= text
    theirs["total_pages"] -= text
    for key, n in theirs.items():
        mine = [o[key] for o in ours]
        report.append("%s: makedumpfile %d, ours %d and %d" % (key, n, mine[0], mine[1]))
        slack = max(0.02 * n, 20 if n < 1000 else 0)
        assert min(abs(m - n) for m in mine) <= slack or min(mine) <= n <= max(mine), report
    dump = os.path.getsize(vm.path("capture.31"))
    predicted = [o["predicted"]["31"]["lzo"] for o in ours]
    report.append("-d 31 -l: predicted %s, the capture kernel wrote %d" % (predicted, dump))
    print("\n".join(report))
    assert all(abs(p - dump) <= 0.25 * dump for p in predicted), report
    with vmcore.open(vm.path("capture.31")) as d:
        assert d.dump_level == 31 and not d.incomplete
    os.unlink(vm.path("capture.31"))


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
