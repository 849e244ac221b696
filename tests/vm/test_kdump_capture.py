"""The kdump service end to end in a Debian 12 guest with systemd as PID 1.

Scenario a: /etc/kdump.conf names an ext4 virtio disk by LABEL=; `systemctl enable --now
kdump` builds the capture initramfs with our mkdumprd (dracut) and loads it; a sysrq
crash boots the capture kernel, whose shell script saves vmcore-dmesg.txt and the vmcore
to the disk and reboots; back in the first kernel `kdumpctl status` reports the dump.
The disk is read on the host with debugfs; the dump is judged by our reader, drgn and
makedumpfile.

Scenario d continues in the same guest, on the capture initramfs built for a (its
failure_action is dump_to_rootfs, the capture command line carries rd.timeout=20):
- the target disk goes missing (relabelled after `kdumpctl start`): the capture kernel
  waits rd.timeout, falls back to the root file system, and `kdumpctl status` says loudly
  that the dump did not reach the target;
- the target is full (8 MiB left): the dump stops with ENOSPC and stays vmcore-incomplete
  with a record that says incomplete (and `vmcore-copy --verify` rejects it); the fallback
  saves a complete dump on the root fs and status says why.
"""
import json
import os
import re
import secrets
import subprocess

from kexec_py import vmcore
from kexec_py.cpio import list_names, read_member

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


def back_up(n):
    """Boot n's first lines: wait for kdump.service, its status, the last-dump record."""
    return """
record start%(n)d systemctl start kdump
record status%(n)d kdumpctl status
cp /var/lib/kdump/last-dump.json "$OUT/last-dump%(n)d.json"
""" % {"n": n}


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
echo "LABEL=kdumpfs /mnt/kdump ext4 defaults,nofail 0 2" >> /etc/fstab
# scenario d's missing target waits rd.timeout, not systemd's 90 s
sed -i 's/^KDUMP_COMMANDLINE_APPEND="/&rd.timeout=20 /' /etc/sysconfig/kdump
mount /mnt/kdump || exit 1
mkdir -p /mnt/kdump/var/crash
cat > /etc/kdump.conf <<'EOF'
# scenario a: the dump goes to the ext4 disk named by its label
ext4 LABEL=kdumpfs
path /var/crash
core_collector makedumpfile -E -d 1 --message-level 7
failure_action dump_to_rootfs
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
# d. the target goes missing after the service checked it
umount /mnt/kdump
e2label /dev/disk/by-label/kdumpfs kdumpgone || exit 1
sync
crash
""")
    g.script(3, back_up(3) + """
for d in /var/crash/*/; do
    echo "$d $(ls "$d" | tr '\n' ' ')" >> "$OUT/rootfs3.txt"
    record verify3 vmcore-copy --verify "$d/vmcore"
done
# d. the target comes back, full: 8 MiB left, no blocks reserved for root
e2label /dev/disk/by-label/kdumpgone kdumpfs || exit 1
udevadm trigger --action=change --sysname-match=vdb; udevadm settle
tune2fs -m 0 /dev/disk/by-label/kdumpfs > /dev/null
mount /mnt/kdump || exit 1
avail=$(df --output=avail -B1 /mnt/kdump | tail -n 1)
fallocate -l $((avail - 8 * 1024 * 1024)) /mnt/kdump/fill || exit 1
df -B1 /mnt/kdump > "$OUT/df3.txt"
record restart3 kdumpctl restart
sync
crash
""")
    g.script(4, back_up(4) + """
ls /var/crash > "$OUT/rootfs4.txt"
poweroff
""")
    g.boot("crashkernel=256M", memory="768M", timeout=2400)

    rc, out = g.recorded("enable")
    g.expect(rc == 0, "systemctl enable --now kdump exited %s:\n%s\n%s"
             % (rc, out, g.read("kdump-journal.txt", "")))
    g.expect(g.read("loaded", "").strip() == "1", "no capture kernel loaded:\n%s"
             % g.read("kdump-journal.txt", ""))
    rc, out = g.recorded("status1")
    g.expect(rc == 0 and "Kdump is operational" in out, "status before the crash: %s" % out)
    g.expect(g.boot_end(1) == "crash", "boot 1 ended %s" % g.boot_end(1))

    # The capture initramfs: no Python, our tools and plan inside; a plain disk gets the
    # own init (no udev, no kmod and its libcrypto, no dracut init).
    image = os.path.join(g.ctl, "capture.img")
    names = list_names(image)
    for name in ("usr/sbin/vmcore-copy", "usr/sbin/vmcore-dmesg", "usr/sbin/kdump-capture",
                 "etc/kdump/plan.env", "etc/kdump/modules", "usr/sbin/kdump-insmod", "init"):
        g.expect(name in names, "%s is not in the capture initramfs" % name)
    g.expect(b"kdump-insmod" in read_member(image, "init"), "/init is not kexec-py's")
    heavy = [n for n in names if n.endswith(("bin/udevadm", "bin/kmod", "/libcrypto.so.3",
                                             "hooks/pre-mount/90-kdump-capture-hook.sh"))]
    g.expect(not heavy, "the own-init image carries %s" % heavy)
    modules = read_member(image, "etc/kdump/modules").decode().split()
    g.expect([m for m in modules if m.endswith("/ext4.ko")] and
             [m for m in modules if m.endswith("/virtio_blk.ko")],
             "/etc/kdump/modules: %s" % modules)
    g.expect(not [n for n in names if n.endswith(("bin/ssh", "bin/ip", "sbin/mount.nfs"))],
             "a local target's image carries the network tools")
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

    # The disk, read without mounting it: a's dump and d's incomplete one.
    names = sorted(g.listdir(disk, "/var/crash"))
    assert len(names) == 2 and all(DIR_NAME.match(n) for n in names), names
    name, partial = names
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

    check_failures(g, disk, partial, tmp_path)


def check_failures(g, disk, partial, tmp_path):
    """Scenario d: the missing target, then the full one."""
    g.expect(g.boot_end(2) == "crash", "boot 2 ended %s" % g.boot_end(2))
    # missing: no start without the target, status says where the dump went and why
    rc, out = g.recorded("start3")
    g.expect(rc != 0, "kdump started although its target is gone")
    rc, out = g.recorded("status3")
    g.expect("did NOT reach the configured target ext4 LABEL=kdumpfs" in out and
             "cannot mount ext4 LABEL=kdumpfs" in out, "status after the fallback:\n%s" % out)
    record = json.loads(g.read("last-dump3.json", "{}"))
    g.expect(record.get("status") == "success" and record.get("fallback") is True and
             record.get("location", "").startswith("/var/crash/127.0.0.1-"),
             "last-dump.json after the fallback: %s" % record)
    (line,) = g.read("rootfs3.txt", "").splitlines()
    assert line.split()[1:] == ["kdump-result.json", "kexec-dmesg.log", "vmcore",
                                "vmcore-dmesg.txt"], line
    rc, out = g.recorded("verify3")
    g.expect(rc == 0, "the fallback dump does not verify: %s" % out)

    # full: the partial dump is kept and named so; the fallback took the rest
    rc, out = g.recorded("restart3")
    g.expect(rc == 0, "restart with the target back: %s\n%s" % (out, g.read("df3.txt", "")))
    g.expect(g.boot_end(3) == "crash", "boot 3 ended %s" % g.boot_end(3))
    got = g.rdump(disk, "/var/crash/" + partial, str(tmp_path / "partial"))
    files = sorted(os.listdir(got))
    assert "vmcore" not in files and "vmcore-incomplete" in files, files
    assert "sysrq triggered crash" in open(os.path.join(got, "vmcore-dmesg.txt")).read()
    result = json.load(open(os.path.join(got, "kdump-result.json")))
    assert result["status"] == "incomplete" and "No space left on device" in result["message"], \
        result
    verify = subprocess.run([vmcore.executable(), "--verify",
                             os.path.join(got, "vmcore-incomplete")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert verify.returncode != 0, "a partial dump verifies as complete:\n%s" % verify.stdout
    rc, out = g.recorded("status4")
    g.expect("did NOT reach the configured target" in out and "incomplete" in out,
             "status after the full target:\n%s" % out)
    record = json.loads(g.read("last-dump4.json", "{}"))
    g.expect(record.get("fallback") is True and "incomplete" in record.get("message", ""),
             "last-dump.json after the full target: %s" % record)
    g.expect(len(g.read("rootfs4.txt", "").split()) == 2,
             "two fallback dumps on the root fs: %s" % g.read("rootfs4.txt"))
