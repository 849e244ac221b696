"""The boot entry model shared by every boot loader parser."""
import os
import re
from dataclasses import dataclass, field

from .. import rootfs


@dataclass(frozen=True)
class BootEntry:
    """One bootable kernel as a boot loader describes it.

    kernel and initrds are paths as the boot loader wrote them; kernel_path and
    initrd_paths are where they are on this machine (under the root prefix).
    """

    source: str            # "bls", "grub2", "grub-legacy" or "running"
    index: int             # position in the list this entry came from
    id: str                # BLS file name, GRUB menuentry id, or a made-up stable id
    title: str
    version: str
    kernel: str
    kernel_path: str
    options: str
    initrds: tuple = ()
    initrd_paths: tuple = ()
    config: str = ""       # the file the entry was read from
    grub_path: str = ""    # GRUB's own address for the entry, e.g. "1>2"
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def as_dict(self, default=False):
        return {
            "index": self.index, "id": self.id, "title": self.title,
            "version": self.version, "kernel": self.kernel_path,
            "initrds": list(self.initrd_paths), "options": self.options,
            "source": self.source, "config": self.config, "default": default,
            "grub_path": self.grub_path,
        }


_PART_PREFIX = re.compile(r"^\([^)]*\)")


def resolve_boot_path(root, path):
    """Map a boot loader path to a file under root.

    Boot loaders name files relative to the partition they read: "/vmlinuz-X" when /boot
    is its own partition, "/boot/vmlinuz-X" when it is not. GRUB may prefix a device,
    "(hd0,0)/vmlinuz-X". Returns the first candidate that exists, else the /boot one.
    """
    path = _PART_PREFIX.sub("", path.strip())
    if not path.startswith("/"):
        path = "/" + path
    candidates = [rootfs.join(root, "/boot" + path), rootfs.join(root, path)]
    if path.startswith("/boot/"):
        candidates.reverse()
    for c in candidates:
        if os.path.exists(c):
            return c
    return candidates[0]


def version_from_kernel(path):
    """'6.1.0-57-amd64' from '/boot/vmlinuz-6.1.0-57-amd64' (also vmlinux-, bzImage-)."""
    name = os.path.basename(path)
    for prefix in ("vmlinuz-", "vmlinux-", "bzImage-", "kernel-"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return ""


def vercmp(a, b):
    """Compare version strings the way rpmvercmp does: -1, 0 or 1.

    Alphanumeric segments are compared in turn; digits numerically, letters as text; a
    numeric segment is newer than an alphabetic one; "~" sorts before anything.
    """
    seg = re.compile(r"~|\d+|[A-Za-z]+")
    sa, sb = seg.findall(a), seg.findall(b)
    for x, y in zip(sa, sb):
        if x == y:
            continue
        if x == "~" or y == "~":
            return -1 if x == "~" else 1
        xd, yd = x.isdigit(), y.isdigit()
        if xd and yd:
            xi, yi = int(x), int(y)
            if xi != yi:
                return -1 if xi < yi else 1
            continue
        if xd != yd:
            return 1 if xd else -1
        return -1 if x < y else 1
    if len(sa) == len(sb):
        return 0
    longer = sa if len(sa) > len(sb) else sb
    nxt = longer[min(len(sa), len(sb))]
    if nxt == "~":
        return 1 if longer is sb else -1
    return 1 if longer is sa else -1
