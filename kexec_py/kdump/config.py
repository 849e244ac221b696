"""/etc/kdump.conf with RHEL kdump-utils' semantics.

One directive per line, `key value`. Blank lines and lines whose first non-blank
character is `#` are skipped; in a value, everything from the first `#` on is cut and
trailing blanks with it, then one pair of surrounding double quotes is removed. Every
error is RHEL's text with the file and line in front (RHEL prints no location).

A target is at most one of `raw DEV`, `nfs HOST:/EXPORT`, `ssh USER@HOST`,
`<fstype> DEV` (ext2/3/4, xfs, btrfs, minix, virtiofs) or `dracut_args --mount
"DEV MNT FSTYPE OPTS"`; with none the dump goes to the root file system.
"""
import os
import shlex
from dataclasses import dataclass, field

from .. import rootfs
from ..errors import FormatError, KexecError

CONFIG_PATH = "/etc/kdump.conf"
DEFAULT_PATH = "/var/crash"
DEFAULT_SSHKEY = "/root/.ssh/kdump_id_rsa"
DEFAULT_COLLECTOR = "makedumpfile -l --message-level 7 -d 31"
HOOK_DIRS = {"pre": "/etc/kdump/pre.d", "post": "/etc/kdump/post.d",
             "emergency": "/etc/kdump/emergency.d"}

FS_TARGETS = ("ext2", "ext3", "ext4", "xfs", "btrfs", "minix", "virtiofs")
NET_TARGETS = ("nfs", "ssh")
TARGET_KEYS = FS_TARGETS + NET_TARGETS + ("raw",)
PLAIN_KEYS = ("path", "core_collector", "kdump_post", "kdump_pre", "kdump_emergency",
              "extra_bins", "extra_modules", "failure_action", "final_action",
              "force_rebuild", "force_no_rebuild", "fence_kdump_args", "fence_kdump_nodes",
              "auto_reset_crashkernel", "dracut_args", "sshkey")
DEPRECATED_KEYS = ("net", "options", "link_delay", "disk_timeout", "debug_mem_level",
                   "blacklist")
FAILURE_ACTIONS = ("reboot", "halt", "poweroff", "shell", "dump_to_rootfs")
FINAL_ACTIONS = ("reboot", "halt", "poweroff")


class ConfigError(KexecError):
    """kdump.conf (or sysconfig) is invalid: kdumpctl exits 1."""

    exit_code = 1


def _error(path, lineno, message):
    err = FormatError(path, message, line=lineno)
    err.exit_code = 1
    return err


@dataclass(frozen=True)
class Target:
    """Where the dump goes. kind: "fs", "nfs", "ssh", "raw" or "rootfs"."""

    kind: str
    fstype: str = ""        # ext4, xfs, nfs, ...; "" for ssh/raw/rootfs until resolved
    spec: str = ""          # device node, LABEL=, UUID=, host:/export, user@host
    mount_point: str = ""   # from dracut_args --mount (first-kernel mount point there)
    mount_options: str = ""
    line: int = 0           # where it was given (0: the default root file system)
    from_dracut_mount: bool = False

    @property
    def network(self):
        return self.kind in ("nfs", "ssh")

    def as_dict(self):
        return {"kind": self.kind, "fstype": self.fstype, "spec": self.spec,
                "mount_point": self.mount_point, "mount_options": self.mount_options,
                "from_dracut_mount": self.from_dracut_mount}


ROOTFS_TARGET = Target("rootfs")


@dataclass
class KdumpConfig:
    """The parsed file: values by key (as strings), their lines, the target, warnings."""

    path: str
    values: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    target: Target = ROOTFS_TARGET
    warnings: list = field(default_factory=list)

    def get(self, key, default=None):
        return self.values.get(key, default)

    def where(self, key):
        """'file:line' of a key, for messages."""
        line = self.lines.get(key)
        return "%s:%d" % (self.path, line) if line else self.path

    @property
    def dump_path(self):
        return self.values.get("path", DEFAULT_PATH)

    @property
    def core_collector(self):
        return self.values.get("core_collector", DEFAULT_COLLECTOR)

    @property
    def sshkey(self):
        return self.values.get("sshkey", DEFAULT_SSHKEY)

    @property
    def failure_action(self):
        return self.values.get("failure_action", "reboot")

    @property
    def final_action(self):
        return self.values.get("final_action", "reboot")

    def flag(self, key):
        return self.values.get(key) == "1"

    @property
    def auto_reset_crashkernel(self):
        return self.values.get("auto_reset_crashkernel", "yes") != "no"

    def words(self, key):
        """A space-separated list value (extra_bins, extra_modules, ...)."""
        return self.values.get(key, "").split()


def strip_value(value):
    """RHEL's value clean-up: cut a trailing `# comment` and blanks, then one pair of
    surrounding double quotes."""
    if "#" in value:
        value = value.split("#", 1)[0].rstrip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    return value


def read_directives(text):
    """[(lineno, key, value)] for the lines that are neither blank nor comments."""
    out = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        out.append((lineno, parts[0], strip_value(parts[1].strip()) if len(parts) > 1
                    else ""))
    return out


def parse_dracut_mount(value, path, lineno):
    """(device, mount point, fstype, options) of the one --mount in a dracut_args value."""
    try:
        words = shlex.split(value)
    except ValueError as e:
        raise _error(path, lineno, "dracut_args: %s" % e) from None
    mounts = [i for i, w in enumerate(words) if w == "--mount" or w.startswith("--mount=")]
    if len(mounts) != 1:
        raise _error(path, lineno, 'Multiple mount targets specified in one "dracut_args".')
    i = mounts[0]
    arg = words[i][len("--mount="):] if words[i].startswith("--mount=") else (
        words[i + 1] if i + 1 < len(words) else "")
    fields = arg.split()
    if len(fields) < 3:
        raise _error(path, lineno, "Invalid kdump config value for option 'dracut_args': "
                                   "--mount needs \"DEVICE MOUNTPOINT FSTYPE [OPTIONS]\"")
    return fields[0], fields[1], fields[2], fields[3] if len(fields) > 3 else "defaults"


def parse(text, path=CONFIG_PATH, root="/"):
    """Parse kdump.conf text into a KdumpConfig; raises FormatError (exit 1) at the first
    error, as RHEL stops at its first error."""
    cfg = KdumpConfig(path=path)
    target_key = None

    def set_value(key, value, lineno):
        if not value:
            raise _error(path, lineno, "Invalid kdump config value for option '%s'" % key)
        if key in cfg.values:
            if key == "_target":
                raise _error(path, lineno, "More than one dump targets specified")
            raise _error(path, lineno, "Duplicated kdump config value of option %s" % key)
        cfg.values[key] = value
        cfg.lines[key] = lineno

    for lineno, key, value in read_directives(text):
        if key in TARGET_KEYS:
            if not value:
                raise _error(path, lineno, "Invalid kdump config value for option '%s'" % key)
            set_value("_target", key, lineno)
            target_key = (key, value, lineno)
            continue
        if key == "dracut_args" and "--mount" in value:
            set_value("_target", "dracut_args", lineno)
            dev, mnt, fstype, opts = parse_dracut_mount(value, path, lineno)
            cfg.target = Target("nfs" if fstype.startswith("nfs") else "fs", fstype, dev, mnt,
                                opts, lineno, from_dracut_mount=True)
            set_value(key, value, lineno)
            continue
        if key == "default":
            cfg.warnings.append(
                "%s:%d: Option 'default' was renamed 'failure_action' and will be removed in "
                "the future. Please update %s to use option 'failure_action' instead."
                % (path, lineno, path))
            set_value("failure_action", value, lineno)
            continue
        if key == "sshkey" and value:
            full = rootfs.join(root, value)
            if not os.path.isfile(full):
                cfg.warnings.append("%s:%d: '%s' doesn't exist, using default value '%s'"
                                    % (path, lineno, value, DEFAULT_SSHKEY))
                value = DEFAULT_SSHKEY
            set_value(key, value, lineno)
            continue
        if key in PLAIN_KEYS:
            set_value(key, value, lineno)
            continue
        if key in DEPRECATED_KEYS:
            raise _error(path, lineno, "Deprecated kdump config option: %s. Refer to "
                                       "kdump.conf manpage for alternatives." % key)
        raise _error(path, lineno, "Invalid kdump config option %s" % key)

    if target_key:
        key, value, lineno = target_key
        kind = "fs" if key in FS_TARGETS else key
        cfg.target = Target(kind, key if kind in ("fs", "nfs") else "", value, line=lineno)
    _check_values(cfg, root)
    return cfg


def _check_values(cfg, root):
    path = cfg.path
    fa = cfg.values.get("failure_action")
    if fa is not None and fa not in FAILURE_ACTIONS:
        raise _error(path, cfg.lines["failure_action"],
                     "Usage kdump.conf: failure_action {%s}" % "|".join(FAILURE_ACTIONS))
    fin = cfg.values.get("final_action")
    if fin is not None and fin not in FINAL_ACTIONS:
        raise _error(path, cfg.lines["final_action"],
                     "Usage kdump.conf: final_action {%s}" % "|".join(FINAL_ACTIONS))
    for key in ("force_rebuild", "force_no_rebuild"):
        value = cfg.values.get(key)
        if value is not None and value not in ("0", "1"):
            raise _error(path, cfg.lines[key], "Error: %s value is invalid" % key)
    if cfg.flag("force_rebuild") and cfg.flag("force_no_rebuild"):
        raise _error(path, cfg.lines["force_no_rebuild"],
                     "Error: force_rebuild and force_no_rebuild are enabled simultaneously "
                     "in kdump.conf")
    auto = cfg.values.get("auto_reset_crashkernel")
    if auto is not None and auto not in ("yes", "no"):
        raise _error(path, cfg.lines["auto_reset_crashkernel"],
                     "Invalid kdump config value for option 'auto_reset_crashkernel': "
                     "use yes or no")
    t = cfg.target
    if t.kind == "ssh" and ("@" not in t.spec or t.spec.startswith("@")
                            or t.spec.endswith("@")):
        raise _error(path, t.line, "Please verify that %s contains 'ssh <user>@<host>' and "
                                   "that it is properly formatted." % path)
    if t.kind == "nfs" and not t.from_dracut_mount and ":" not in t.spec:
        raise _error(path, t.line, "Invalid kdump config value for option 'nfs': use "
                                   "HOST:/EXPORT")
    if t.kind == "raw" and not t.spec.startswith(("/", "LABEL=", "UUID=", "PARTUUID=",
                                                   "PARTLABEL=")):
        raise _error(path, t.line, "raw partition %s not found" % t.spec)
    if not cfg.dump_path.startswith("/"):
        raise _error(path, cfg.lines["path"], "Invalid kdump config value for option "
                                              "'path': it must be an absolute path")
    nodes = cfg.values.get("fence_kdump_nodes")
    if nodes:
        hostname = (rootfs.read_first_line(root, "/proc/sys/kernel/hostname") or
                    (os.uname().nodename if (root or "/") == "/" else ""))
        for node in nodes.split():
            if node == hostname or node in ("localhost", "127.0.0.1", "::1"):
                raise _error(path, cfg.lines["fence_kdump_nodes"],
                             "Option fence_kdump_nodes cannot contain %s" % node)


def load(root="/", path=CONFIG_PATH):
    """Read and parse kdump.conf under root; a missing or unreadable file is an error."""
    full = rootfs.join(root, path)
    try:
        with open(full, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError("Error: %s not found." % full) from None
    except OSError as e:
        raise ConfigError("cannot read %s: %s" % (full, e.strerror)) from None
    return parse(text, full, root)
