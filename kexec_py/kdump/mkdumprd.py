"""mkdumprd: the capture initramfs, built by the system's dracut with kexec-py's module.

The image holds the C tools (vmcore-copy, vmcore-dmesg), a POSIX sh capture script
(packaging/dracut/99kexec-py-kdump) and the plan rendered as shell assignments
(/etc/kdump/plan.env): nothing in it parses kdump.conf at crash time, and it carries no
interpreter but the shell. dracut runs host-only and strict, with the drivers of the dump
target's device, and builds one of three images (init_mode):

- own (the default): dracut installs our module alone (--modules); its /init mounts
  devtmpfs, loads the modules listed in /etc/kdump/modules with kdump-insmod, in the
  order resolved here from modules.dep, and runs the capture script. No udev, no kmod,
  no dracut init: what a plain disk, nfs, ssh or raw target needs and no more, since
  every byte of the image is unpacked into the crash kernel's reserve.
- dracut: dracut's shell init, when the target or the root file system sits on a
  stacked device (LVM, MD, dm-crypt: dracut's modules assemble it) or kdump.conf's
  dracut_args adds dracut modules; our cmdline hook tells it there is no root file
  system to wait for, and the capture runs as a pre-mount hook.
- systemd: a systemd initramfs, when dracut_args adds systemd.

Next to the image a small JSON manifest records what it was built for (kdumpctl's
rebuild rules read it).
"""
import json
import os
import shlex
import shutil
import subprocess
import tempfile

from .. import rootfs
from ..errors import KexecError
from . import capture, rebuild, target as targetmod

MODULE = "kexec-py-kdump"
MODULE_DIR = "/usr/lib/dracut/modules.d/99kexec-py-kdump"
SOURCE_MODULE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "packaging", "dracut", "99kexec-py-kdump")
# dracut modules a capture image never needs (RHEL leaves the same kind out)
# systemd's modules are left out unless dracut_args adds systemd (SYSTEMD_MODULES)
OMIT_MODULES = ("systemd", "systemd-initrd", "systemd-networkd", "systemd-udevd",
                "dracut-systemd", "plymouth", "resume", "hwdb", "earlykdump", "rngd",
                "squash", "i18n", "lvmmerge", "crypt-gpg", "usrmount", "shutdown",
                "modsign", "rescue", "terminfo", "kernel-modules-extra",
                # every byte is unpacked into the crash kernel's reserve: the generic
                # driver sets (kernel-modules takes all of crypto, hid, sr_mod, ata_piix;
                # qemu every virtio and ata driver) give way to the drivers this plan's
                # devices use (build: target, root file system, watchdogs, extra_modules)
                "kernel-modules", "qemu", "qemu-net", "overlay-root", "overlayfs", "virtfs",
                "virtiofs", "pollcdrom", "memstrack")
# big GPU drivers (tens of MB of firmware and code) that a dump never uses
OMIT_DRIVERS = ("amdgpu", "radeon", "nouveau", "i915", "xe", "mgag200", "ast", "qxl",
                "bochs", "virtio_gpu", "drm", "ttm")
FS_MODULES = {"nfs": ("nfs", "nfsv3"), "nfs4": ("nfs", "nfsv4"),
              # metadata checksums go through the crypto API (a softdep, not a dependency)
              "ext4": ("ext4", "crc32c_generic"), "xfs": ("xfs", "crc32c_generic"),
              "btrfs": ("btrfs", "crc32c_generic")}
C_TOOLS = ("vmcore-copy", "vmcore-dmesg")
# the own-init image's module loader; it stays in the package (not on PATH)
INSMOD_TOOL = "kdump-insmod"
COMPRESSED_SUFFIXES = (".xz", ".zst", ".gz")
PYTHON_MARKERS = ("python3", "site-packages", "dist-packages", "libpython")


class MkdumprdError(KexecError):
    exit_code = 1


# What the capture kernel mounts

def root_mount(root="/"):
    """(spec, fstype, options) of the first kernel's root file system; the spec as
    UUID= when udev names the device that way (device names can change after a kexec)."""
    for dev, mnt, fstype, _ in targetmod.mounts(root):
        if mnt == "/" and dev not in ("rootfs", "none"):
            return _stable_spec(root, dev), fstype, "defaults"
    return None, None, None


def _stable_spec(root, dev):
    real = targetmod.resolve_device(root, dev)
    if real is None:
        return dev
    by_uuid = rootfs.join(root, "/dev/disk/by-uuid")
    try:
        for name in sorted(os.listdir(by_uuid)):
            if os.path.realpath(os.path.join(by_uuid, name)) == real:
                return "UUID=" + name
    except OSError:
        pass
    return dev


def capture_mount(plan):
    """{spec, fstype, options, host} the capture kernel mounts for the plan's target."""
    t = plan.target
    if t.kind == "rootfs":
        spec, fstype, options = root_mount(plan.root)
        if spec is None:
            raise MkdumprdError("cannot tell the root file system from /proc/mounts: set a "
                                "dump target in %s" % plan.config.path)
        return {"spec": spec, "fstype": fstype, "options": options, "host": ""}
    if t.kind == "nfs":
        fstype = t.fstype if t.fstype.startswith("nfs") else "nfs"
        options = t.mount_options
        # as mounted here (the port, version and security the first kernel used), else
        # as /etc/fstab says
        sources = () if t.from_dracut_mount else (targetmod.mounts, targetmod.fstab_entries)
        for entries in sources:
            found = [(f, o) for dev, _, f, o in entries(plan.root)
                     if dev == t.spec and f.startswith("nfs")]
            if found:
                fstype, options = found[0]
                break
        return {"spec": t.spec, "fstype": fstype, "options": capture_options(options, nfs=True),
                "host": t.spec.split(":", 1)[0]}
    if t.kind == "ssh":
        return {"spec": t.spec, "fstype": "", "options": "", "host": t.spec.split("@", 1)[1]}
    options = t.mount_options or "defaults"
    if t.kind == "fs" and not t.from_dracut_mount:
        for dev, _, _, opts in targetmod.fstab_entries(plan.root):
            if targetmod.same_device(plan.root, dev, t.spec):
                options = opts
    return {"spec": t.spec, "fstype": t.fstype, "options": options, "host": ""}


# first-kernel mount options that must not reach the capture kernel's mount: the server
# and client addresses the first kernel resolved (the capture kernel resolves its own)
NFS_RESOLVED = ("addr", "mountaddr", "clientaddr", "proto", "mountproto")
NEVER_AT_CRASH = ("noauto", "nofail", "nobootwait")


def capture_options(options, nfs=False):
    """Mount options for the capture kernel: read-write, mounted whatever fstab said about
    boot-time mounting, and for nfs without the first kernel's resolved addresses."""
    out = []
    for opt in (options or "").split(","):
        name = opt.split("=", 1)[0]
        if not opt or name in NEVER_AT_CRASH or (nfs and name in NFS_RESOLVED):
            continue
        out.append("rw" if opt == "ro" else opt)
    return ",".join(out) or "defaults"


def device_modules(root, spec):
    """Kernel modules on the sysfs path of a block device (its driver and its bus's),
    as named by each device's driver/module link."""
    dev = targetmod.resolve_device(root, spec) if spec else None
    if dev is None or not dev.startswith(rootfs.join(root, "/dev/")):
        return []
    return sysfs_modules(root, "/sys/class/block/%s" % os.path.basename(dev))


def sysfs_modules(root, sysfs_path):
    """Modules of the drivers on a device's sysfs path, from the device up to its bus."""
    node = rootfs.join(root, sysfs_path)
    if not os.path.exists(node):
        return []
    path = os.path.realpath(node)
    sys_root = os.path.realpath(rootfs.join(root, "/sys/devices"))
    mods = []
    while path.startswith(sys_root) and len(path) > len(sys_root):
        link = os.path.join(path, "driver", "module")
        if os.path.islink(link):
            m = os.path.basename(os.readlink(link))
            if m not in mods:
                mods.append(m)
        path = os.path.dirname(path)
    return mods


def rootfs_drivers(root):
    """Modules for the root file system, which every capture mounts: the result record
    goes to its /var/lib/kdump, and failure_action dump_to_rootfs saves there."""
    spec, fstype, _ = root_mount(root)
    if spec is None:
        return []
    mods = device_modules(root, spec) + list(FS_MODULES.get(fstype, (fstype,) if fstype
                                                          else ()))
    return [m for i, m in enumerate(mods) if m and m not in mods[:i]]


def target_drivers(plan, mount):
    """Modules the target needs: its device's drivers and its file system."""
    mods = []
    if plan.target.kind in ("fs", "rootfs", "raw"):
        mods += device_modules(plan.root, mount["spec"] or plan.target.spec)
    fstype = mount.get("fstype") or ""
    mods += list(FS_MODULES.get(fstype, (fstype,) if fstype else ()))
    return [m for i, m in enumerate(mods) if m and m not in mods[:i]]


# The network to an ssh or nfs target, as the first kernel reaches it

def _ip(argv, run):
    try:
        proc = run(["ip"] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   universal_newlines=True)
    except OSError:
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def network_plan(plan, mount, run=None):
    """{target_ip, mac, address (a.b.c.d/prefix), gateway, iface, modules} for the route
    the first kernel takes to the target; {} for local targets. The capture script
    configures that interface itself (no DHCP client, no network manager in the image)."""
    if plan.target.kind not in ("ssh", "nfs"):
        return {}
    import ipaddress
    import socket
    run = run or subprocess.run
    host = mount["host"].strip("[]")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            ip = socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
        except (OSError, IndexError):
            raise MkdumprdError("cannot resolve %s, the %s target's host" % (host,
                                                                            plan.target.kind))
    words = _ip(["-o", "route", "get", ip], run).split()
    field = lambda k: words[words.index(k) + 1] if k in words[:-1] else ""  # noqa: E731
    iface, src, gateway = field("dev"), field("src"), field("via")
    if not iface or iface == "lo":
        raise MkdumprdError("no route to %s (%s) from this machine: the capture kernel "
                            "could not reach it either" % (host, ip))
    address = ""
    for line in _ip(["-o", "-4", "addr", "show", "dev", iface], run).split("\n"):
        parts = line.split()
        if "inet" in parts and parts[parts.index("inet") + 1].split("/")[0] == src:
            address = parts[parts.index("inet") + 1]
    mac = rootfs.read_first_line(plan.root, "/sys/class/net/%s/address" % iface) or ""
    return {"target_ip": ip, "iface": iface, "mac": mac, "address": address or src + "/32",
            "gateway": gateway,
            "modules": sysfs_modules(plan.root, "/sys/class/net/%s" % iface)}


# The plan as the capture script reads it

def plan_env(plan, mount, rootmount, net=None):
    """plan.env: shell assignments, one per line, every value quoted."""
    cfg, col, hooks = plan.config, plan.collector, plan.hooks
    net = net or {}
    opts = [o for o in col.argv if o != "-F"] if col.program == "vmcore-copy" else col.argv
    if plan.target.kind in ("ssh", "raw") and col.program == "vmcore-copy":
        opts = ["-F"] + opts
    # as kdump.conf says it (nfs, not the nfs4 the mount reports)
    words = plan.target.kind if plan.target.kind == "rootfs" else " ".join(
        x for x in ((plan.target.fstype or mount["fstype"] or plan.target.kind),
                    mount["spec"]) if x)
    values = [
        ("KDUMP_TARGET_KIND", plan.target.kind),
        ("KDUMP_TARGET_SPEC", mount["spec"]),
        ("KDUMP_TARGET_WORDS", words),
        ("KDUMP_TARGET_HOST", mount["host"]),
        ("KDUMP_FSTYPE", mount["fstype"]),
        ("KDUMP_MOUNT_OPTIONS", mount["options"]),
        ("KDUMP_PATH", cfg.dump_path),
        ("KDUMP_COLLECTOR", col.program),
        ("KDUMP_COLLECTOR_OPTS", " ".join(shlex.quote(o) for o in opts)),
        ("KDUMP_DUMP_LEVEL", "" if col.dump_level is None else str(col.dump_level)),
        ("KDUMP_SSHKEY", cfg.sshkey if plan.target.kind == "ssh" else ""),
        ("KDUMP_FAILURE_ACTION", cfg.failure_action),
        ("KDUMP_FINAL_ACTION", cfg.final_action),
        ("KDUMP_PRE", hooks["pre"]["script"] or ""),
        ("KDUMP_POST", hooks["post"]["script"] or ""),
        ("KDUMP_EMERGENCY", hooks["emergency"]["script"] or ""),
        ("KDUMP_PRE_D", " ".join(hooks["pre"]["dir"])),
        ("KDUMP_POST_D", " ".join(hooks["post"]["dir"])),
        ("KDUMP_EMERGENCY_D", " ".join(hooks["emergency"]["dir"])),
        ("KDUMP_ROOT_SPEC", rootmount[0] or ""),
        ("KDUMP_ROOT_FSTYPE", rootmount[1] or ""),
        ("KDUMP_ROOT_OPTIONS", rootmount[2] or ""),
        ("KDUMP_KERNEL_VERSION", plan.kernel_version),
        ("KDUMP_TARGET_IP", net.get("target_ip", "")),
        ("KDUMP_NET_MAC", net.get("mac", "")),
        ("KDUMP_NET_ADDR", net.get("address", "")),
        ("KDUMP_NET_GW", net.get("gateway", "")),
    ]
    lines = ["# kexec-py kdump plan, resolved from %s by mkdumprd" % cfg.path]
    lines += ["%s=%s" % (k, shlex.quote(v)) for k, v in values]
    return "\n".join(lines) + "\n"


# dracut

# The own init: which image, and the modules it loads

def stacked(root, spec):
    """Whether a block device is assembled from others (LVM, MD, dm-crypt, multipath):
    a dm-/md name, or a device (or its parent disk) with slaves in sysfs."""
    dev = targetmod.resolve_device(root, spec) if spec else None
    if dev is None or not dev.startswith(rootfs.join(root, "/dev/")):
        return False
    name = os.path.basename(dev)
    if name.startswith(("dm-", "md")):
        return True
    node = rootfs.join(root, "/sys/class/block/%s" % name)
    for path in (node, os.path.dirname(os.path.realpath(node))):
        try:
            if os.listdir(os.path.join(path, "slaves")):
                return True
        except OSError:
            pass
    return False


def init_mode(plan, mount=None):
    """"systemd" (dracut_args adds systemd), "dracut" (dracut_args adds other dracut
    modules, or the target or root file system is on a stacked device that dracut's
    modules assemble) or "own" (kdump-init.sh, no udev or kmod)."""
    if systemd_initramfs(plan):
        return "systemd"
    if capture.added_dracut_modules(plan.config):
        return "dracut"
    mount = mount or capture_mount(plan)
    specs = [root_mount(plan.root)[0]]
    if plan.target.kind in ("fs", "raw"):
        specs.append(mount["spec"] or plan.target.spec)
    if any(stacked(plan.root, s) for s in specs if s):
        return "dracut"
    return "own"


DRIVER_OPTIONS = ("--add-drivers", "--force-drivers", "--drivers", "-d")


def dracut_args_drivers(cfg):
    """Kernel modules kdump.conf's dracut_args asks dracut to add (--add-drivers,
    --force-drivers, --drivers/-d): the own init loads them like the plan's."""
    return capture.dracut_args_values(cfg, DRIVER_OPTIONS)


def _strip_compression(rel):
    for suffix in COMPRESSED_SUFFIXES:
        if rel.endswith(".ko" + suffix):
            return rel[:-len(suffix)]
    return rel


def module_order(root, kver, names):
    """(paths relative to /lib/modules/KVER, dependencies before the modules that use
    them, compression suffix dropped; names found neither in modules.dep nor built in)."""
    tree = rebuild.module_tree(root, kver)
    if tree is None:
        raise MkdumprdError("no modules.dep for kernel %s: run depmod %s" % (kver, kver))
    _, index, deps, builtin = tree
    order, missing, seen = [], [], set()

    def visit(name, depth=0):
        if name in seen or depth > 64:
            return
        seen.add(name)
        for dep in deps.get(name, ()):
            visit(dep, depth + 1)
        order.append(_strip_compression(index[name]))

    for n in names:
        key = n.replace("-", "_")
        if key in index:
            visit(key)
        elif key not in builtin and n not in missing:
            missing.append(n)
    return order, missing


MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
                 "/usr/lib/modprobe.d", "/lib/modprobe.d")


def modprobe_options(root):
    """{module: "param=value ..."} from the modprobe.d "options" lines (a file name in an
    earlier directory hides the same name in a later one, as kmod reads them)."""
    files = {}
    for d in MODPROBE_DIRS:
        try:
            names = os.listdir(rootfs.join(root, d))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf") and name not in files:
                files[name] = "%s/%s" % (d, name)
    options = {}
    for name in sorted(files):
        text = (rootfs.read_text(root, files[name]) or "").replace("\\\n", " ")
        for line in text.split("\n"):
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "options":
                key = words[1].replace("-", "_")
                options[key] = (options.get(key, "") + " " + " ".join(words[2:])).strip()
    return options


def modules_file(root, kver, names):
    """/etc/kdump/modules of an own-init image: "PATH [PARAMS]" per line, in load order."""
    order, missing = module_order(root, kver, names)
    options = modprobe_options(root)
    lines = []
    for rel in order:
        name = rebuild.module_stem(rel)
        lines.append(("%s %s" % (rel, options[name])) if name in options else rel)
    return "".join(line + "\n" for line in lines), missing


def c_tools(root="/"):
    """The C executables to put in the image: the installed ones under root, else the
    package's own build."""
    from ..vmcore.tool import executable
    found = []
    for name in C_TOOLS:
        for cand in (rootfs.join(root, "/usr/sbin/" + name), executable(name)):
            if os.path.isfile(cand) and os.access(cand, os.X_OK) and _is_elf(cand):
                found.append(cand)
                break
        else:
            raise MkdumprdError("%s (the C executable) is not installed: run make install "
                                "or rebuild the package" % name)
    return found


def insmod_tool():
    """The package's kdump-insmod (the own-init image's module loader)."""
    from ..vmcore.tool import executable
    path = executable(INSMOD_TOOL)
    if not (os.access(path, os.X_OK) and _is_elf(path)):
        raise MkdumprdError("%s (the C executable) is missing: rebuild the package"
                            % INSMOD_TOOL)
    return path


def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def module_dir(root="/"):
    """The dracut module directory, installed or (for a source checkout) the package's."""
    installed = rootfs.join(root, MODULE_DIR)
    if os.path.isdir(installed):
        return installed
    if os.path.isdir(SOURCE_MODULE_DIR):
        return SOURCE_MODULE_DIR
    raise MkdumprdError("kexec-py's dracut module is not installed (%s): run make install"
                        % MODULE_DIR)


def overlay_basedir(root, moddir, tmp):
    """A dracut base directory that is the system's plus our module, for a source
    checkout whose module is not installed (dracut reads $dracutbasedir/modules.d)."""
    system = rootfs.join(root, "/usr/lib/dracut")
    if not os.path.isdir(os.path.join(system, "modules.d")):
        raise MkdumprdError("dracut's modules are not in %s" % system)
    base = os.path.join(tmp, "dracut")
    os.makedirs(os.path.join(base, "modules.d"))
    for name in os.listdir(system):
        if name != "modules.d":
            os.symlink(os.path.join(system, name), os.path.join(base, name))
    for name in os.listdir(os.path.join(system, "modules.d")):
        os.symlink(os.path.join(system, "modules.d", name),
                   os.path.join(base, "modules.d", name))
    os.symlink(moddir, os.path.join(base, "modules.d", os.path.basename(MODULE_DIR)))
    return base


def dracut_supports(dracut, option):
    try:
        proc = subprocess.run([dracut, "--help"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option in proc.stdout


# The image stays in memory until the kernel has unpacked it, next to the decompressor's
# window: zstd -15 (dracut's default) has a 4 MiB window, which the kernel allocates
# whole; a 128 KiB one costs 4% more file (3.55 MB against 3.42 MB for the test guest's
# own-init image at -19) and 3.9 MB less memory at the peak
COMPRESS = "zstd -19 -q --zstd=wlog=17"

SYSTEMD_MODULES = ("systemd", "systemd-initrd", "systemd-udevd", "dracut-systemd")


def systemd_initramfs(plan):
    """Whether the capture initramfs is a systemd one (dracut_args --add systemd)."""
    return capture.systemd_initramfs(plan.config)


def omitted_modules(plan, shell=None):
    keep = set(capture.added_dracut_modules(plan.config))
    if systemd_initramfs(plan):
        keep.update(SYSTEMD_MODULES)
    if plan.target.fstype == "virtiofs":
        keep.add("virtiofs")
    out = [m for m in OMIT_MODULES if m not in keep]
    if shell == "dash" and "bash" not in keep:
        out.append("bash")
    return out


def small_shell(plan, root="/"):
    """dash for dracut's shell init when the system has it and dracut's module for it
    (Debian): bash and its libtinfo are 1.4 MB unpacked in the reserve. RHEL has no
    dash; systemd images keep dracut's choice."""
    if systemd_initramfs(plan) or "bash" in capture.added_dracut_modules(plan.config):
        return None
    have = any(os.path.exists(rootfs.join(root, p)) for p in ("/bin/dash", "/usr/bin/dash"))
    module = os.path.isdir(rootfs.join(root, "/usr/lib/dracut/modules.d/00dash"))
    return "dash" if have and module else None


def dracut_argv(dracut, plan, image, drivers, root="/", aggressive=True, mode="dracut"):
    """dracut's command line. mode "own": our module alone (--modules) and no
    --add-drivers or --filesystems (the module installs the drivers itself and unpacks
    them; dracut_args' driver options become part of that list)."""
    shell = small_shell(plan, root or "/")
    argv = [dracut, "--force", "--quiet", "--hostonly", "--hostonly-mode", "strict",
            "--no-hostonly-cmdline", "--no-hostonly-default-device",
            "--no-hostonly-i18n", "--compress", COMPRESS]
    if mode == "own":
        argv += ["--modules", " ".join([MODULE, shell or "bash"]), "--no-early-microcode"]
    else:
        argv += ["--add", " ".join([MODULE] + ([shell] if shell else [])),
                 "--omit", " ".join(omitted_modules(plan, shell))]
    argv += ["--omit-drivers", " ".join(OMIT_DRIVERS)]
    if aggressive:
        argv.append("--aggressive-strip")
    if drivers and mode != "own":
        argv += ["--add-drivers", " ".join(drivers)]
    fstype = plan.target.fstype
    if fstype and fstype not in ("nfs", "nfs4", "virtiofs") and mode != "own":
        argv += ["--filesystems", fstype]
    if (root or "/") != "/":
        argv += ["--sysroot", root]
    user = plan.config.get("dracut_args")
    skip = {"--mount": 2}     # kdump's target, mounted by the script
    if mode == "own":         # drivers: loaded by our init, installed by our module
        skip.update(dict.fromkeys(DRIVER_OPTIONS, 2))
    if user:
        words = shlex.split(user)
        i = 0
        while i < len(words):
            key = words[i].split("=", 1)[0]
            if words[i] in skip:
                i += skip[words[i]]
                continue
            if "=" in words[i] and key in skip:
                i += 1
                continue
            argv.append(words[i])
            i += 1
    argv += ["--kver", plan.kernel_version, image]
    return argv


def extra_files(plan):
    """Hooks, extra_bins and the ssh key, as paths on the machine."""
    files = []
    hooks = plan.hooks
    for name in ("pre", "post", "emergency"):
        if hooks[name]["script"]:
            files.append(hooks[name]["script"])
        files.extend(hooks[name]["dir"])
    for b in plan.config.words("extra_bins"):
        found = rebuild._which(plan.root, b)
        if not found:
            raise MkdumprdError("extra_bins: %s not found" % b)
        files.append(found)
    if plan.target.kind == "ssh":
        files.append(plan.config.sshkey)
        for name in ("known_hosts", "config"):   # host keys; a Port or User for the host
            if os.path.isfile(rootfs.join(plan.root, "/root/.ssh/" + name)):
                files.append("/root/.ssh/" + name)
    if "/" in plan.collector.program:
        files.append(plan.collector.program)
    return files


def build(plan, image=None, force=True, out=None, run=None, dracut=None):
    """Build the capture initramfs for plan at image (default: the plan's initrd path)."""
    run = run or subprocess.run
    image = image or plan.initrd_path
    host_image = rootfs.join(plan.root, image)
    dracut = dracut or shutil.which("dracut") or (
        "/usr/bin/dracut" if os.path.exists("/usr/bin/dracut") else None)
    if not dracut:
        raise MkdumprdError("dracut is not installed: install it (dnf install dracut, or "
                            "apt-get install dracut-core) to build %s" % image)
    if os.path.exists(host_image) and not force:
        raise MkdumprdError("%s exists: use -f to overwrite it" % image)
    mount = capture_mount(plan)
    net = network_plan(plan, mount)
    drivers = target_drivers(plan, mount) + [m for m in net.get("modules", ())]
    drivers += [m for m in rootfs_drivers(plan.root) if m not in drivers]
    drivers += [w for w in capture.watchdog_drivers(plan.root, plan.kernel_version)
                if w not in drivers]
    drivers += [m for m in plan.config.words("extra_modules") if m not in drivers]
    mode = init_mode(plan, mount)
    if mode == "own":
        args_drivers = dracut_args_drivers(plan.config)
        drivers += [m for m in args_drivers if m not in drivers]
        modules, missing = modules_file(plan.root, plan.kernel_version, drivers)
        drivers = [m for m in drivers if m not in missing]
        extra = set(plan.config.words("extra_modules")) | set(args_drivers)
        unknown = [m for m in missing if m in extra]
        if unknown:
            raise MkdumprdError("no module %s for kernel %s (extra_modules or dracut_args)"
                                % (", ".join(unknown), plan.kernel_version))
    moddir = module_dir(plan.root)
    tools = c_tools(plan.root)
    if mode == "own":
        tools.append(insmod_tool())
    with tempfile.TemporaryDirectory(prefix="mkdumprd.") as tmp:
        with open(os.path.join(tmp, "plan.env"), "w") as f:
            f.write(plan_env(plan, mount, root_mount(plan.root), net))
        with open(os.path.join(tmp, "plan.json"), "w") as f:
            f.write(plan.to_json())
        if mode == "own":
            with open(os.path.join(tmp, "modules"), "w") as f:
                f.write(modules)
        env = dict(os.environ, KEXEC_PY_KDUMP_DIR=tmp,
                   KEXEC_PY_KDUMP_TOOLS=" ".join(tools),
                   KEXEC_PY_KDUMP_DRIVERS=" ".join(drivers),
                   KEXEC_PY_KDUMP_FILES=" ".join(extra_files(plan)),
                   KEXEC_PY_KDUMP_INIT=mode,
                   KEXEC_PY_KDUMP_SHELL=small_shell(plan, plan.root) or "bash")
        confdir = os.path.join(tmp, "conf.d")
        os.mkdir(confdir)
        argv = dracut_argv(dracut, plan, host_image + ".tmp", drivers, plan.root,
                           aggressive=dracut_supports(dracut, "--aggressive-strip"),
                           mode=mode)
        argv[1:1] = ["--conf", "/dev/null", "--confdir", confdir]
        if moddir != rootfs.join(plan.root, MODULE_DIR):
            env["dracutbasedir"] = overlay_basedir(plan.root, moddir, tmp)
        proc = run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   universal_newlines=True)
        if proc.returncode != 0:
            _remove(host_image + ".tmp")
            raise MkdumprdError("mkdumprd: dracut failed (%d) building %s:\n%s"
                                % (proc.returncode, image, (proc.stdout or "")[-3000:]))
    os.replace(host_image + ".tmp", host_image)
    manifest = {"target": plan.target.as_dict(), "modules": drivers,
                "kernel": plan.kernel_version, "init": mode, "dracut": argv}
    with open(rebuild.manifest_path(host_image), "w") as f:
        json.dump(manifest, f, indent=1)
    return host_image


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass
