"""Boot Loader Specification entries (/boot/loader/entries/*.conf).

Each file is `key value` lines. `options` and `initrd` may repeat (options are joined with
spaces; each initrd line may hold several paths). GRUB's blscfg expands $variables in
options and initrd lines from grubenv (RHEL 8's $kernelopts, tuned's $tuned_initrd). The
default is grubenv's saved_entry, else loader.conf's `default` (a glob), else the first
entry in sort order, which is the newest.
"""
import fnmatch
import functools
import os

from .. import rootfs
from ..errors import FormatError
from .entry import BootEntry, resolve_boot_path, vercmp
from .grubenv import expand_vars

ENTRY_DIRS = ("/boot/loader/entries", "/efi/loader/entries", "/boot/efi/loader/entries")
LOADER_CONF = ("/boot/loader/loader.conf", "/efi/loader/loader.conf",
               "/boot/efi/loader/loader.conf")
MULTI_KEYS = ("options", "initrd")


def parse_entry_text(text, path="<entry>"):
    """Parse one BLS snippet into a dict; options/initrd become lists."""
    fields = {"options": [], "initrd": []}
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if key in MULTI_KEYS:
            if value:
                fields[key].append(value)
        elif key in fields:
            raise FormatError(path, "repeated key %r" % key, line=lineno)
        else:
            fields[key] = value
    if "linux" not in fields and "efi" not in fields and "uki" not in fields:
        raise FormatError(path, "no 'linux' line")
    return fields


def entries_dir(root):
    for d in ENTRY_DIRS:
        if os.path.isdir(rootfs.join(root, d)):
            return d
    return None


def _sort_key_cmp(a, b):
    """systemd-boot's order: sort-key, then machine-id, then version (newest first)."""
    fa, fb = a[1], b[1]
    ka, kb = fa.get("sort-key", ""), fb.get("sort-key", "")
    if bool(ka) != bool(kb):
        return -1 if ka else 1
    if ka != kb:
        return -1 if ka < kb else 1
    ma, mb = fa.get("machine-id", ""), fb.get("machine-id", "")
    if ma != mb:
        return -1 if ma < mb else 1
    va, vb = fa.get("version") or a[0], fb.get("version") or b[0]
    return vercmp(vb, va) or vercmp(b[0], a[0])  # newest first, then by file name


def read_entries(root, env):
    """All BLS entries under root, sorted; [] when there is no entries directory."""
    d = entries_dir(root)
    if d is None:
        return []
    full = rootfs.join(root, d)
    parsed = []
    for name in sorted(os.listdir(full)):
        if not name.endswith(".conf"):
            continue
        path = os.path.join(full, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            parsed.append((name[:-len(".conf")], parse_entry_text(f.read(), path), path))
    parsed.sort(key=functools.cmp_to_key(_sort_key_cmp))
    entries = []
    for index, (ident, fields, path) in enumerate(parsed):
        linux = fields.get("linux") or fields.get("uki") or fields.get("efi")
        # RHEL's tuned adds "$tuned_initrd" to initrd lines; blscfg expands it (usually
        # to nothing), so it must not be taken for a file name.
        initrds = tuple(p for value in fields["initrd"]
                        for p in (expand_vars(value, env) if "$" in value else value).split())
        options = " ".join(fields["options"])
        if "$" in options:
            options = expand_vars(options, env)
        entries.append(BootEntry(
            source="bls", index=index, id=ident,
            title=fields.get("title", ident), version=fields.get("version", ""),
            kernel=linux, kernel_path=resolve_boot_path(root, linux),
            options=options, initrds=initrds,
            initrd_paths=tuple(resolve_boot_path(root, p) for p in initrds),
            config=path))
    return entries


def loader_conf_default(root):
    for path in LOADER_CONF:
        text = rootfs.read_text(root, path)
        if text is None:
            continue
        for line in text.split("\n"):
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0] == "default":
                return parts[1].strip()
    return None


def default_index(entries, env, root):
    """Index of the default entry: saved_entry, loader.conf default, else 0."""
    saved = env.get("saved_entry")
    if saved:
        for e in entries:
            if e.id == saved or e.title == saved:
                return e.index
    pattern = loader_conf_default(root)
    if pattern:
        pattern = pattern[:-len(".conf")] if pattern.endswith(".conf") else pattern
        for e in entries:
            if fnmatch.fnmatchcase(e.id, pattern):
                return e.index
    return 0 if entries else None
