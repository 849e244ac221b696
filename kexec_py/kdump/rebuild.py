"""When the capture initramfs must be rebuilt (RHEL kdump-utils' rules).

Rebuild when the image is missing; when force_rebuild is 1; when any file it was built
from is newer than it (kdump.conf, the kernel, the hooks and the hook directories'
executables, extra_bins, a collector named by path, /etc/fstab, extra_modules' files,
modules.dep; for a symbolic link, the link and its target both count); when the dump
target it was built for (recorded by mkdumprd next to the image) is not the configured
one; or when a watchdog driver in use is missing from the image's record. force_no_rebuild
skips all of it.
"""
import json
import os
from dataclasses import dataclass

from .. import rootfs
from . import capture

MANIFEST_SUFFIX = ".kexec-py.json"


@dataclass(frozen=True)
class Decision:
    rebuild: bool
    reason: str               # RHEL-style message for the log
    changed: tuple = ()       # files newer than the image

    def __bool__(self):
        return self.rebuild


def manifest_path(initrd_host_path):
    """Where mkdumprd records what an image was built for: beside the image."""
    return initrd_host_path + MANIFEST_SUFFIX


def read_manifest(initrd_host_path):
    try:
        with open(manifest_path(initrd_host_path), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _mtime(path):
    """Newest of a file's own mtime and, for a symlink, its target's; None if missing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    t = st.st_mtime
    if os.path.islink(path):
        try:
            t = max(t, os.stat(path).st_mtime)
        except OSError:
            pass
    return t


def _which(root, name):
    if "/" in name:
        return name
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"):
        if os.path.exists(rootfs.join(root, "%s/%s" % (d, name))):
            return "%s/%s" % (d, name)
    return None


def module_stem(rel):
    """A module's name as /proc/modules spells it: the file's base name up to ".ko",
    with '-' as '_'."""
    return os.path.basename(rel).split(".ko", 1)[0].replace("-", "_")


def module_tree(root, kver):
    """(directory, index, deps, builtin) of a kernel's modules, from the first of
    /lib/modules/KVER and /usr/lib/modules/KVER that has a modules.dep: index maps a
    module's name (module_stem) to its path in modules.dep (relative to the directory),
    deps a name to the names it depends on, builtin holds modules.builtin's names.
    None when neither has a modules.dep."""
    for base in ("/lib/modules", "/usr/lib/modules"):
        directory = "%s/%s" % (base, kver)
        text = rootfs.read_text(root, directory + "/modules.dep")
        if text is None:
            continue
        index, deps = {}, {}
        for line in text.split("\n"):
            rel, _, rest = line.partition(":")
            rel = rel.strip()
            if rel:
                index[module_stem(rel)] = rel
                deps[module_stem(rel)] = [module_stem(d) for d in rest.split()]
        builtin = {module_stem(line.strip()) for line in
                   (rootfs.read_text(root, directory + "/modules.builtin") or "").split("\n")
                   if line.strip()}
        return directory, index, deps, builtin
    return None


def _module_files(root, kver, names):
    """Files of the named modules per modules.dep (name with - or _ alike)."""
    tree = module_tree(root, kver)
    if tree is None:
        return [], list(names), None
    directory, index = tree[:2]
    out, missing = [], []
    for n in names:
        key = n.replace("-", "_")
        if key in index:
            out.append("%s/%s" % (directory, index[key]))
        else:
            missing.append(n)
    return out, missing, directory + "/modules.dep"


def inputs(plan):
    """(machine paths the image depends on, warnings for the ones that do not exist)."""
    cfg, root = plan.config, plan.root
    files, warnings = [cfg.path, plan.host_path(plan.kernel_path),
                       plan.host_path("/etc/fstab")], []
    for key in ("kdump_pre", "kdump_post", "kdump_emergency"):
        if cfg.get(key):
            files.append(plan.host_path(cfg.get(key)))
    for hooks in plan.hooks.values():
        files.extend(plan.host_path(p) for p in hooks["dir"])
    for name in cfg.words("extra_bins"):
        found = _which(root, name)
        if found:
            files.append(plan.host_path(found))
        else:
            warnings.append("%s doesn't exist" % name)
    if "/" in plan.collector.program:
        files.append(plan.host_path(plan.collector.program))
    mods, missing, dep = _module_files(root, plan.kernel_version, cfg.words("extra_modules"))
    files.extend(plan.host_path(m) for m in mods)
    warnings.extend("Module %s not found" % m for m in missing)
    if dep:
        files.append(plan.host_path(dep))
    return files, warnings


def decide(plan):
    """A Decision for the plan's capture initramfs."""
    cfg = plan.config
    image = plan.host_path(plan.initrd_path)
    if cfg.flag("force_no_rebuild"):
        return Decision(False, "force_no_rebuild is set: %s is used as it is" % plan.initrd_path)
    if not os.path.exists(image):
        return Decision(True, "No kdump initial ramdisk found.")
    if cfg.flag("force_rebuild"):
        return Decision(True, "Force rebuild %s" % plan.initrd_path)
    built = _mtime(image)
    files, _ = inputs(plan)
    changed = tuple(f for f in files if (_mtime(f) or 0) > built)
    if changed:
        shown = " ".join(f[len(plan.root.rstrip("/")):] if plan.root not in ("", "/") else f
                         for f in changed)
        return Decision(True, "Detected change(s) in the following file(s): %s" % shown,
                        changed)
    manifest = read_manifest(image)
    if manifest is not None:
        built_target = manifest.get("target") or {}
        now = plan.target.as_dict()
        for key in ("kind", "fstype", "spec", "mount_point"):
            if built_target.get(key, "") != now.get(key, ""):
                return Decision(True, "Detected change in File System: the image was built "
                                      "for target %s, kdump.conf now says %s"
                                % (_target_words(built_target), _target_words(now)))
        in_image = set(manifest.get("modules") or ())
        if manifest.get("modules") is not None:
            for drv in capture.watchdog_drivers(plan.root, plan.kernel_version):
                if drv not in in_image:
                    return Decision(True, "Detected change in watchdog state: %s is not in "
                                          "the image" % drv)
    return Decision(False, "%s is up to date" % plan.initrd_path)


def _target_words(t):
    if not t.get("kind") or t.get("kind") == "rootfs":
        return "the root file system"
    return " ".join(x for x in (t.get("fstype"), t.get("spec")) if x)
