"""Scenario c: the knowledge-base story in a systemd guest, as `make demo` runs it (see
kb_story.py): enable --now kdump, status 0, a sysrq crash, the dump saved on the root file
system by our capture initramfs, status after the reboot; the dump read by crash, drgn and
our vmcore-dmesg. `kdumpctl estimate`, run before the crash, predicted the dump's size
(vmcore-copy --mem-usage on /proc/kcore) within 25% of the vmcore then saved."""
import os
import subprocess

from kexec_py import vmcore

from .kb_story import DIR_NAME, run_story
from .test_dump_levels import check_drgn


def test_knowledge_base_story(tmp_path):
    f = run_story(str(tmp_path))
    g = f["guest"]
    rc, out = f["enable"]
    g.expect(rc == 0, "systemctl enable --now kdump exited %s: %s\n%s"
             % (rc, out, g.read("journal1.txt", "")))
    rc, out = f["status1"]
    g.expect(rc == 0 and "Kdump is operational" in out, "status before the crash: %s" % out)
    g.expect(f["boot_end"][0] == "crash", "boot 1 ended %s" % f["boot_end"][0])
    g.expect(len(f["dirs"]) == 1 and DIR_NAME.match(f["dirs"][0]),
             "/var/crash after the reboot: %s" % f["dirs"])
    rc, out = f["status2"]
    g.expect(rc == 0 and "Last dump: saved /var/crash/%s" % f["dirs"][0] in out,
             "status after the reboot: %s" % out)
    rc, out = f["estimate"]
    g.expect(rc == 0 and "Recommended crashkernel:" in out, "estimate: %s" % out)
    d = f["dump_dir"]
    assert sorted(os.listdir(d)) == ["kdump-result.json", "kexec-dmesg.log", "vmcore",
                                     "vmcore-dmesg.txt"]
    assert "sysrq triggered crash" in open(os.path.join(d, "vmcore-dmesg.txt")).read()
    path = os.path.join(d, "vmcore")
    assert f["record"]["status"] == "success" and f["record"]["dump_level"] == 31
    with vmcore.open(path) as dump:
        assert dump.dump_level == 31
        release = dump.vmcoreinfo["OSRELEASE"]
    size = os.path.getsize(path)
    print("kdumpctl estimate predicted %s bytes (rounded up to MiB); the vmcore has %d"
          % (f["predicted"], size))
    assert f["predicted"] is not None, "no prediction in kdumpctl estimate:\n%s" % out
    assert abs(f["predicted"] - size) <= 0.25 * size + (1 << 20), (f["predicted"], size)
    check_drgn(path)
    crash = subprocess.run(["crash", "--osrelease", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
    assert crash.stdout.strip() == release, crash.stdout
    assert vmcore.dmesg(path) == open(os.path.join(d, "vmcore-dmesg.txt")).read()
    for step, seconds in f["times"].items():
        print("%-75s %6.1f s" % (step, seconds))
