"""GRUB 2's generated grub.cfg: menuentry and submenu blocks.

Only what a kexec needs is read: each menuentry's title, id ($menuentry_id_option or
--id), its `linux`/`linuxefi`/`linux16` line (kernel and options) and `initrd*` lines.
The default comes from grubenv (next_entry is one-shot and ignored; saved_entry when
grub.cfg defers to it) or the last literal `set default=`; it may be an index, a
"1>2" submenu path, an id or a title. A grub.cfg that calls `blscfg` takes its entries
from BLS snippets instead (select.py handles that).
"""
import os
import shlex

from .. import rootfs
from ..errors import FormatError
from .entry import BootEntry, resolve_boot_path, version_from_kernel
from .grubenv import expand_vars

GRUB_CFG_PATHS = (
    "/boot/grub2/grub.cfg",
    "/boot/grub/grub.cfg",
    "/boot/efi/EFI/redhat/grub.cfg",
    "/boot/efi/EFI/centos/grub.cfg",
    "/boot/efi/EFI/fedora/grub.cfg",
    "/boot/efi/EFI/debian/grub.cfg",
)
LINUX_CMDS = ("linux", "linuxefi", "linux16")
INITRD_CMDS = ("initrd", "initrdefi", "initrd16")


def find_grub_cfg(root):
    for path in GRUB_CFG_PATHS:
        if os.path.isfile(rootfs.join(root, path)):
            return path
    return None


def _words(line, path, lineno):
    """Shell-like words; as in GRUB, '#' starts a comment only at the start of a word."""
    try:
        words = shlex.split(line, comments=False, posix=True)
    except ValueError as e:
        raise FormatError(path, "cannot split line: %s" % e, line=lineno) from None
    for i, w in enumerate(words):
        if w.startswith("#"):
            return words[:i]
    return words


def _block_header(words):
    """(title, id) from `menuentry 'Title' [--opts] [$menuentry_id_option 'id'] {`."""
    title = ident = None
    args = iter(w for w in words[1:] if w != "{")
    for w in args:
        if w in ("--id", "$menuentry_id_option"):
            ident = next(args, None)
        elif w.startswith("--id="):
            ident = w[len("--id="):]
        elif w in ("--class", "--users", "--hotkey"):
            next(args, None)
        elif w.startswith("--"):
            continue
        elif title is None:
            title = w
    return title or "", ident


def parse_grub_cfg(text, path="<grub.cfg>"):
    """Parse grub.cfg into (items, set_defaults, uses_blscfg).

    items is a tree: ("entry", dict) or ("submenu", title, id, [items]). set_defaults
    lists the values of every `set default=` in file order.
    """
    top = []
    stack = [top]          # item lists of open menu blocks
    current = None         # the menuentry being read
    depth_other = 0        # if/function braces inside the current scope
    set_defaults, uses_blscfg = [], False
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = _words(line, path, lineno)
        if not words:
            continue
        cmd = words[0]
        if cmd == "blscfg":
            uses_blscfg = True
        if cmd.startswith("set") and len(words) >= 2 and words[1].startswith("default="):
            set_defaults.append(words[1][len("default="):])
            continue
        if cmd in ("menuentry", "submenu") and line.endswith("{"):
            title, ident = _block_header(words)
            if cmd == "menuentry":
                current = {"title": title, "id": ident, "linux": None, "options": "",
                           "initrds": [], "line": lineno, "depth": len(stack)}
            else:
                sub = []
                stack[-1].append(("submenu", title, ident, sub))
                stack.append(sub)
            continue
        if cmd == "}" or line == "}":
            if depth_other:
                depth_other -= 1
            elif current is not None:
                stack[-1].append(("entry", current))
                current = None
            elif len(stack) > 1:
                stack.pop()
            continue
        if line.endswith("{") or cmd in ("if", "function"):
            if line.endswith("{"):
                depth_other += 1
            continue
        if current is None:
            continue
        if cmd in LINUX_CMDS and len(words) >= 2:
            current["linux"] = words[1]
            current["options"] = " ".join(_requote(w) for w in words[2:])
        elif cmd in INITRD_CMDS:
            current["initrds"].extend(words[1:])
    if current is not None:
        raise FormatError(path, "menuentry %r is not closed" % current["title"],
                          line=current["line"])
    return top, set_defaults, uses_blscfg


def _requote(word):
    """Put back the quotes shlex removed from `key=a b` so the kernel sees one param."""
    if any(c.isspace() for c in word) and "=" in word:
        key, _, value = word.partition("=")
        return '%s="%s"' % (key, value)
    return word


def _flatten(items, prefix=""):
    """Yield (grub_path, entry dict) depth first, as GRUB numbers them."""
    for n, item in enumerate(items):
        here = "%s%d" % (prefix, n)
        if item[0] == "entry":
            yield here, item[1]
        else:
            yield from _flatten(item[3], here + ">")


def read_entries(root, env):
    """(entries, default_spec, uses_blscfg) from grub.cfg, or ([], None, False) when
    there is none."""
    cfg = find_grub_cfg(root)
    if cfg is None:
        return [], None, False
    full = rootfs.join(root, cfg)
    with open(full, encoding="utf-8", errors="replace") as f:
        items, set_defaults, uses_blscfg = parse_grub_cfg(f.read(), full)
    entries = []
    for grub_path, e in _flatten(items):
        if not e["linux"]:
            continue  # chainloader, memtest, UEFI setup...
        options = expand_vars(e["options"], env) if "$" in e["options"] else e["options"]
        entries.append(BootEntry(
            source="grub2", index=len(entries), id=e["id"] or grub_path,
            title=e["title"], version=version_from_kernel(e["linux"]),
            kernel=e["linux"], kernel_path=resolve_boot_path(root, e["linux"]),
            options=options, initrds=tuple(e["initrds"]),
            initrd_paths=tuple(resolve_boot_path(root, p) for p in e["initrds"]),
            config=full, grub_path=grub_path))
    return entries, _default_spec(set_defaults, env), uses_blscfg


def _default_spec(set_defaults, env):
    """What GRUB would take as `default`: grubenv's saved_entry when the config defers
    to it, else the last literal value."""
    literal = None
    for value in set_defaults:
        if "saved_entry" in value and env.get("saved_entry"):
            return env["saved_entry"]
        if "$" not in value:
            literal = value
    return literal


def match_default(entries, spec):
    """Index of the entry GRUB's default spec names (index, "1>2", id or title)."""
    if spec is None:
        return 0 if entries else None
    spec = spec.strip()
    if spec.isdigit():
        spec_path = spec
    else:
        spec_path = spec if ">" in spec and all(p.isdigit() for p in spec.split(">")) else None
    for e in entries:
        if spec_path is not None and e.grub_path == spec_path:
            return e.index
    for e in entries:
        if e.id == spec or e.title == spec:
            return e.index
    # A title path "Advanced options>Debian, with Linux X": match on the last part.
    last = spec.split(">")[-1]
    for e in entries:
        if e.id == last or e.title == last:
            return e.index
    return 0 if entries else None
