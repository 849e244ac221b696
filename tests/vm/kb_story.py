"""The knowledge base's kdump story as a user types it, in a Debian 12 guest with systemd
as PID 1 and kexec-py installed by `make install` (the README's way on a non-RHEL host):

    crashkernel= on the kernel command line (the guest is booted with it)
    /etc/kdump.conf: path /var/crash (the shipped default collector, -l -d 31)
    systemctl enable --now kdump      (mkdumprd builds the capture initramfs, kexec loads it)
    kdumpctl status                   -> 0, "Kdump is operational"
    echo c > /proc/sysrq-trigger      -> the capture kernel saves the dump and reboots
    kdumpctl status                   -> the saved dump, in the first kernel again

run_story() drives it and returns the facts and the time of each step; the VM test
(scenario c) asserts on them and `make demo` prints them.
"""
import json
import os
import re
import time

from .guest import SystemdGuest

STEPS = """
t() { date +%s.%N > "$OUT/t.$1"; }
"""

BOOT1 = STEPS + r"""
t start
sed -i 's|^path .*|path /var/crash|' /etc/kdump.conf
grep -q '^path /var/crash' /etc/kdump.conf || echo 'path /var/crash' >> /etc/kdump.conf
cp /etc/kdump.conf "$OUT/kdump.conf"
record enable systemctl enable --now kdump
t enabled
journalctl -b -u kdump --no-pager > "$OUT/journal1.txt" 2>&1
record status1 kdumpctl status
cat /sys/kernel/kexec_crash_size > "$OUT/crash_size"
record estimate kdumpctl estimate
sync
t crash
crash
"""

BOOT2 = STEPS + r"""
t back
record start2 systemctl start kdump
t started2
record status2 kdumpctl status
ls /var/crash > "$OUT/crash-dirs.txt"
poweroff
"""


def run_story(workdir, crashkernel="256M", memory="768M"):
    """Boot the guest through the story; returns a dict of facts and step times."""
    g = SystemdGuest(os.path.join(workdir, "guest"))
    g.script(1, BOOT1)
    g.script(2, BOOT2)
    started = time.monotonic()
    g.boot("crashkernel=%s" % crashkernel, memory=memory, timeout=1800)
    wall = time.monotonic() - started

    def t(name):
        text = g.read("t." + name)
        return float(text) if text else None

    facts = {"guest": g, "wall": wall}
    facts["enable"] = g.recorded("enable")
    facts["status1"] = g.recorded("status1")
    facts["status2"] = g.recorded("status2")
    facts["estimate"] = g.recorded("estimate")
    facts["crash_size"] = int((g.read("crash_size") or "0").strip() or 0)
    facts["boot_end"] = (g.boot_end(1), g.boot_end(2))
    dirs = (g.read("crash-dirs.txt") or "").split()
    facts["dirs"] = dirs
    facts["dump_dir"] = None
    if len(dirs) == 1:
        facts["dump_dir"] = g.rdump(None, "/var/crash/" + dirs[0], os.path.join(workdir, "dump"))
        try:
            with open(os.path.join(facts["dump_dir"], "kdump-result.json")) as f:
                facts["record"] = json.load(f)
        except (OSError, ValueError):
            facts["record"] = None
    times = {}
    if t("start") and t("enabled"):
        times["systemctl enable --now kdump (mkdumprd + load)"] = t("enabled") - t("start")
    if t("crash") and t("back"):
        times["sysrq crash -> capture kernel -> dump saved -> first kernel's driver"] = \
            t("back") - t("crash")
    if (facts.get("record") or {}).get("stats"):
        times["vmcore-copy in the capture kernel"] = facts["record"]["stats"]["seconds"]
    if t("back") and t("started2"):
        times["kdump.service start after the reboot"] = t("started2") - t("back")
    if g.driver_uptime(1):
        times["first boot: kernel start to the test's script (guest uptime)"] = \
            g.driver_uptime(1)
    facts["times"] = times
    m = PREDICTED.search(facts["estimate"][1] or "")
    facts["predicted"] = int(m.group(1)) << 20 if m else None
    return facts


# kdumpctl estimate's last line: vmcore-copy --mem-usage's prediction for the collector
PREDICTED = re.compile(r"^Predicted dump size: (\d+)M \(dump level 31, kdump-compressed, "
                       r"lzo;", re.M)


DIR_NAME = re.compile(r"^127\.0\.0\.1-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$")
