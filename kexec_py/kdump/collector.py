"""core_collector: what runs at crash time to save /proc/vmcore.

RHEL's collectors are makedumpfile (the default), cp, scp and cat. kexec-py runs
`makedumpfile OPTS` as `vmcore-copy OPTS` (vmcore-copy takes makedumpfile's options)
unless the user names a real makedumpfile by path (`/usr/sbin/makedumpfile -l -d 31`).
Options vmcore-copy does not implement are refused now, in the first kernel, rather
than at crash time; a few that only tune makedumpfile's own behaviour are dropped with a
warning.
"""
import getopt
import shlex
from dataclasses import dataclass, field

from ..errors import KexecError

# vmcore-copy's makedumpfile-compatible options (csrc/tools/vmcore_copy.c)
SHORT_OPTS = "clzpEFfd:L:"
LONG_OPTS = ("num-threads=", "message-level=", "non-mmap")
# makedumpfile options that change nothing in the dump written: dropped with a warning
IGNORED = {"-D": False, "--cyclic-buffer": True, "--splitblock-size": True,
           "--work-dir": True, "--check-params": False}
OTHER_COLLECTORS = ("cp", "scp", "cat")


class CollectorError(KexecError):
    exit_code = 1


@dataclass
class Collector:
    written: str             # core_collector as written in kdump.conf
    program: str             # "vmcore-copy", a makedumpfile path, cp, scp or cat
    argv: list               # options (no program name, no input/output files)
    dump_level: int = None
    flattened: bool = False
    codec: str = "none"
    elf: bool = False
    warnings: list = field(default_factory=list)

    @property
    def is_makedumpfile_like(self):
        return self.program not in OTHER_COLLECTORS

    def as_dict(self):
        return {"written": self.written, "program": self.program, "options": self.argv,
                "dump_level": self.dump_level, "flattened": self.flattened,
                "codec": self.codec, "elf": self.elf}


def _drop_ignored(words, warnings):
    out, i = [], 0
    while i < len(words):
        w = words[i]
        name = w.split("=", 1)[0]
        if name in IGNORED:
            warnings.append("core_collector: makedumpfile option %s has no effect in "
                            "vmcore-copy; it is left out" % name)
            i += 2 if IGNORED[name] and "=" not in w else 1
            continue
        out.append(w)
        i += 1
    return out


def parse(written, where="kdump.conf", network_or_raw=False):
    """A Collector from a core_collector value. network_or_raw: the target is ssh or raw,
    where the dump is a flattened stream (-F required)."""
    try:
        words = shlex.split(written)
    except ValueError as e:
        raise CollectorError("%s: core_collector: %s" % (where, e)) from None
    if not words:
        raise CollectorError("%s: Invalid kdump config value for option 'core_collector'"
                             % where)
    prog, opts = words[0], words[1:]
    if prog in OTHER_COLLECTORS:
        return Collector(written, prog, opts)
    if prog != "makedumpfile" and not prog.endswith("/makedumpfile") \
            and prog.rsplit("/", 1)[-1] != "vmcore-copy":
        raise CollectorError("%s: core_collector %s is not supported: use makedumpfile "
                             "(run by vmcore-copy), a makedumpfile path, cp, scp or cat"
                             % (where, prog))
    real = prog.startswith("/") and prog.endswith("/makedumpfile")
    col = Collector(written, prog if real else "vmcore-copy", [])
    if not real:
        opts = _drop_ignored(opts, col.warnings)
    try:
        parsed, rest = getopt.gnu_getopt(opts, SHORT_OPTS, LONG_OPTS)
    except getopt.GetoptError as e:
        if real:
            parsed, rest = [], []
        else:
            raise CollectorError(
                "%s: core_collector: makedumpfile option %s is not supported by kexec-py's "
                "vmcore-copy; remove it, or name a real makedumpfile by its path "
                "(core_collector /usr/sbin/makedumpfile ...)" % (where, e.opt and (
                    ("-" if len(e.opt) == 1 else "--") + e.opt) or e.msg)) from None
    if rest and not real:
        raise CollectorError("%s: core_collector: give only options, not files (%s): the "
                             "capture script adds /proc/vmcore and the dump file"
                             % (where, " ".join(rest)))
    col.argv = opts
    for name, value in parsed:
        if name == "-d":
            if not value.isdigit() or int(value) > 31:
                raise CollectorError("%s: core_collector: dump level %r is not 0-31"
                                     % (where, value))
            col.dump_level = int(value)
        elif name == "-F":
            col.flattened = True
        elif name == "-E":
            col.elf = True
        elif name in ("-c", "-l", "-z", "-p"):
            col.codec = {"-c": "zlib", "-l": "lzo", "-z": "zstd", "-p": "snappy"}[name]
    if network_or_raw and not col.flattened:
        raise CollectorError("%s: core_collector must use -F (the flattened format) for "
                             "ssh and raw targets: %s" % (where, written))
    return col
