"""Which boot loader describes this machine, its entries, and the default one.

Order: BLS snippets (when /boot/loader/entries holds any), GRUB 2 grub.cfg, GRUB legacy
grub.conf; with none of those, the running kernel (`uname -r`) with /boot/vmlinuz-VER,
its initramfs and the running command line.
"""
import os
from dataclasses import dataclass

from .. import rootfs
from ..cmdline import for_reuse
from ..errors import EntryNotFound, KexecError
from . import bls, grub2, grub_legacy
from .entry import BootEntry
from .grubenv import read_grubenv

INITRD_PATTERNS = ("/boot/initramfs-%s.img", "/boot/initrd-%s.img", "/boot/initrd.img-%s")


@dataclass(frozen=True)
class BootConfig:
    source: str          # "bls", "grub2", "grub-legacy" or "running"
    entries: tuple
    default_index: int   # None when there are no entries
    config: str = ""     # the file or directory the entries came from

    @property
    def default(self):
        if self.default_index is None:
            raise EntryNotFound("no boot entries found")
        return self.entries[self.default_index]


def running_entry(root):
    """The running kernel as an entry; its files may or may not exist."""
    release = rootfs.running_release(root)
    if not release:
        raise KexecError("cannot tell the running kernel's release under %s" % root)
    kernel = "/boot/vmlinuz-%s" % release
    initrds = tuple(p % release for p in INITRD_PATTERNS if rootfs.exists(root, p % release))
    cmdline = for_reuse(rootfs.read_text(root, "/proc/cmdline") or "")
    return BootEntry(
        source="running", index=0, id="running", title="running kernel %s" % release,
        version=release, kernel=kernel, kernel_path=rootfs.join(root, kernel),
        options=str(cmdline), initrds=initrds[:1],
        initrd_paths=tuple(rootfs.join(root, p) for p in initrds[:1]),
        config="/proc/cmdline")


def discover(root="/"):
    """Read the boot loader configuration under root."""
    _, env = read_grubenv(root)
    entries = bls.read_entries(root, env)
    if entries:
        d = bls.entries_dir(root)
        return BootConfig("bls", tuple(entries), bls.default_index(entries, env, root),
                          rootfs.join(root, d) if d else os.path.dirname(entries[0].config))
    entries, spec, _ = grub2.read_entries(root, env)
    if entries:
        return BootConfig("grub2", tuple(entries), grub2.match_default(entries, spec),
                          entries[0].config)
    entries, default = grub_legacy.read_entries(root)
    if entries:
        return BootConfig("grub-legacy", tuple(entries), default, entries[0].config)
    entry = running_entry(root)
    return BootConfig("running", (entry,), 0, entry.config)


def find_entry(config, spec):
    """The entry named by spec: an id, an index, a GRUB path ("1>2"), a version or a title.

    Ids win over indexes so that an id that is all digits (GRUB legacy) still works. A
    version names the first entry that boots it normally: Debian's menu lists each kernel
    three times (the main entry, "Advanced options", and a recovery mode entry).
    """
    spec = str(spec)
    for attr in ("id", "index", "grub_path", "version", "title"):
        matches = [e for e in config.entries if str(getattr(e, attr)) == spec]
        if attr == "version" and len(matches) > 1:
            matches = [e for e in matches if not is_recovery(e)][:1] or matches
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1 and attr in ("version", "title"):
            raise EntryNotFound("%d boot entries have %s %r; use an id or index (see "
                                "kexec --list-entries)" % (len(matches), attr, spec))
        if matches:
            return matches[0]
    raise EntryNotFound("no boot entry matches %r in %s (see kexec --list-entries)"
                        % (spec, config.config or config.source))


def is_recovery(entry):
    """A rescue or single-user entry (GRUB's "recovery mode", RHEL's rescue kernel)."""
    title = entry.title.lower()
    words = entry.options.split()
    return "recovery" in title or "rescue" in title or "single" in words or "S" in words
