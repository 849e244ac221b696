"""`make demo`: boot a kernel in QEMU, kexec into a second one, crash it into a capture
kernel that saves /proc/vmcore with vmcore-copy (kdump-compressed, lzo), then check the
dump on the host with our reader, drgn and crash; print a one-line verdict with the time
each boot took.

Boot times are the guest's own /proc/uptime when its stage script starts (kernel start
to userspace), so they do not include QEMU start-up or the time between stages.
"""
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile

from .harness import VM, GuestFailure, initrd_with_marker, prepare


def main():
    work = tempfile.mkdtemp(prefix="kexec-py-demo-")
    kernel, initrd = prepare(work)
    vm = VM(os.path.join(work, "vm"), kernel.vmlinuz, initrd)
    token = secrets.token_hex(8)
    memory_marker = "KPY-DEMO-MARKER-" + secrets.token_hex(8)
    initrd2 = initrd_with_marker(initrd, vm.path("initrd2.img"), token)
    q = shlex.quote
    uptime = 'result uptime.$STAGE "$(cut -d" " -f1 /proc/uptime)"'
    vm.stage(1, """STAGE=1; %(uptime)s
kexec -s -l %(k)s --initrd=%(i)s --append=%(c2)s || exit 1
kexec -e
""" % {"uptime": uptime, "k": q(kernel.vmlinuz), "i": q(initrd2),
       "c2": q(vm.cmdline(2, "crashkernel=160M"))})
    vm.stage(2, """STAGE=2; %(uptime)s
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
printf '%%s\\n' %(marker)s > /dev/shm/marker
kexec -s -p %(k)s --initrd=%(i)s --append=%(c3)s || exit 1
sync
echo c > /proc/sysrq-trigger
""" % {"uptime": uptime, "k": q(kernel.vmlinuz), "i": q(initrd),
       "marker": q(memory_marker), "c3": q(vm.cmdline(3, "irqpoll nr_cpus=1 reset_devices"))})
    vm.stage(3, """STAGE=3; %(uptime)s
result vmcore_size "$(stat -c %%s /proc/vmcore)"
vmcore-copy -l -d 1 --message-level 0 --json /proc/vmcore "$OUT/vmcore" > "$OUT/copy.json"
""" % {"uptime": uptime})
    try:
        vm.boot()
        boots = [vm.read("result.uptime.%d" % n) for n in (1, 2, 3)]
        vm.expect(all(boots), "not every boot reached its stage script")
        vm.expect(vm.read("initrd-marker.2", "").strip() == token,
                  "the kexec'd kernel did not get our initrd")
        vm.expect_stage_ok(3)
        stats = json.loads(vm.read("copy.json"))
        check_dump(vm.path("vmcore"), memory_marker.encode(), kernel.release)
    except (GuestFailure, AssertionError, ValueError) as e:
        print(e, file=sys.stderr)
        print("demo: FAIL (logs in %s)" % vm.out)
        return 1
    size = int(vm.read("result.vmcore_size").strip())
    b = [float(x.strip()) for x in boots]
    print("demo: PASS - boot 1 %.1f s, kexec boot 2 %.1f s, capture boot 3 %.1f s; "
          "vmcore-copy saved /proc/vmcore (%d MiB) as a %d MiB kdump file in %.1f s; our "
          "reader and drgn find the pre-crash marker, crash names %s; %.0f s in all under TCG"
          % (b[0], b[1], b[2], size >> 20, stats["bytes_out"] >> 20, stats["seconds"],
             kernel.release, vm.seconds))
    os.unlink(vm.path("vmcore"))
    return 0


def check_dump(path, marker, release):
    """The saved dump holds the marker (our reader, then drgn at the same address) and
    crash recognises it."""
    import drgn

    from kexec_py import vmcore
    found = None
    with vmcore.open(path) as dump:
        for pfn in dump.pages():
            page = dump.read_page(pfn)
            at = page.find(marker)
            if at >= 0:
                found = pfn * len(page) + at
                break
    if found is None:
        raise AssertionError("the marker planted before the crash is not in the dump")
    prog = drgn.Program()
    prog.set_core_dump(path)
    if prog.read(found, len(marker), True) != marker:
        raise AssertionError("drgn reads something else at %#x" % found)
    out = subprocess.run(["crash", "--osrelease", path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True).stdout
    if release not in out:
        raise AssertionError("crash --osrelease says %r" % out.strip())


if __name__ == "__main__":
    sys.exit(main())
