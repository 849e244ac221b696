"""Dump target pre-flight in the first kernel: is the place kdump.conf names usable?

Local file systems: the device (node, LABEL=, UUID=, PARTUUID=, PARTLABEL=) is mounted or
listed in /etc/fstab, `<mount point><path>` exists and is writable, and a warning when it
has less free space than the machine has RAM. nfs: the export is HOST:/PATH. ssh: the
host takes our key and `mkdir -p <path>` (retried while the network comes up). raw: the
device exists and can be read. Where a local or mounted nfs target has less free space
than the machine has RAM, the dump's size is predicted (dumpsize.py) and the warning
compares with that instead.
"""
import os
import subprocess
import time
from dataclasses import dataclass, field

from .. import rootfs
from ..errors import KexecError
from . import dumpsize

BY = {"LABEL": "by-label", "UUID": "by-uuid", "PARTUUID": "by-partuuid",
      "PARTLABEL": "by-partlabel"}
SSH_RETRY_SECONDS = 180


class TargetError(KexecError):
    exit_code = 1


@dataclass
class Check:
    mount_point: str = ""          # where the target is mounted in the first kernel
    device: str = ""               # the resolved device node, when known
    save_dir: str = ""             # <mount point><path> on the machine
    warnings: list = field(default_factory=list)


def resolve_device(root, spec):
    """A device spec (node, LABEL=...) -> the device node path (under root), or None."""
    key, eq, value = spec.partition("=")
    if eq and key in BY:
        link = rootfs.join(root, "/dev/disk/%s/%s" % (BY[key], value))
    elif spec.startswith("/"):
        link = rootfs.join(root, spec)
    else:
        return None
    if not os.path.exists(link):
        return None
    return os.path.realpath(link)


def mounts(root):
    """[(device, mount point, fstype, options)] from /proc/mounts (octal escapes decoded)."""
    text = rootfs.read_text(root, "/proc/mounts") or ""
    out = []
    for line in text.split("\n"):
        f = line.split()
        if len(f) >= 3:
            out.append(tuple(_unescape(x) for x in f[:3]) + (f[3] if len(f) > 3 else "",))
    return out


def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def fstab_entries(root):
    """[(device, mount point, fstype, options)] from /etc/fstab."""
    text = rootfs.read_text(root, "/etc/fstab") or ""
    out = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split()
        if len(f) >= 3:
            out.append((_unescape(f[0]), _unescape(f[1]), f[2],
                        f[3] if len(f) > 3 else "defaults"))
    return out


def same_device(root, a, b):
    """Whether two device specs (node, LABEL=, UUID=...) name the same device."""
    if a == b:
        return True
    da, db = resolve_device(root, a), resolve_device(root, b)
    return da is not None and da == db


def find_mount(root, spec):
    """(mount point, source) for a device spec: mounted first, then /etc/fstab."""
    for dev, mnt, _, _ in mounts(root):
        if same_device(root, dev, spec):
            return mnt, "mounted"
    for dev, mnt, _, _ in fstab_entries(root):
        if same_device(root, dev, spec):
            return mnt, "fstab"
    return None, None


def mem_total(root):
    text = rootfs.read_text(root, "/proc/meminfo") or ""
    for line in text.split("\n"):
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return 0


def _check_space(root, save, free, col, check):
    """Warn when the dump may not fit: free space against the predicted dump size, which
    is only worth computing when free space is short of RAM (a dump never outgrows it)."""
    ram = mem_total(root)
    if not ram or free >= ram:
        return
    pred = dumpsize.predict(root, col) if col is not None else None
    if pred is not None and pred.bytes is not None:
        if free < pred.bytes:
            check.warnings.append(
                "Dump path %s has %d MiB free, less than the %d MiB predicted for the dump "
                "(%s): it may not fit" % (save, free >> 20, -(-pred.bytes >> 20), pred.what))
        return
    check.warnings.append("Dump path %s has %d MiB free, less than the %d MiB of RAM: a "
                          "dump may not fit%s" % (save, free >> 20, ram >> 20,
                                                  " (its size is not predicted: %s)" % pred.why
                                                  if pred else ""))


def _check_dir(root, mnt, path, check, col=None):
    save = os.path.normpath(os.path.join(mnt, path.lstrip("/")))
    check.save_dir = save
    full = rootfs.join(root, save)
    if not os.path.isdir(full):
        raise TargetError("Dump path %s does not exist." % save)
    if not os.access(full, os.W_OK):
        raise TargetError("Dump path %s is not writable." % save)
    try:
        st = os.statvfs(full)
    except OSError:
        return
    _check_space(root, save, st.f_bavail * st.f_frsize, col, check)


def check_local(root, target, path, col=None):
    check = Check()
    if target.kind == "rootfs":
        check.mount_point = "/"
        _check_dir(root, "/", path, check, col)
        return check
    if target.from_dracut_mount:
        check.mount_point = target.mount_point
        return check   # mounted by dracut in the capture kernel only
    dev = resolve_device(root, target.spec)
    check.device = dev or ""
    if dev is None and "=" in target.spec:
        # named in fstab or not, a label or UUID no device carries cannot be dumped to
        raise TargetError("Dump target %s is not found: no device has that %s"
                          % (target.spec, target.spec.split("=", 1)[0]))
    mnt, how = find_mount(root, target.spec)
    if mnt is None:
        raise TargetError("Dump target %s is neither mounted nor in /etc/fstab: mount it, "
                          "or add it to /etc/fstab" % target.spec)
    check.mount_point = mnt
    if how == "fstab":
        check.warnings.append("Dump target %s is not mounted now; %s%s is checked when the "
                              "capture initramfs is built" % (target.spec, mnt, path))
        return check
    _check_dir(root, mnt, path, check, col)
    return check


def check_nfs(root, target, path, col=None):
    check = Check()
    host, sep, export = target.spec.partition(":")
    if not target.from_dracut_mount and (not sep or not host or not export.startswith("/")):
        raise TargetError("Invalid nfs target %s: use HOST:/EXPORT" % target.spec)
    for dev, mnt, fstype, _ in mounts(root):
        if dev == target.spec and fstype.startswith("nfs"):
            check.mount_point = mnt
            _check_dir(root, mnt, path, check, col)
            return check
    check.warnings.append("nfs export %s is not mounted here; it is mounted and checked in "
                          "the capture kernel only" % target.spec)
    return check


def ssh_argv(target, sshkey, root="/"):
    return ["ssh", "-q", "-i", rootfs.join(root, sshkey), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", target.spec]


def check_ssh(root, target, path, sshkey, retry_seconds=SSH_RETRY_SECONDS, run=None):
    """`mkdir -p PATH` on the ssh target with our key, retried while the network is not
    up (ssh exit 255 without an authentication error)."""
    run = run or subprocess.run
    check = Check(save_dir="%s:%s" % (target.spec, path))
    if not os.path.isfile(rootfs.join(root, sshkey)):
        raise TargetError("ssh key %s does not exist: run \"kdumpctl propagate\"" % sshkey)
    deadline = time.monotonic() + retry_seconds
    while True:
        proc = run(ssh_argv(target, sshkey, root) + ["mkdir", "-p", path],
                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   universal_newlines=True)
        if proc.returncode == 0:
            return check
        err = (proc.stderr or "").strip()
        if any(s in err for s in ("Permission denied", "No such file or directory",
                                  "Host key verification failed")):
            raise TargetError("Could not create %s:%s, you probably need to run \"kdumpctl "
                              "propagate\"" % (target.spec, path))
        if proc.returncode != 255:
            raise TargetError("Could not create %s:%s, you should check the privilege on "
                              "server side" % (target.spec, path))
        if time.monotonic() >= deadline:
            raise TargetError("Could not create %s:%s, ipaddr is not ready yet. You should "
                              "check network connection" % (target.spec, path))
        time.sleep(min(1.0, max(0.1, deadline - time.monotonic())))


def check_raw(root, target):
    dev = resolve_device(root, target.spec)
    if dev is None:
        raise TargetError("raw partition %s not found" % target.spec)
    try:
        with open(dev, "rb") as f:
            f.read(512)
    except OSError as e:
        raise TargetError("raw partition %s cannot be read: %s" % (target.spec, e.strerror))
    return Check(device=dev)


def preflight(plan, ssh_retry_seconds=SSH_RETRY_SECONDS, run=None):
    """Check the plan's target; returns a Check, raises TargetError."""
    t, root, path = plan.target, plan.root, plan.config.dump_path
    if t.kind in ("rootfs", "fs"):
        return check_local(root, t, path, plan.collector)
    if t.kind == "nfs":
        return check_nfs(root, t, path, plan.collector)
    if t.kind == "ssh":
        return check_ssh(root, t, path, plan.config.sshkey, ssh_retry_seconds, run)
    if t.kind == "raw":
        return check_raw(root, t)
    raise TargetError("unknown target kind %s" % t.kind)
