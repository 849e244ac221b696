"""The kdump service end to end in a Debian 12 guest with systemd as PID 1.

Scenario a: /etc/kdump.conf names an ext4 virtio disk by LABEL=; `systemctl enable --now
kdump` builds the capture initramfs with our mkdumprd (dracut) and loads it; a sysrq
crash boots the capture kernel, whose shell script saves vmcore-dmesg.txt and the vmcore
to the disk and reboots; back in the first kernel `kdumpctl status` reports the dump.
The disk is read on the host with debugfs; the dump is judged by our reader, drgn and
makedumpfile.
"""
import json
import os
import re
import secrets
import subprocess

from kexec_py import vmcore
from kexec_py.cpio import list_names

from .guest import SystemdGuest
from .test_dump_levels import bitmap2, check_drgn, marker_pfns

DIR_NAME = re.compile(r"^127\.0\.0\.1-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$")

MARKER = """
python3 -c '
import sys, time
data = [("kpy-anon-%s-" % sys.argv[1] + "%08d" % i).encode().ljust(4096, b".") for i in range(4096)]
open("/run/kpy-marker-ready", "w").write("1")
time.sleep(100000)
' {token} &
while [ ! -e /run/kpy-marker-ready ]; do sleep 0.2; done
"""


def make_disk(path, label, size="2G", fstype="ext4"):
    subprocess.run(["truncate", "-s", size, path], check=True)
    subprocess.run(["mkfs." + fstype, "-q", "-L", label, path] if fstype == "ext4"
                   else ["mkfs." + fstype, "-q", "-L", label, "-f", path], check=True)
    return path


def test_ext4_label_target_end_to_end(tmp_path):
    g = SystemdGuest(str(tmp_path / "guest"))
    disk = make_disk(str(tmp_path / "kdump.img"), "kdumpfs")
    g.add_disk(disk)
    token = secrets.token_hex(6)
    g.script(1, r"""
mkdir -p /mnt/kdump
echo "LABEL=kdumpfs /mnt/kdump ext4 defaults 0 2" >> /etc/fstab
mount /mnt/kdump || exit 1
mkdir -p /mnt/kdump/var/crash
cat > /etc/kdump.conf <<'EOF'
# scenario a: the dump goes to the ext4 disk named by its label
ext4 LABEL=kdumpfs
path /var/crash
core_collector makedumpfile -E -d 1 --message-level 7
failure_action reboot
final_action reboot
EOF
record enable systemctl enable --now kdump
record status1 kdumpctl status
record plan kdumpctl show-plan
journalctl -b -u kdump --no-pager > "$OUT/kdump-journal.txt" 2>&1
cp /boot/initramfs-$(uname -r)kdump.img "$OUT/capture.img"
cat /sys/kernel/kexec_crash_loaded > "$OUT/loaded"
""" + MARKER.format(token=token) + """
sync
crash
""")
    g.script(2, """
# kdump.service is ordered like RHEL's (DefaultDependencies=no): multi-user.target does
# not wait for it, so wait for its start job here
record restart systemctl start kdump
journalctl -b -u kdump --no-pager > "$OUT/kdump-journal2.txt" 2>&1
record status2 kdumpctl status
cp /var/lib/kdump/last-dump.json "$OUT/last-dump.json"
poweroff
""")
    g.boot("crashkernel=256M", memory="768M", timeout=1500)

    rc, out = g.recorded("enable")
    g.expect(rc == 0, "systemctl enable --now kdump exited %s:\n%s\n%s"
             % (rc, out, g.read("kdump-journal.txt", "")))
    g.expect(g.read("loaded", "").strip() == "1", "no capture kernel loaded:\n%s"
             % g.read("kdump-journal.txt", ""))
    rc, out = g.recorded("status1")
    g.expect(rc == 0 and "Kdump is operational" in out, "status before the crash: %s" % out)
    g.expect(g.boot_end(1) == "crash", "boot 1 ended %s" % g.boot_end(1))

    # The capture initramfs: no Python, our tools and plan inside.
    names = list_names(os.path.join(g.ctl, "capture.img"))
    for name in ("usr/sbin/vmcore-copy", "usr/sbin/vmcore-dmesg", "usr/sbin/kdump-capture",
                 "etc/kdump/plan.env", "usr/lib/dracut/hooks/pre-mount/90-kdump-capture-hook.sh"):
        g.expect(name in names, "%s is not in the capture initramfs" % name)
    g.expect(not [n for n in names if "python" in n.lower()],
             "the capture initramfs carries Python: %s"
             % [n for n in names if "python" in n.lower()][:5])
    print("capture initramfs: %d bytes, %d members"
          % (os.path.getsize(os.path.join(g.ctl, "capture.img")), len(names)))

    # Back in the first kernel: status reports the saved dump.
    rc, out = g.recorded("status2")
    g.expect(rc == 0 and "Kdump is operational" in out and
             "Last dump: saved /var/crash/127.0.0.1-" in out,
             "status after the reboot:\n%s\n%s" % (out, g.read("kdump-journal2.txt", "")))
    record = json.loads(g.read("last-dump.json", "{}"))
    g.expect(record.get("status") == "success" and not record.get("fallback"),
             "last-dump.json: %s" % record)

    # The disk, read without mounting it.
    (name,) = [n for n in g.listdir(disk, "/var/crash") if n not in (".", "..")]
    assert DIR_NAME.match(name), name
    got = g.rdump(disk, "/var/crash/" + name, str(tmp_path / "dump"))
    files = sorted(os.listdir(got))
    assert files == ["kdump-result.json", "kexec-dmesg.log", "vmcore", "vmcore-dmesg.txt"], \
        files
    assert "sysrq triggered crash" in open(os.path.join(got, "vmcore-dmesg.txt")).read()
    result = json.load(open(os.path.join(got, "kdump-result.json")))
    assert result == record
    assert result["location"] == "/var/crash/" + name and result["dump_level"] == 1

    # The marker is in the -d 1 dump; -d 31 drops it, ours and makedumpfile's alike.
    elf = os.path.join(got, "vmcore")
    pfns = marker_pfns(elf, "anon", token)
    assert len(pfns) >= 2048, "the marker process's pages are not in the dump (%d)" % len(pfns)
    for tool, argv in (("ours", [vmcore.executable(), "-l", "-d", "31", "--message-level",
                                 "0", elf, str(tmp_path / "ours.31")]),
                       ("makedumpfile", ["makedumpfile", "-l", "-d", "31",
                                         "--message-level", "0", elf,
                                         str(tmp_path / "makedumpfile.31")])):
        subprocess.run(argv, check=True)
        kept = bitmap2(str(tmp_path / ("%s.31" % tool)))
        assert not pfns & kept, "%s keeps %d marker frames at -d 31" % (tool, len(pfns & kept))
    check_drgn(str(tmp_path / "ours.31"))
