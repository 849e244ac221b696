"""A real dump: a guest plants a marker in tmpfs, loads a capture kernel and crashes; the
capture kernel runs the C vmcore-copy (no Python) on /proc/vmcore into kdump-compressed
(lzo, zstd), ELF and flattened -> -R files, and takes a plain copy of /proc/vmcore in the
same boot. On the host drgn reads every RAM byte of each dump and it equals the plain
copy, the marker is found through every dump, and crash names the kernel."""
import json
import mmap
import shlex
import shutil
import struct
import subprocess

from kexec_py import vmcore

PT_LOAD = 1
KERNEL_MAP = 0xffffffff80000000


def q(s):
    return shlex.quote(str(s))


def ram_segments(path, kernel_text=False):
    """[(paddr, filesz, offset)] of the plain copy's RAM PT_LOADs (and kernel text)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    phoff, = struct.unpack_from("<Q", head, 32)
    phnum, = struct.unpack_from("<H", head, 56)
    segs = []
    for i in range(phnum):
        typ, _, off, vaddr, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", head,
                                                                     phoff + 56 * i)
        if typ == PT_LOAD and filesz and (kernel_text or vaddr < KERNEL_MAP):
            segs.append((paddr, filesz, off))
    return segs


def compare_with_drgn(dump, raw, segs):
    import drgn
    prog = drgn.Program()
    prog.set_core_dump(dump)
    step = 1 << 20
    for paddr, size, off in segs:
        for pos in range(0, size, step):
            n = min(step, size - pos)
            raw.seek(off + pos)
            want = raw.read(n)
            got = prog.read(paddr + pos, n, True)
            assert got == want, "%s differs from /proc/vmcore in [%#x, %#x)" % (
                dump, paddr + pos, paddr + pos + n)


def marker_paddrs(raw_path, segs, marker):
    """Physical addresses of every copy of the marker in the plain copy's PT_LOADs (it
    is in tmpfs, and also in the shell that wrote it)."""
    found = []
    with open(raw_path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        at = m.find(marker)
        while at >= 0:
            found += [paddr + (at - off) for paddr, size, off in segs if off <= at < off + size]
            at = m.find(marker, at + 1)
    assert found, "the marker is not in the memory of the plain copy of /proc/vmcore"
    return found


def test_capture_kernel_copies_proc_vmcore(vm, vm_kernel):
    import secrets
    marker = ("kpy-vmcore-marker-%s" % secrets.token_hex(12)).encode()
    copier = vmcore.executable()
    cmdline = vm.cmdline(2, "irqpoll nr_cpus=1 reset_devices")
    vm.stage(1, """
mkdir -p "$OUT/shm" && mount -t tmpfs tmpfs "$OUT/shm" || exit 1
i=0; while [ $i -lt 64 ]; do printf '%%s\\n' %(marker)s; i=$((i+1)); done > "$OUT/shm/marker"
kexec -s -p %(kernel)s --initrd=%(initrd)s --append=%(cmdline)s || { echo load failed; exit 1; }
result crash_loaded "$(cat /sys/kernel/kexec_crash_loaded)"
sync
echo c > /proc/sysrq-trigger
""" % {"marker": q(marker.decode()), "kernel": q(vm_kernel.vmlinuz), "initrd": q(vm.initrd),
       "cmdline": q(cmdline)})
    vm.stage(2, """
V=%(copier)s
$V -l -d 1 --json /proc/vmcore "$OUT/dump.lzo" > "$OUT/stats.lzo"; result lzo $?
$V -z -d 1 --json --num-threads 2 /proc/vmcore "$OUT/dump.zst" > "$OUT/stats.zst"; result zstd $?
$V -E -d 1 --json /proc/vmcore "$OUT/dump.elf" > "$OUT/stats.elf"; result elf $?
$V -F -l -d 1 --message-level 0 /proc/vmcore | $V -R "$OUT/dump.flat"; result flat $?
$V --verify "$OUT/dump.lzo" --message-level 0; result verify $?
cp /proc/vmcore "$OUT/vmcore.raw"; result raw $?
""" % {"copier": q(copier)})
    vm.boot(extra_cmdline="crashkernel=160M")
    vm.expect(vm.read("result.crash_loaded", "").strip() == "1", "no capture kernel loaded")
    for name in ("lzo", "zstd", "elf", "flat", "verify", "raw"):
        vm.expect(vm.read("result." + name, "").strip() == "0",
                  "capture kernel: %s exited %r" % (name, vm.read("result." + name)))
    raw_path = vm.path("vmcore.raw")
    segs = ram_segments(raw_path)
    ram_frames = sum(-(-(p + n) // 4096) - p // 4096 for p, n, _ in segs)
    for name in ("lzo", "zst", "elf"):
        stats = json.loads(vm.read("stats." + name))
        assert stats["incomplete"] is False and stats["pages_lost"] == 0
        assert stats["pages_in"] >= ram_frames * 0.99, (stats, ram_frames)
    # the flattened stream rebuilt by -R is the same file as the direct write
    with open(vm.path("dump.flat"), "rb") as a, open(vm.path("dump.lzo"), "rb") as b:
        assert a.read() == b.read(), "-F | -R differs from the direct lzo dump"
    found = marker_paddrs(raw_path, ram_segments(raw_path, kernel_text=True), marker)
    assert len(found) >= 64, "fewer markers in memory than were written to tmpfs"
    with open(raw_path, "rb") as raw:
        for name in ("dump.lzo", "dump.zst", "dump.elf"):
            compare_with_drgn(vm.path(name), raw, segs)
            with vmcore.open(vm.path(name)) as d:
                for at in found:
                    assert d.read(at, len(marker)) == marker, (name, hex(at))
                assert d.release == vm_kernel.release and not d.incomplete
    assert shutil.which("crash"), "crash is missing: make test installs it"
    for name in ("dump.lzo", "dump.zst", "dump.elf"):
        out = subprocess.run(["crash", "--osrelease", vm.path(name)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
        assert out.stdout.strip() == vm_kernel.release, (name, out.stdout)
