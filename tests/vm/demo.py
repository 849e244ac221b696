"""`make demo`: the knowledge base's kdump story in a Debian 12 guest with systemd, from
`systemctl enable --now kdump` to the saved vmcore (kb_story.py), with the time of each
step, then the dump checked on the host with our reader, drgn and crash.

The first run builds and caches the guest image (debootstrap, a few minutes); later
runs reuse it. Everything runs under QEMU's TCG emulation, so steps take several times
what they take on hardware.
"""
import os
import subprocess
import sys
import tempfile

from .harness import GuestFailure
from .kb_story import run_story


def main():
    work = tempfile.mkdtemp(prefix="kexec-py-demo-")
    print("demo: booting a Debian 12 guest (systemd, crashkernel=256M, kexec-py installed "
          "by make install) in %s" % work, flush=True)
    f = run_story(work)
    g = f["guest"]
    try:
        rc, out = f["enable"]
        g.expect(rc == 0, "systemctl enable --now kdump failed:\n%s" % out)
        rc, out = f["status1"]
        g.expect(rc == 0, "kdumpctl status before the crash: %s" % out)
        g.expect(f["dump_dir"] is not None, "no dump in /var/crash after the reboot")
    except GuestFailure as e:
        print("demo: FAIL - %s" % e)
        return 1
    print("\n$ systemctl enable --now kdump; kdumpctl status")
    print(f["status1"][1].rstrip())
    print("$ echo c > /proc/sysrq-trigger     # ... capture kernel, reboot ...")
    print("$ kdumpctl status")
    print(f["status2"][1].rstrip())
    if f["predicted"]:
        print("(before the crash, kdumpctl estimate predicted a %d MiB dump)"
              % (f["predicted"] >> 20))
    print("\nsteps (guest clock, TCG):")
    for step, seconds in f["times"].items():
        print("  %-72s %6.1f s" % (step, seconds))
    path = os.path.join(f["dump_dir"], "vmcore")
    from kexec_py import vmcore
    with vmcore.open(path) as dump:
        release = dump.vmcoreinfo["OSRELEASE"]
        level = dump.dump_level
    import drgn
    prog = drgn.Program()
    prog.set_core_dump(path)
    crash = subprocess.run(["crash", "--osrelease", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True).stdout.strip()
    dmesg = open(os.path.join(f["dump_dir"], "vmcore-dmesg.txt")).read()
    ok = crash == release and "sysrq triggered crash" in dmesg
    print("\ndemo: %s - %s (%d MiB, dump level %d, %s) opened by our reader, drgn and "
          "crash (--osrelease %s); vmcore-dmesg.txt ends with the sysrq panic; %.0f s in all"
          % ("PASS" if ok else "FAIL", path, os.path.getsize(path) >> 20, level,
             f["record"]["stats"]["compression"], crash, f["wall"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
