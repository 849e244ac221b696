"""Boot Loader Specification entries: type #1 snippets (/boot/loader/entries/*.conf) and
type #2 unified kernel images (/boot/EFI/Linux/*.efi, /efi/EFI/Linux/*.efi), sorted
together as systemd-boot sorts them.

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
TYPE2_DIRS = ("/boot/EFI/Linux", "/efi/EFI/Linux", "/boot/efi/EFI/Linux")


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


def _type2(root):
    """(id, fields, path) of each UKI in the type #2 directories, its fields taken from
    the image as systemd-boot takes them: title from .osrel's PRETTY_NAME, version from
    .uname, sort-key from IMAGE_ID or ID, options from .cmdline. Images that do not
    parse as UKIs are left out, as the boot loader leaves them out."""
    from ..errors import KexecError
    from ..load import uki
    out = []
    for d in TYPE2_DIRS:
        full = rootfs.join(root, d)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full)):
            path = os.path.join(full, name)
            if not name.lower().endswith(".efi") or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as f:
                    u = uki.parse(f.fileno(), path, os.fstat(f.fileno()).st_size)
                    osrel = uki.text(u, f.fileno(), ".osrel")
                    uname = uki.text(u, f.fileno(), ".uname")
                    cmdline = uki.cmdline(u, f.fileno())
            except (OSError, KexecError):
                continue
            title = (uki.os_release_field(osrel, "PRETTY_NAME") or
                     uki.os_release_field(osrel, "NAME") or name)
            fields = {"title": title, "version": (uname or "").strip() or
                      uki.os_release_field(osrel, "VERSION_ID") or "",
                      "uki": d + "/" + name, "options": [cmdline] if cmdline else [],
                      "initrd": [], "type2": True}
            key = uki.os_release_field(osrel, "IMAGE_ID") or uki.os_release_field(osrel, "ID")
            if key:
                fields["sort-key"] = key
            out.append((name, fields, path))
    return out


def read_entries(root, env):
    """All BLS entries under root (type #1 and #2), sorted; [] when there are none."""
    d = entries_dir(root)
    parsed = _type2(root)
    if d is None:
        if not parsed:
            return []
        names = []
    else:
        full = rootfs.join(root, d)
        names = sorted(os.listdir(full))
    for name in names:
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
            kernel=linux, kernel_path=(path if fields.get("type2")      # the UKI itself
                                       else resolve_boot_path(root, linux)),
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
