"""GRUB legacy (RHEL 5/6): /boot/grub/grub.conf, /etc/grub.conf or menu.lst.

Global lines (`default=N`, `timeout=5`, `splashimage=...`; `=` or whitespace between key
and value) come first, then stanzas that start with `title`, holding `root (hd0,0)`,
`kernel /vmlinuz-VER args...` and `initrd /initrd-VER.img`. `default=saved` reads the
number from /boot/grub/default.
"""
import os

from .. import rootfs
from ..errors import FormatError
from .entry import BootEntry, resolve_boot_path, version_from_kernel

GRUB_CONF_PATHS = ("/boot/grub/grub.conf", "/boot/grub/menu.lst", "/etc/grub.conf")


def find_grub_conf(root):
    for path in GRUB_CONF_PATHS:
        if os.path.isfile(rootfs.join(root, path)):
            return path
    return None


def _split_directive(line):
    """'default=0' and 'default 0' both give ('default', '0')."""
    for i, c in enumerate(line):
        if c == "=" or c.isspace():
            return line[:i], line[i + 1:].strip()
    return line, ""


def parse_grub_conf(text, path="<grub.conf>"):
    """(globals dict, list of stanza dicts with title/root/kernel/args/initrds/line)."""
    globals_, stanzas = {}, []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, value = _split_directive(line)
        if key == "title":
            stanzas.append({"title": value, "root": None, "kernel": None, "args": "",
                            "initrds": [], "line": lineno})
            continue
        if not stanzas:
            globals_[key] = value
            continue
        st = stanzas[-1]
        if key == "kernel":
            if not value:
                raise FormatError(path, "kernel line without a file", line=lineno)
            parts = value.split(None, 1)
            st["kernel"] = parts[0]
            st["args"] = parts[1].strip() if len(parts) > 1 else ""
        elif key == "initrd":
            st["initrds"].extend(value.split())
        elif key == "root":
            st["root"] = value
    return globals_, stanzas


def read_entries(root):
    """(entries, default index) from grub.conf, or ([], None) when there is none."""
    conf = find_grub_conf(root)
    if conf is None:
        return [], None
    full = rootfs.join(root, conf)
    with open(full, encoding="utf-8", errors="replace") as f:
        globals_, stanzas = parse_grub_conf(f.read(), full)
    entries = []
    for n, st in enumerate(stanzas):
        if not st["kernel"]:
            continue  # chainloader stanzas (Windows) boot no Linux kernel
        entries.append(BootEntry(
            source="grub-legacy", index=len(entries), id=str(n), title=st["title"],
            version=version_from_kernel(st["kernel"]), kernel=st["kernel"],
            kernel_path=resolve_boot_path(root, st["kernel"]), options=st["args"],
            initrds=tuple(st["initrds"]),
            initrd_paths=tuple(resolve_boot_path(root, p) for p in st["initrds"]),
            config=full, grub_path=str(n), extra={"root": st["root"]}))
    return entries, _default(globals_, root, entries, full)


def _default(globals_, root, entries, path):
    value = globals_.get("default", "0").strip()
    if value == "saved":
        value = rootfs.read_first_line(root, "/boot/grub/default", "0") or "0"
    if not value.isdigit():
        raise FormatError(path, "default=%s is not a stanza number" % value)
    stanza = int(value)
    # default= counts every title, including stanzas without a kernel
    for e in entries:
        if e.id == str(stanza):
            return e.index
    return 0 if entries else None
