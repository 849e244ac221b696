"""Real kernels in QEMU through kexec_load: our bzImage loader, boot_params, purgatory
with its SHA-256 check, and the ELF core header of a panic load.
"""
import mmap
import os
import re
import secrets
import shlex
import subprocess
import time

import drgn

from .harness import initrd_with_marker

from .qmp import QMP

q = shlex.quote
PEER = "/usr/sbin/kexec"
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_kexec_load_then_exec_boots_with_exact_cmdline_and_initrd(vm, vm_kernel):
    """Scenario a: kexec -c -l + kexec -e; purgatory reports its SHA-256 check on COM1."""
    token = secrets.token_hex(8)
    initrd = initrd_with_marker(vm.initrd, vm.path("initrd2.img"), token)
    cmdline = vm.cmdline(2, 'quiet kpy.path=kexec_load kpy.q="x y"')
    vm.stage(1, """
kexec -c -l --console-serial %s --initrd=%s --append=%s || exit 1
kexec -e
exit 1
""" % (q(vm_kernel.vmlinuz), q(initrd), q(cmdline)))
    vm.stage(2, "result booted yes")
    vm.boot()
    log = vm.serial_log()
    vm.expect("kexec-py purgatory: SHA-256 ok" in log, "purgatory did not report its check")
    vm.expect(vm.read("result.booted") == "yes\n", "the second kernel did not run stage 2")
    vm.expect(vm.read("cmdline.2", "").rstrip("\n") == cmdline,
              "second kernel's /proc/cmdline %r != %r" % (vm.read("cmdline.2"), cmdline))
    vm.expect(vm.read("initrd-marker.2", "").strip() == token, "initrd not handed over")


def test_kexec_load_panic_capture_vmcore(vm, vm_kernel, tmp_path):
    """Scenario b: kexec -c -p, sysrq crash; the capture kernel's /proc/vmcore holds a
    marker planted before the crash, vmcore-dmesg reads the panic, drgn opens it."""
    marker = "KPY-MARKER-" + secrets.token_hex(12)
    cmdline = vm.cmdline(2, "irqpoll nr_cpus=1 reset_devices")
    vm.stage(1, """
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
printf '%%s\\n' %(marker)s > /dev/shm/marker
kexec -c -p %(k)s --initrd=%(i)s --append=%(c)s || exit 1
result crash_loaded "$(cat /sys/kernel/kexec_crash_loaded)"
sync
echo c > /proc/sysrq-trigger
""" % {"marker": q(marker), "k": q(vm_kernel.vmlinuz), "i": q(vm.initrd), "c": q(cmdline)})
    vm.stage(2, "cp /proc/vmcore \"$OUT/vmcore\" && result copied yes")
    vm.boot(extra_cmdline="crashkernel=160M")
    vm.expect(vm.read("result.crash_loaded") == "1\n", "the panic load did not take")
    vm.expect(vm.read("result.copied") == "yes\n", "the capture kernel could not copy "
                                                    "/proc/vmcore")
    seen = vm.read("cmdline.2", "").rstrip("\n")
    vm.expect(re.fullmatch(re.escape(cmdline) + r" elfcorehdr=\d+K", seen),
              "capture command line %r" % seen)
    vmcore = vm.path("vmcore")
    try:
        with open(vmcore, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            pos = m.find(marker.encode())
            assert pos >= 0, "the marker planted before the crash is not in the vmcore"
        dmesg = subprocess.run(["vmcore-dmesg", vmcore], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True)
        assert dmesg.returncode == 0, dmesg.stdout[-2000:]
        assert "sysrq triggered crash" in dmesg.stdout, dmesg.stdout[-2000:]
        prog = drgn.Program()
        prog.set_core_dump(vmcore)
        paddr = _paddr_of_offset(vmcore, pos)
        assert prog.read(paddr, len(marker), True) == marker.encode()
    finally:
        os.unlink(vmcore)


def _paddr_of_offset(path, offset):
    """Physical address of a file offset in an ELF vmcore (through its PT_LOADs)."""
    import struct
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    phoff, = struct.unpack_from("<Q", head, 32)
    phnum, = struct.unpack_from("<H", head, 56)
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", head, phoff + 56 * i)
        if p_type == 1 and p_offset <= offset < p_offset + p_filesz:
            return p_paddr + offset - p_offset
    raise AssertionError("offset %#x is in no PT_LOAD" % offset)


MISMATCH = "kexec-py purgatory: SHA-256 digest mismatch"


def test_corrupted_digest_stops_in_purgatory(vm, vm_kernel):
    """Scenario c: a wrong stored digest (a test wrapper around kexec stores it):
    purgatory says so on COM1 and never boots. The test watches the serial log for the
    message, gives the guest 10 more seconds to (wrongly) go on, then stops it over QMP."""
    cmdline = vm.cmdline(2)
    vm.stage(1, """
export PYTHONPATH=%s
python3 -m tests.vm.kexec_corrupt_digest -c -l --console-serial %s --initrd=%s --append=%s || exit 1
kexec -e
exit 1
""" % (q(PROJECT), q(vm_kernel.vmlinuz), q(vm.initrd), q(cmdline)))
    vm.stage(2, "result booted yes")

    def watch(v):
        end = time.monotonic() + 600
        while MISMATCH not in v.serial_log():
            if time.monotonic() > end:
                return          # the hang check below reports it
            time.sleep(0.5)
        time.sleep(10)
        with QMP(v.path("qmp.sock")) as qmp:
            qmp.execute("quit")
    vm.boot(timeout=660, expect_hang=True, during=watch,
            qemu_args=["-qmp", "unix:%s,server=on,wait=off" % vm.path("qmp.sock")])
    log = vm.serial_log()
    vm.expect("kexec_core: Starting new kernel" in log, "kexec -e never ran")
    vm.expect(MISMATCH in log, "purgatory did not report the mismatch")
    vm.expect(vm.read("result.booted") is None and vm.read("cmdline.2") is None,
              "the second kernel started despite the bad digest")
    vm.expect("reboot: Power down" not in log.split(MISMATCH)[-1],
              "the guest should stop in purgatory, not power off")


SEG_PEER = re.compile(r"segment\[(\d+)\]\.(bufsz|mem|memsz)\s*=\s*(0x[0-9a-f]+)")
SEG_OURS = re.compile(r"segment\[(\d+)\]: (\S+)\s+bufsz=(0x[0-9a-f]+)\s+mem=(0x[0-9a-f]+)\s+"
                      r"memsz=(0x[0-9a-f]+)")


def test_segment_table_matches_kexec_tools(vm, vm_kernel):
    """Scenario d: our --dry-run -c and Debian's kexec -c -d, same kernel, initrd and
    command line: same number of segments, same kernel and initrd sizes."""
    cmdline = "console=ttyS0 root=/dev/null kpy.compare=1"
    vm.stage(1, """
%(peer)s -c -d -l %(k)s --initrd=%(i)s --append=%(c)s > "$OUT/peer.txt" 2>&1 || exit 1
kexec -c -l --dry-run %(k)s --initrd=%(i)s --append=%(c)s > "$OUT/ours.txt" 2>&1 || exit 1
""" % {"peer": PEER, "k": q(vm_kernel.vmlinuz), "i": q(vm.initrd), "c": q(cmdline)})
    vm.boot()
    vm.expect_stage_ok(1)
    peer = {}
    for idx, key, value in SEG_PEER.findall(vm.read("peer.txt")):
        peer.setdefault(int(idx), {})[key] = int(value, 16)
    ours = {name: (int(b, 16), int(m, 16), int(z, 16))
            for _, name, b, m, z in SEG_OURS.findall(vm.read("ours.txt"))}
    assert len(peer) == len(ours) == 4, (peer, ours)
    peer_sizes = sorted(s["bufsz"] for s in peer.values())
    kernel_size = os.path.getsize(vm_kernel.vmlinuz)
    assert ours["initrd"][0] == os.path.getsize(vm.initrd)
    assert ours["initrd"][0] in peer_sizes
    assert ours["kernel"][0] in peer_sizes and ours["kernel"][0] < kernel_size
    peer_kernel = [s for s in peer.values() if s["bufsz"] == ours["kernel"][0]][0]
    assert peer_kernel["memsz"] == ours["kernel"][2], "kernel memsz (init_size) differs"
