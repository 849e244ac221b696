"""Kernel command lines: parse with the kernel's quoting rules, edit by key, print back.

The kernel (lib/cmdline.c, next_arg) splits on whitespace outside double quotes; a
parameter is `key`, `key=value` or `key="value with spaces"` (the quotes may also wrap
the whole parameter: `"key=a b"`). Everything after a lone `--` is for init, not the
kernel, so edits by key stop there and appends go before it.

An untouched CommandLine prints back exactly the text it was parsed from.
"""

__all__ = ["Param", "CommandLine", "spans", "split", "quote_param", "for_reuse"]

_SPACE = " \t\n\r\f\v"


class Param:
    """One parameter as written (raw) plus its unquoted key and value (None for a bare
    flag such as `quiet`). A plain class: kexec's start-up avoids dataclasses."""

    __slots__ = ("raw", "key", "value")

    def __init__(self, raw, key, value=None):
        self.raw, self.key, self.value = raw, key, value

    def __eq__(self, other):
        if not isinstance(other, Param):
            return NotImplemented
        return (self.raw, self.key, self.value) == (other.raw, other.key, other.value)

    def __hash__(self):
        return hash((self.raw, self.key, self.value))

    def __repr__(self):
        return "Param(raw=%r, key=%r, value=%r)" % (self.raw, self.key, self.value)

    @classmethod
    def from_raw(cls, raw):
        text = raw.replace('"', "")
        key, eq, value = text.partition("=")
        return cls(raw, key, value if eq else None)

    @classmethod
    def make(cls, key, value=None):
        return cls(quote_param(key, value), key, value)


def quote_param(key, value=None):
    """`key`, `key=value`, or `key="value"` when the value holds whitespace."""
    if value is None:
        return key
    if '"' in value:
        raise ValueError("a kernel parameter value cannot contain a double quote: %r" % value)
    if any(c in _SPACE for c in value) or value == "":
        return '%s="%s"' % (key, value)
    return "%s=%s" % (key, value)


def spans(text):
    """[(start, end)] of each raw parameter in text, split as the kernel does."""
    out = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            break
        start, in_quote = i, False
        while i < n and (in_quote or text[i] not in _SPACE):
            if text[i] == '"':
                in_quote = not in_quote
            i += 1
        out.append((start, i))
    return out


def split(text):
    """Split a command line into raw parameter strings, as the kernel does."""
    return [text[s:e] for s, e in spans(text)]


class CommandLine:
    """A mutable kernel command line.

    >>> c = CommandLine('ro root=/dev/sda1 crashkernel=256M quiet')
    >>> c.remove('crashkernel')
    1
    >>> c.set('console', 'ttyS0,115200'); str(c)
    'ro root=/dev/sda1 quiet console=ttyS0,115200'
    """

    def __init__(self, text=""):
        text = text or ""
        self._text = text
        self._dirty = False
        raw = split(text)
        if "--" in raw:
            cut = raw.index("--")
            self._params, self._init_args = raw[:cut], raw[cut + 1:]
        else:
            self._params, self._init_args = raw, None
        self._params = [Param.from_raw(r) for r in self._params]

    # reading
    @property
    def params(self):
        """The kernel parameters (before any `--`), in order."""
        return tuple(self._params)

    @property
    def init_args(self):
        """Arguments after `--` (for init), or None when there is no `--`."""
        return None if self._init_args is None else tuple(self._init_args)

    def __contains__(self, key):
        return any(p.key == key for p in self._params)

    def get(self, key, default=None):
        """The value of the last `key=` (the kernel's rule: the last one wins)."""
        found = default
        for p in self._params:
            if p.key == key:
                found = p.value
        return found

    def get_all(self, key):
        return [p.value for p in self._params if p.key == key]

    # editing
    def remove(self, *keys):
        """Remove every occurrence of each key; returns how many were removed."""
        before = len(self._params)
        self._params = [p for p in self._params if p.key not in keys]
        removed = before - len(self._params)
        self._dirty |= bool(removed)
        return removed

    def set(self, key, value=None):
        """Replace the first occurrence of key in place, drop the others, or append."""
        new = Param.make(key, value)
        out, placed = [], False
        for p in self._params:
            if p.key != key:
                out.append(p)
            elif not placed:
                out.append(new)
                placed = True
        if not placed:
            out.append(new)
        self._params = out
        self._dirty = True

    def append(self, text):
        """Append parameters given as command-line text (parsed with the same rules)."""
        extra = CommandLine(text)
        if not extra._params and extra._init_args is None:
            return
        self._params.extend(extra._params)
        if extra._init_args is not None:
            self._init_args = (self._init_args or []) + extra._init_args
        self._dirty = True

    def copy(self):
        return CommandLine(str(self))

    def __str__(self):
        if not self._dirty:
            return self._text
        # A parameter with an unterminated quote ran to the end of the line it came from;
        # closing it keeps its meaning (the kernel drops a closing quote) and keeps it
        # from swallowing what is written after it.
        words = [p.raw + '"' if p.raw.count('"') % 2 else p.raw for p in self._params]
        if self._init_args is not None:
            words += ["--"] + self._init_args
        return " ".join(words)

    def __repr__(self):
        return "CommandLine(%r)" % str(self)

    def __eq__(self, other):
        if isinstance(other, CommandLine):
            return str(self) == str(other)
        return NotImplemented


def for_reuse(text, panic=False):
    """The running command line made ready for the next kernel (--reuse-cmdline).

    BOOT_IMAGE= names the old kernel file and is dropped; a capture kernel must not
    reserve memory of its own, so with panic crashkernel= goes too.
    """
    cmdline = CommandLine(text.strip())
    cmdline.remove("BOOT_IMAGE")
    if panic:
        cmdline.remove("crashkernel")
    return cmdline
