"""The capture kernel's command line, by RHEL kdump-utils' rules.

Start from KDUMP_COMMANDLINE, or the running /proc/cmdline when it is empty. From that
inherited part only: drop every parameter whose key is in KDUMP_COMMANDLINE_REMOVE or in
the always-removed list, and every `key=` with an empty value. Then append, in order:
KDUMP_COMMANDLINE_APPEND as written, kdump_test_id= (for `kdumpctl test`),
disable_cpu_apicid=<the boot CPU's APIC id>, `<driver>.pretimeout=0` for each watchdog
driver in use (hpwdt also gets kdumptimeout=0), and rd.systemd.gpt_auto=no.
"""
import fnmatch
import shlex
import os

from .. import rootfs
from ..cmdline import CommandLine

ALWAYS_REMOVED = ("crashkernel", "panic_on_warn", "root", "rd.lvm.lv", "rd.luks.uuid",
                  "rd.dm.uuid", "rd.md.uuid", "fcoe", "netroot", "rd.iscsi.initiator",
                  "iscsi_initiator")


def boot_cpu_apicid(root="/"):
    """The `apicid` of processor 0 in /proc/cpuinfo, or None."""
    text = rootfs.read_text(root, "/proc/cpuinfo") or ""
    cpu = None
    for line in text.split("\n"):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            cpu = value
        elif key == "apicid" and cpu == "0":
            return value
    return None


def _module_aliases(root, kver):
    """[(pattern, module)] from lib/modules/KVER/modules.alias (modprobe -R's table)."""
    for base in ("/lib/modules", "/usr/lib/modules"):
        text = rootfs.read_text(root, "%s/%s/modules.alias" % (base, kver))
        if text is not None:
            out = []
            for line in text.split("\n"):
                parts = line.split()
                if len(parts) == 3 and parts[0] == "alias":
                    out.append((parts[1], parts[2]))
            return out
    return []


def watchdog_drivers(root="/", kver=""):
    """Modules driving the watchdogs in /sys/class/watchdog, as modprobe -R names them;
    a built-in driver (no module) is named by its driver directory."""
    base = rootfs.join(root, "/sys/class/watchdog")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    aliases = None
    found = []
    for name in names:
        dev = os.path.join(base, name, "device")
        modalias = rootfs.read_first_line("/", os.path.join(dev, "modalias"))
        if not modalias:
            continue
        if aliases is None:
            aliases = _module_aliases(root, kver)
        mods = [m for pat, m in aliases if fnmatch.fnmatchcase(modalias, pat)]
        if not mods:
            driver = os.path.join(dev, "driver", "module")
            if os.path.islink(driver):
                mods = [os.path.basename(os.readlink(driver))]
        for m in mods:
            m = m.replace("-", "_")
            if m not in found:
                found.append(m)
    return found


# the default unit of a systemd capture initramfs (packaging/dracut/99kexec-py-kdump): in
# an initrd systemd starts initrd.target, whatever default.target says, unless told
SYSTEMD_CAPTURE_TARGET = "kexec-py-kdump.target"


def dracut_args_values(cfg, options):
    """The words kdump.conf's dracut_args gives the named dracut options (each as
    "--opt VALUE", or "--opt=VALUE" for a long one; a quoted list or not), in order."""
    words = shlex.split(cfg.get("dracut_args") or "")
    values = []
    for i, w in enumerate(words):
        if w in options and i + 1 < len(words):
            values += words[i + 1].split()
        elif w.startswith("--") and w.partition("=")[0] in options and "=" in w:
            values += w.partition("=")[2].split()
    return values


def added_dracut_modules(cfg):
    """dracut modules kdump.conf's dracut_args adds (--add/-a/--add=)."""
    return dracut_args_values(cfg, ("--add", "-a"))


def systemd_initramfs(cfg):
    """Whether the capture initramfs is a systemd one (dracut_args --add systemd)."""
    return "systemd" in added_dracut_modules(cfg)


# kexec-py's additions for the capture kernel's own memory (docs/kdump.md, "Capture
# footprint"), measured in a 6.1 capture kernel: tracefs's files (an inode and a dentry
# for each file of each trace event: 9.6 MB of slab) and memcg's accounting array of
# each percpu chunk (4 MB of vmalloc, which cgroup_disable=memory leaves in place).
# Neither serves a capture. Left out when the command line sets the key already, or
# KDUMP_COMMANDLINE_REMOVE names it.
FOOTPRINT_PARAMS = (("initcall_blacklist", "tracer_init_tracefs"),
                    ("cgroup.memory", "nokmem"))


def capture_cmdline(sysconfig, root="/", kver="", test_id=None, systemd=False):
    """The command line for the capture kernel (a str); systemd: the capture initramfs
    is a systemd one, which is told to start the capture target instead of initrd.target."""
    inherited = sysconfig["KDUMP_COMMANDLINE"] or rootfs.read_text(root, "/proc/cmdline") or ""
    line = CommandLine(inherited.strip())
    remove = set(ALWAYS_REMOVED)
    user_remove = set()
    for p in CommandLine(sysconfig["KDUMP_COMMANDLINE_REMOVE"]).params:
        if p.value != "":
            remove.add(p.key)
            user_remove.add(p.key)
    kept = [p.raw for p in line.params if p.key not in remove and p.value != ""]
    words = kept + ([sysconfig["KDUMP_COMMANDLINE_APPEND"].strip()]
                    if sysconfig["KDUMP_COMMANDLINE_APPEND"].strip() else [])
    present = {p.key for p in CommandLine(" ".join(words)).params}
    words += ["%s=%s" % kv for kv in FOOTPRINT_PARAMS
              if kv[0] not in present and kv[0] not in user_remove]
    if test_id:
        words.append("kdump_test_id=%s" % test_id)
    apicid = boot_cpu_apicid(root)
    if apicid:
        words.append("disable_cpu_apicid=%s" % apicid)
    for drv in watchdog_drivers(root, kver):
        words.append("%s.pretimeout=0" % drv)
        if drv == "hpwdt":
            words.append("hpwdt.kdumptimeout=0")
    words.append("rd.systemd.gpt_auto=no")
    if systemd:
        words.append("rd.systemd.unit=" + SYSTEMD_CAPTURE_TARGET)
    return " ".join(w for w in words if w)
