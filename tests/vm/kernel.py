"""Fetch and cache the Debian kernel package the VM tests boot.

The package is `apt-get download`ed once into a cache directory, unpacked with dpkg -x,
and given a modules.dep with depmod. KPY_VM_KERNEL_DIR points at an already unpacked tree
instead (it must hold boot/vmlinuz-* and lib/modules/*).
"""
import glob
import os
import subprocess
import sys

KERNEL_META = "linux-image-amd64"


def cache_dir():
    """Where downloads and unpacked kernels live between runs."""
    env = os.environ.get("KPY_VM_CACHE")
    if env:
        return env
    for d in ("/var/cache/kexec-py-vm", os.path.expanduser("~/.cache/kexec-py/vm")):
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK):
            return d
    raise RuntimeError("no writable cache directory for the VM kernel; set KPY_VM_CACHE")


def _run(cmd, cwd=None):
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), proc.returncode,
                                                    proc.stdout[-3000:]))
    return proc.stdout


def package_name():
    """The versioned package linux-image-amd64 depends on today, e.g. linux-image-6.1.0-57-amd64."""
    try:
        out = _run(["apt-cache", "depends", KERNEL_META])
    except RuntimeError:
        _run(["apt-get", "update", "-qq"])  # a machine whose package lists were never read
        out = _run(["apt-cache", "depends", KERNEL_META])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            name = line.split(":", 1)[1].strip()
            if "-cloud-" not in name:
                return name
    raise RuntimeError("apt-cache depends %s names no kernel package (run apt-get update)"
                       % KERNEL_META)


class Kernel:
    """An unpacked kernel: vmlinuz, its release and its modules directory."""

    def __init__(self, tree):
        found = sorted(glob.glob(os.path.join(tree, "boot", "vmlinuz-*")))
        if not found:
            raise RuntimeError("%s holds no boot/vmlinuz-*" % tree)
        self.tree = tree
        self.vmlinuz = found[-1]
        self.release = os.path.basename(self.vmlinuz)[len("vmlinuz-"):]
        self.modules = os.path.join(tree, "lib", "modules", self.release)

    def module(self, name):
        """Path of NAME.ko in this kernel's tree, or None (built in or absent)."""
        for pattern in ("%s.ko", "%s.ko.xz", "%s.ko.zst"):
            hits = glob.glob(os.path.join(self.modules, "kernel", "**", pattern % name),
                             recursive=True)
            if hits:
                return hits[0]
        return None


def ensure_kernel():
    """Download and unpack the kernel once; return a Kernel."""
    tree = os.environ.get("KPY_VM_KERNEL_DIR")
    if tree:
        return Kernel(tree)
    cache = cache_dir()
    name = package_name()
    tree = os.path.join(cache, name)
    if os.path.isfile(os.path.join(tree, ".complete")):
        return Kernel(tree)
    debs = glob.glob(os.path.join(cache, name + "_*.deb"))
    if not debs:
        _run(["apt-get", "download", name], cwd=cache)
        debs = glob.glob(os.path.join(cache, name + "_*.deb"))
    if not debs:
        raise RuntimeError("apt-get download %s left no .deb in %s" % (name, cache))
    tmp = tree + ".tmp"
    _run(["rm", "-rf", tmp])
    _run(["dpkg", "-x", debs[0], tmp])
    k = Kernel(tmp)
    depmod = "/sbin/depmod" if os.path.exists("/sbin/depmod") else "depmod"
    _run([depmod, "-b", tmp, k.release])
    open(os.path.join(tmp, ".complete"), "w").close()
    _run(["rm", "-rf", tree])
    os.rename(tmp, tree)
    return Kernel(tree)


if __name__ == "__main__":
    k = ensure_kernel()
    print(k.vmlinuz)
    sys.exit(0)
