"""The capture plan: kdump.conf + sysconfig + the machine, resolved once in the first kernel.

kdumpctl loads the capture kernel from it, mkdumprd builds the capture initramfs from it
and writes it into the image, and the capture-side sh script executes it without parsing
any configuration at crash time. `kdumpctl show-plan` prints it as JSON.
"""
import functools
import json
import os
from dataclasses import dataclass, field

from .. import rootfs
from . import capture, collector, config, sysconfig

PLAN_VERSION = 1
KDUMP_LIB = "/var/lib/kdump"
KERNEL_INSTALL_INITRD_SUFFIX = "kdump.img"


@dataclass
class Plan:
    root: str
    config: config.KdumpConfig
    sysconfig: sysconfig.Sysconfig
    kernel_version: str
    kernel_path: str          # as on the machine (without the root prefix)
    initrd_path: str          # the capture initramfs, as on the machine
    cmdline: str
    collector: collector.Collector
    kexec_mode: str = "file"  # from KEXEC_ARGS: file (-s), load (-c), auto (-a)
    kexec_debug: bool = False
    warnings: list = field(default_factory=list)

    @property
    def target(self):
        return self.config.target

    def host_path(self, path):
        """A machine path under the root prefix."""
        return rootfs.join(self.root, path)

    @functools.cached_property
    def hooks(self):
        """kdump_pre/post/emergency and the executables of pre.d/post.d/emergency.d,
        listed once per plan."""
        out = {}
        for name in ("pre", "post", "emergency"):
            single = self.config.get("kdump_" + name)
            listed = []
            d = rootfs.join(self.root, config.HOOK_DIRS[name])
            try:
                for entry in sorted(os.listdir(d)):
                    full = os.path.join(d, entry)
                    if os.path.isfile(full) and os.access(full, os.X_OK):
                        listed.append(os.path.join(config.HOOK_DIRS[name], entry))
            except OSError:
                pass
            out[name] = {"script": single, "dir": listed}
        return out

    def as_dict(self):
        cfg = self.config
        return {
            "version": PLAN_VERSION,
            "config": cfg.path,
            "sysconfig": self.sysconfig.path if self.sysconfig.present else None,
            "target": self.target.as_dict(),
            "path": cfg.dump_path,
            "collector": self.collector.as_dict(),
            "failure_action": cfg.failure_action,
            "final_action": cfg.final_action,
            "hooks": self.hooks,
            "sshkey": cfg.sshkey if self.target.kind == "ssh" else None,
            "extra_bins": cfg.words("extra_bins"),
            "extra_modules": cfg.words("extra_modules"),
            "dracut_args": cfg.get("dracut_args"),
            "fence_kdump_args": cfg.get("fence_kdump_args"),
            "fence_kdump_nodes": cfg.words("fence_kdump_nodes"),
            "force_rebuild": cfg.flag("force_rebuild"),
            "force_no_rebuild": cfg.flag("force_no_rebuild"),
            "auto_reset_crashkernel": cfg.auto_reset_crashkernel,
            "kernel": {"version": self.kernel_version, "path": self.kernel_path},
            "initrd": self.initrd_path,
            "cmdline": self.cmdline,
            "kexec": {"mode": self.kexec_mode, "debug": self.kexec_debug},
            "warnings": cfg.warnings + self.collector.warnings + self.warnings,
        }

    def to_json(self):
        return json.dumps(self.as_dict(), indent=2, sort_keys=False) + "\n"


def kexec_args(text):
    """(mode, debug, warnings) from KEXEC_ARGS (kexec's own options)."""
    mode, debug, warnings = "auto", False, []
    for word in text.split():
        if word in ("-s", "--kexec-file-syscall"):
            mode = "file"
        elif word in ("-c", "--kexec-syscall"):
            mode = "load"
        elif word in ("-a", "--kexec-syscall-auto"):
            mode = "auto"
        elif word in ("-d", "--debug"):
            debug = True
        else:
            warnings.append("KEXEC_ARGS: %s is not used by kexec-py's kdumpctl (it takes "
                            "-s, -c, -a and -d)" % word)
    return mode, debug, warnings


def kernel_path(sysconf, kver):
    """/boot/vmlinuz-KVER from KDUMP_BOOTDIR, KDUMP_IMG and KDUMP_IMG_EXT."""
    bootdir = sysconf["KDUMP_BOOTDIR"] or "/boot"
    img = sysconf["KDUMP_IMG"] or "vmlinuz"
    return "%s/%s-%s%s" % (bootdir.rstrip("/") or "", img, kver, sysconf["KDUMP_IMG_EXT"])


def initrd_path(root, sysconf, kver):
    """The capture initramfs: /boot/initramfs-KVERkdump.img (RHEL 5's naming,
    initrd-KVERkdump.img, when the machine names its initrds that way), or under
    /var/lib/kdump when /boot is not writable."""
    bootdir = (sysconf["KDUMP_BOOTDIR"] or "/boot").rstrip("/") or "/"
    name = "initramfs-%s%s" % (kver, KERNEL_INSTALL_INITRD_SUFFIX)
    if (rootfs.exists(root, "%s/initrd-%s.img" % (bootdir, kver))
            and not rootfs.exists(root, "%s/initramfs-%s.img" % (bootdir, kver))):
        name = "initrd-%s%s" % (kver, KERNEL_INSTALL_INITRD_SUFFIX)
    in_boot = os.path.join(bootdir, name)
    if rootfs.exists(root, in_boot) or os.access(rootfs.join(root, bootdir), os.W_OK):
        return in_boot
    return os.path.join(KDUMP_LIB, name)


def resolve(root="/", cfg=None, sysconf=None, test_id=None):
    """The Plan for this machine; raises KexecError (exit 1) when a part is invalid."""
    cfg = cfg if cfg is not None else config.load(root)
    sysconf = sysconf if sysconf is not None else sysconfig.load(root)
    kver = sysconf["KDUMP_KERNELVER"] or rootfs.running_release(root) or ""
    if not kver:
        raise config.ConfigError("cannot tell the running kernel's release under %s; set "
                                 "KDUMP_KERNELVER in %s" % (root, sysconf.path))
    stream = cfg.target.kind in ("ssh", "raw")
    written = cfg.get("core_collector")
    if written is None:
        written = config.DEFAULT_COLLECTOR.replace("makedumpfile ", "makedumpfile -F ", 1) \
            if stream else config.DEFAULT_COLLECTOR
    col = collector.parse(written, cfg.where("core_collector"), network_or_raw=stream)
    mode, debug, warnings = kexec_args(sysconf["KEXEC_ARGS"])
    return Plan(root=root, config=cfg, sysconfig=sysconf, kernel_version=kver,
                kernel_path=kernel_path(sysconf, kver),
                initrd_path=initrd_path(root, sysconf, kver),
                cmdline=capture.capture_cmdline(sysconf, root, kver, test_id,
                                                systemd=capture.systemd_initramfs(cfg)),
                collector=col, kexec_mode=mode, kexec_debug=debug, warnings=warnings)
