"""Setting crashkernel= in the boot loader configuration (`kdumpctl reset-crashkernel`).

What is edited, by boot loader (kexec_py.boot.select.discover decides which one):

- BLS (/boot/loader/entries/*.conf): the `options` lines of the selected entries. An
  entry whose options use $kernelopts (RHEL 8) has its command line in grubenv's
  `kernelopts`; that variable is edited instead (it is shared: every entry using it
  changes). grubenv stays a 1024-byte block padded with '#'.
- GRUB 2 without BLS: GRUB_CMDLINE_LINUX in /etc/default/grub (and
  GRUB_CMDLINE_LINUX_DEFAULT when it holds a crashkernel= of its own); grub.cfg must
  then be regenerated: Edit.after holds the command (only when root is "/").
- GRUB legacy (/boot/grub/grub.conf, RHEL 5/6): the `kernel` lines of the selected
  stanzas. Symlinks such as /etc/grub.conf are followed inside the root to the real file.

The first crashkernel= is rewritten in place and any others (a `,low` companion, say)
are removed; when there is none, crashkernel=VALUE is appended to the command line.
Nothing else changes: every other byte (comments, spacing, quoting, a missing final
newline) is kept. A file whose crashkernel= already is exactly VALUE is not touched, so a
second run plans no edits.

apply() keeps the previous contents of each file it changes as FILE.kdump-bak next to it
(overwritten by the next change; BLS and GRUB only read *.conf / grub.conf / grubenv, so
the copy is never booted) and replaces the file through a temporary file in the same
directory: write, fsync, rename, with the original mode and owner.
"""
import difflib
import os
import posixpath
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field

from .. import rootfs
from ..cmdline import spans as cmdline_spans
from ..boot import select
from ..boot.entry import resolve_boot_path
from ..boot.grub_legacy import _split_directive
from ..boot.grubenv import GRUBENV_PATHS, parse_grubenv
from ..errors import KexecError
from . import crashkernel

KEY = "crashkernel"
BACKUP_SUFFIX = ".kdump-bak"
GRUBENV_SIZE = 1024
DEFAULT_GRUB = "/etc/default/grub"
_SPACE = " \t\n\r\f\v"


class BootEditError(KexecError):
    exit_code = 1


# command line text, edited by position

def _words(text):
    """[(start, end)] of each kernel parameter (kernel quoting rules), stopping at `--`."""
    out = []
    for start, end in cmdline_spans(text):
        if text[start:end] == "--":
            break
        out.append((start, end))
    return out


def _key_value(raw):
    key, eq, value = raw.replace('"', "").partition("=")
    return key, (value if eq else None)


def values_in(text, key=KEY):
    """The values of every key= in a command line, in order (None for a bare key)."""
    return [_key_value(text[s:e])[1] for s, e in _words(text)
            if _key_value(text[s:e])[0] == key]


def _set_words(text, key, raw, placed):
    """Replace the first key= with raw unless placed already; remove every other key=.

    Returns (new text, placed). Removing a word takes the blank before it with it (or
    the blank after it when it is the first word).
    """
    spans = [(s, e) for s, e in _words(text) if _key_value(text[s:e])[0] == key]
    for s, e in reversed(spans):
        first = (s, e) == spans[0]
        if first and not placed:
            text = text[:s] + raw + text[e:]
            continue
        lo = s
        while lo > 0 and text[lo - 1] in " \t":
            lo -= 1
        hi = e
        if lo == 0 or text[lo - 1] in "\r\n":
            lo = s
            while hi < len(text) and text[hi] in " \t":
                hi += 1
        text = text[:lo] + text[hi:]
    return text, placed or bool(spans)


def _append_word(text, raw):
    """raw added after the last kernel parameter (before a `--` and trailing blanks)."""
    words = _words(text)
    if words:
        at = words[-1][1]
        return text[:at] + " " + raw + text[at:]
    lead = len(text) - len(text.lstrip(_SPACE))
    rest = text[lead:]
    if rest.startswith("--"):
        return text[:lead] + raw + " " + rest
    return text[:lead] + raw + rest


def set_param(text, value, key=KEY):
    """text with key=value set (see the module docstring); unchanged text when it is set."""
    if values_in(text, key) == [value]:
        return text
    raw = "%s=%s" % (key, value)
    new, placed = _set_words(text, key, raw, False)
    return new if placed else _append_word(new, raw)


# the model

@dataclass(frozen=True)
class EntryValue:
    """One boot entry and the crashkernel= values its command line has."""

    index: int
    kernel: str          # the kernel as seen from "/", e.g. /boot/vmlinuz-6.1.0
    values: tuple        # every crashkernel= value, in order
    title: str = ""
    id: str = ""
    config: str = ""     # the file the entry comes from (under root)
    source: str = ""

    @property
    def crashkernel(self):
        """The first crashkernel= value (what grubby-based tools show), or None."""
        return self.values[0] if self.values else None


@dataclass
class Edit:
    """A planned change to one file."""

    path: str            # the file to write (under root, symlinks resolved)
    display: str         # the same file as seen from "/"
    old: str
    new: str
    kind: str            # "bls", "grubenv", "grub-legacy" or "default-grub"
    entries: tuple = ()  # EntryValue (before the edit) of every entry this changes
    after: tuple = ()    # argv to run once every file is written (grub2-mkconfig)
    notes: tuple = ()    # things the user must know (e.g. grub.cfg not regenerated)
    _raw_old: bytes = field(default=None, repr=False)

    @property
    def backup(self):
        return self.path + BACKUP_SUFFIX

    def diff(self):
        """A unified diff, paths shown as a/etc/default/grub and b/etc/default/grub."""
        rel = self.display.lstrip("/")
        lines = difflib.unified_diff(self.old.splitlines(True), self.new.splitlines(True),
                                     "a/" + rel, "b/" + rel)
        out = []
        for line in lines:
            if line.endswith("\n"):
                out.append(line)
            else:
                out.append(line + "\n\\ No newline at end of file\n")
        return "".join(out)


# reading files

def _text(data):
    return data.decode("utf-8", "surrogateescape")


def _bytes(text):
    return text.encode("utf-8", "surrogateescape")


def _read(full, display):
    try:
        with open(full, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise BootEditError("cannot read %s: it is a directory, not a file; fix the boot "
                            "loader configuration, then run again" % display) from None
    except OSError as e:
        raise BootEditError("cannot read %s: %s; check the file and run as root"
                            % (display, e.strerror)) from None


def _in_root(root, full):
    rel = os.path.relpath(full, root or "/")
    return "/" + ("" if rel == "." else rel)


def real_path(root, path):
    """path (as seen from "/") with symlinks followed without leaving root."""
    parts = [p for p in path.split("/") if p]
    cur, hops = "/", 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            cur = posixpath.dirname(cur)
            continue
        cand = posixpath.join(cur, part)
        full = rootfs.join(root, cand)
        if os.path.islink(full):
            hops += 1
            if hops > 40:
                raise BootEditError("%s: too many levels of symbolic links" % path)
            target = os.readlink(full)
            if target.startswith("/"):
                cur = "/"
            parts = [p for p in target.split("/") if p] + parts
            continue
        cur = cand
    return cur


class _Files:
    """Texts read once per plan, and the edits collected per file."""

    def __init__(self, root):
        self.root = root
        self.edits = {}

    def edit(self, display, kind):
        display = real_path(self.root, display)
        if display not in self.edits:
            full = rootfs.join(self.root, display)
            raw = _read(full, display)
            self.edits[display] = Edit(full, display, _text(raw), _text(raw), kind,
                                       _raw_old=raw)
        return self.edits[display]

    def changed(self):
        return [e for e in self.edits.values() if e.new != e.old]


# which entries

def _selected(config, kernel, root):
    if kernel in (None, "", "DEFAULT"):
        return [config.default]
    if kernel == "ALL":
        return list(config.entries)
    want = os.path.realpath(resolve_boot_path(root, kernel))
    found = [e for e in config.entries
             if e.kernel == kernel or os.path.realpath(e.kernel_path) == want
             or (not kernel.startswith("/") and e.version == kernel)]
    if not found:
        raise BootEditError("Invalid --kernel=%s, please specify a valid kernel path, ALL or "
                            "DEFAULT" % kernel)
    return found


def _entry_value(root, e):
    return EntryValue(index=e.index, kernel=_in_root(root, e.kernel_path),
                      values=tuple(values_in(e.options)), title=e.title, id=e.id,
                      config=e.config, source=e.source)


def _discover(root):
    try:
        return select.discover(root)
    except OSError as e:
        raise BootEditError("cannot read %s: %s; run as root" % (
            _in_root(root, e.filename) if e.filename else "the boot loader configuration",
            e.strerror)) from None


def current_values(root="/", kernel="ALL"):
    """[EntryValue] for the entries kernel selects (ALL, DEFAULT or a kernel path)."""
    config = _discover(root)
    if config.source == "running":
        return [_entry_value(root, config.entries[0])]
    return [_entry_value(root, e) for e in _selected(config, kernel, root)]


# planning

def plan_reset(root, value, kernel="DEFAULT"):
    """The edits that make crashkernel=value the setting of the selected entries.

    kernel is "DEFAULT" (the default entry), "ALL", or a kernel path such as
    /boot/vmlinuz-VERSION (a version string works too). Returns [] when every selected
    entry has it already. Raises CrashkernelError for a bad value, BootEditError for an
    unknown kernel, a file that cannot be read, or a grubenv that would overflow.
    """
    crashkernel.parse(value)
    if any(c in value for c in " \t\"'$\\#"):
        raise crashkernel.CrashkernelError("invalid crashkernel=%s: no blanks, quotes, $, # "
                                           "or backslashes" % value)
    config = _discover(root)
    if config.source == "running":
        raise BootEditError("no boot loader configuration found (BLS entries, grub.cfg or "
                            "grub.conf): add crashkernel=%s to the kernel command line by hand"
                            % value)
    selected = _selected(config, kernel, root)
    files = _Files(root)
    if config.source == "bls":
        _plan_bls(root, config, selected, value, files)
    elif config.source == "grub-legacy":
        _plan_grub_legacy(root, config, selected, value, files)
    else:
        return _plan_default_grub(root, config, selected, value, files)
    return files.changed()


def _options_lines(text):
    """[(line start, value start, value end)] of each `options` line of a BLS snippet."""
    out, pos = [], 0
    for line in text.split("\n"):
        m = re.match(r"([ \t]*options)([ \t]+|$)", line)
        if m:
            end = len(line.rstrip("\r"))
            out.append((pos, pos + m.end(), pos + max(end, m.end())))
        pos += len(line) + 1
    return out


_KERNELOPTS = re.compile(r"\$(kernelopts\b|\{kernelopts\})")


def _plan_bls(root, config, selected, value, files):
    env_path = next((real_path(root, p) for p in GRUBENV_PATHS
                     if os.path.isfile(rootfs.join(root, real_path(root, p)))), None)
    env = parse_grubenv(rootfs.read_text(root, env_path) or "") if env_path else {}
    has_kopts = "kernelopts" in env
    users = [e for e in config.entries
             if _KERNELOPTS.search(_options_text(root, e, files))]
    for e in selected:
        if values_in(e.options) == [value]:
            continue
        edit = files.edit(_in_root(root, e.config), "bls")
        text = edit.new
        literal = [v for s, vs, ve in _options_lines(text) for v in values_in(text[vs:ve])]
        uses_kopts = has_kopts and e in users
        kopts = values_in(env["kernelopts"]) if uses_kopts else []
        if literal or not (uses_kopts or kopts):
            edit.new = _bls_set(text, value, add=not kopts)
            if edit.new != text:
                edit.entries += (_entry_value(root, e),)
        if kopts or (uses_kopts and not literal):
            _plan_kernelopts(root, env_path, value, files,
                             [_entry_value(root, u) for u in users])


def _options_text(root, entry, files):
    display = real_path(root, _in_root(root, entry.config))
    if display in files.edits:
        text = files.edits[display].old
    else:
        text = _text(_read(entry.config, display))
    return " ".join(text[vs:ve] for _, vs, ve in _options_lines(text))


def _bls_set(text, value, add=True):
    """The snippet with crashkernel=value on its options lines (added when add)."""
    raw = "%s=%s" % (KEY, value)
    lines = _options_lines(text)
    pieces, last, placed = [], 0, False
    for _, vs, ve in lines:     # front to back: the first crashkernel= is the one kept
        pieces.append(text[last:vs])
        part, placed = _set_words(text[vs:ve], KEY, raw, placed)
        pieces.append(part)
        last = ve
    pieces.append(text[last:])
    if placed or not add:
        return "".join(pieces)
    if lines:
        i, vs = 2 * len(lines) - 1, lines[-1][1]
        part = _append_word(pieces[i], raw)
        if not pieces[i].strip() and text[vs - 1:vs] not in (" ", "\t"):
            part = " " + part
        pieces[i] = part
        return "".join(pieces)
    sep = "" if text.endswith("\n") or not text else "\n"
    return text + sep + "options " + raw + "\n"


def _plan_kernelopts(root, env_path, value, files, users):
    edit = files.edit(env_path, "grubenv")
    text = edit.new
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("kernelopts="):
            new = "kernelopts=" + set_param(line[len("kernelopts="):], value)
            if new == line:
                return
            lines[i] = new
            break
    else:
        return
    body = "\n".join(lines)
    cut = body.rfind("\n") + 1
    if body[cut:].strip("#"):
        raise BootEditError("%s is not a GRUB environment block (it does not end in '#' "
                            "padding); fix it with grub2-editenv" % edit.display)
    content = body[:cut]
    if len(_bytes(content)) > GRUBENV_SIZE:
        raise BootEditError("%s: kernelopts with crashkernel=%s would not fit in the 1024-byte "
                            "GRUB environment block; shorten kernelopts or set crashkernel= in "
                            "the BLS entries" % (edit.display, value))
    edit.new = content + "#" * (GRUBENV_SIZE - len(_bytes(content)))
    edit.entries = tuple(users)


def _plan_grub_legacy(root, config, selected, value, files):
    for e in selected:
        if values_in(e.options) == [value]:
            continue
        edit = files.edit(_in_root(root, e.config), "grub-legacy")
        lines = edit.new.split("\n")
        stanza = -1
        for i, line in enumerate(lines):
            key, _ = _split_directive(line.strip())
            if key == "title":
                stanza += 1
                continue
            if key != "kernel" or str(stanza) != e.id:
                continue
            m = re.match(r"([ \t]*kernel[ \t=]+\S+)(.*?)(\r?)$", line)
            if m:
                args = set_param(m.group(2), value)
                if not m.group(2).strip():
                    args = " %s=%s" % (KEY, value)
                lines[i] = m.group(1) + args + m.group(3)
            break
        new = "\n".join(lines)
        if new != edit.new:
            edit.new = new
            edit.entries += (_entry_value(root, e),)


# GRUB 2's /etc/default/grub

def _assignment(text, var):
    """(value start, value end, quote) of the last `var=...` line, or None.

    The value span is what is inside the quotes; quote is '"', "'" or "".
    """
    found = None
    pos = 0
    for line in text.split("\n"):
        m = re.match(r"[ \t]*(?:export[ \t]+)?%s=" % re.escape(var), line)
        if m:
            start = pos + m.end()
            rest = line[m.end():]
            quote = rest[:1] if rest[:1] in ('"', "'") else ""
            if quote:
                close = _closing(rest, quote)
                if close < 0:
                    raise BootEditError("%s: %s spans several lines; set crashkernel= there "
                                        "by hand" % (DEFAULT_GRUB, var))
                found = (start + 1, start + close, quote)
            else:
                word = re.match(r"[^ \t#;\r]*", rest).group(0)
                found = (start, start + len(word), "")
        pos += len(line) + 1
    return found


def _closing(rest, quote):
    i = 1
    while i < len(rest):
        if quote == '"' and rest[i] == "\\":
            i += 2
            continue
        if rest[i] == quote:
            return i
        i += 1
    return -1


def _set_assignment(text, var, value, add):
    spot = _assignment(text, var)
    if spot is None:
        if not add:
            return text
        sep = "" if text.endswith("\n") or not text else "\n"
        return text + sep + '%s="%s=%s"\n' % (var, KEY, value)
    s, e, quote = spot
    inner = text[s:e]
    if not add and not values_in(inner):
        return text
    new = set_param(inner, value)
    if not quote and any(c in _SPACE for c in new):
        new = '"%s"' % new
    return text[:s] + new + text[e:]


def _plan_default_grub(root, config, selected, value, files):
    display = real_path(root, DEFAULT_GRUB)
    if not os.path.lexists(rootfs.join(root, display)):
        raise BootEditError("%s does not exist: GRUB 2 takes its kernel command line from "
                            "there; create it with GRUB_CMDLINE_LINUX=\"%s=%s\" and run "
                            "grub2-mkconfig" % (DEFAULT_GRUB, KEY, value))
    edit = files.edit(DEFAULT_GRUB, "default-grub")
    edit.new = _set_assignment(edit.new, "GRUB_CMDLINE_LINUX", value, add=True)
    edit.new = _set_assignment(edit.new, "GRUB_CMDLINE_LINUX_DEFAULT", value, add=False)
    entries = [_entry_value(root, e) for e in config.entries]
    behind = [e for e in entries if list(e.values) != [value]]
    if edit.new == edit.old and not behind:
        return []
    notes = []
    if len(selected) < len(config.entries):
        notes.append("GRUB_CMDLINE_LINUX applies to every kernel in grub.cfg, not only the "
                     "one selected")
    notes += _grub_d_notes(root)
    cfg = config.config
    after = ()
    if is_host_root(root):
        for argv in (("grub2-mkconfig", "-o", cfg), ("update-grub",),
                     ("grub-mkconfig", "-o", cfg)):
            if shutil.which(argv[0]):
                after = argv
                break
        else:
            notes.append("no grub2-mkconfig or update-grub found: regenerate %s by hand" % cfg)
    else:
        notes.append("grub.cfg not regenerated under --root: run `grub2-mkconfig -o %s` "
                     "(or update-grub) on that system" % _in_root(root, cfg))
    edit.entries = tuple(behind) if edit.new == edit.old else tuple(entries)
    edit.after, edit.notes = after, tuple(notes)
    return [edit]


def is_host_root(root):
    """True when root is the running system's "/" (then grub.cfg may be regenerated)."""
    return os.path.realpath(root or "/") == "/"


def _grub_d_notes(root):
    d = rootfs.join(root, "/etc/default/grub.d")
    notes = []
    if os.path.isdir(d):
        for name in sorted(os.listdir(d)):
            if name.endswith(".cfg") and "crashkernel=" in (rootfs.read_text(
                    root, "/etc/default/grub.d/" + name) or ""):
                notes.append("/etc/default/grub.d/%s sets crashkernel= too and may override "
                             "this value" % name)
    return notes


# writing

def after_commands(edits):
    """The distinct commands to run after apply(), in order (argv tuples)."""
    out = []
    for e in edits:
        if e.after and tuple(e.after) not in out:
            out.append(tuple(e.after))
    return out


def apply(edits):
    """Write the edits: each file backed up to FILE.kdump-bak, then replaced atomically.

    Every file is checked first (still as planned, directory writable); a file that
    cannot be written raises BootEditError naming it, and is left as it was.
    """
    todo = [e for e in edits if e.new != e.old]
    for e in todo:
        try:
            with open(e.path, "rb") as f:
                now = f.read()
        except OSError as err:
            raise BootEditError("cannot read %s: %s; nothing was changed"
                                % (e.display, err.strerror)) from None
        if now != (e._raw_old if e._raw_old is not None else _bytes(e.old)):
            raise BootEditError("%s changed since it was read; nothing was changed: run the "
                                "command again" % e.display)
        if not os.access(os.path.dirname(e.path), os.W_OK):
            raise BootEditError("cannot write %s: its directory is not writable (a read-only "
                                "/boot must be remounted read-write); nothing was changed"
                                % e.display)
    for e in todo:
        mode = os.stat(e.path)
        _write_atomic(e.backup, e._raw_old if e._raw_old is not None else _bytes(e.old),
                      mode, e.display + BACKUP_SUFFIX)
        _write_atomic(e.path, _bytes(e.new), mode, e.display)


def _write_atomic(path, data, like, display):
    directory, base = os.path.split(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + base + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), stat.S_IMODE(like.st_mode))
            try:
                os.fchown(f.fileno(), like.st_uid, like.st_gid)
            except PermissionError:
                pass
            os.fsync(f.fileno())
        os.rename(tmp, path)
        tmp = None
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        raise BootEditError("cannot write %s: %s; check that it is writable and there is "
                            "space on its file system" % (display, e.strerror)) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def report_lines(before, edits, value):
    """RHEL's per-entry messages: "Updated crashkernel=V for kernel=K, grub entry index=N."
    or "No need to update crashkernel value for kernel=K, grub entry index=N".

    before is current_values() taken before the edits, for the same kernel selection.
    """
    touched = {(ev.config, ev.index) for e in edits for ev in e.entries}
    out = []
    for ev in before:
        if (ev.config, ev.index) in touched:
            out.append("Updated crashkernel=%s for kernel=%s, grub entry index=%d."
                       % (value, ev.kernel, ev.index))
        else:
            out.append("No need to update crashkernel value for kernel=%s, grub entry "
                       "index=%d" % (ev.kernel, ev.index))
    return out
