"""/etc/sysconfig/kdump: shell variable assignments that kdumpctl reads.

The file is sourced by a shell on RHEL; kexec-py reads it without running anything:
`KEY=value`, `KEY="value"`, `KEY='value'` (optionally after `export`), comments and blank
lines. Anything else - a command, an unterminated quote, a `$(...)` - is a syntax error
that names the file and line (a shell would run it or fail half-way).
"""
import re
import shlex
from dataclasses import dataclass, field

from .. import rootfs
from ..errors import FormatError

SYSCONFIG_PATH = "/etc/sysconfig/kdump"
# Debian's kdump-tools keeps its settings in /etc/default/kdump-tools; kexec-py's own
# installs use the RHEL path on every distribution.

# x86_64 defaults (RHEL kdump-utils' gen-kdump-sysconfig.sh)
DEFAULTS = {
    "KDUMP_KERNELVER": "",
    "KDUMP_COMMANDLINE": "",
    "KDUMP_COMMANDLINE_REMOVE": "hugepages hugepagesz slub_debug quiet log_buf_len swiotlb "
                                "hugetlb_cma ignition.firstboot cma",
    "KDUMP_COMMANDLINE_APPEND": "novmcoredd hugetlb_cma=0 kfence.sample_interval=0 "
                                "initramfs_options=size=90% irqpoll nr_cpus=1 reset_devices "
                                "cgroup_disable=memory mce=off numa=off udev.children-max=2 "
                                "panic=10 acpi_no_memhotplug transparent_hugepage=never "
                                "nokaslr hest_disable cma=0 pcie_ports=compat",
    "KEXEC_ARGS": "-s",
    "KDUMP_BOOTDIR": "/boot",
    "KDUMP_IMG": "vmlinuz",
    "KDUMP_IMG_EXT": "",
    "VMCORE_CREATION_NOTIFICATION": "yes",
    "KDUMP_STDLOGLVL": "",
    "KDUMP_SYSLOGLVL": "",
    "KDUMP_KMSGLOGLVL": "",
}
LOG_LEVEL_KEYS = ("KDUMP_STDLOGLVL", "KDUMP_SYSLOGLVL", "KDUMP_KMSGLOGLVL")

_ASSIGN = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass
class Sysconfig:
    path: str
    values: dict = field(default_factory=lambda: dict(DEFAULTS))
    present: bool = False    # whether the file existed
    lines: dict = field(default_factory=dict)

    def get(self, key):
        return self.values.get(key, "")

    def __getitem__(self, key):
        return self.values.get(key, "")


def _value(text, path, lineno):
    """The shell word(s) after `=`: quotes removed, no expansions allowed."""
    if "$(" in text or "`" in text:
        raise FormatError(path, "command substitution is not supported in kdump's "
                                "sysconfig (kexec-py reads it without a shell)", line=lineno)
    try:
        words = shlex.split(text, comments=True, posix=True)
    except ValueError as e:
        raise FormatError(path, "syntax error: %s" % e, line=lineno) from None
    if len(words) > 1:
        raise FormatError(path, "syntax error: a value with spaces must be quoted "
                                "(KEY=\"a b\")", line=lineno)
    value = words[0] if words else ""
    if "$" in value and not text.lstrip().startswith("'"):
        raise FormatError(path, "variable expansion ($...) is not supported in kdump's "
                                "sysconfig", line=lineno)
    return value


def parse(text, path=SYSCONFIG_PATH):
    cfg = Sysconfig(path=path, present=True)
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ASSIGN.match(line)
        if not m:
            raise FormatError(path, "syntax error: expected KEY=value, found %r"
                              % line[:60], line=lineno)
        key, rest = m.group(1), m.group(2)
        cfg.values[key] = _value(rest, path, lineno)
        cfg.lines[key] = lineno
    for key in LOG_LEVEL_KEYS:
        value = cfg.values.get(key, "")
        if value and not (value.isdigit() and 0 <= int(value) <= 4):
            raise FormatError(path, "%s must be a log level from 0 to 4, not %r"
                              % (key, value), line=cfg.lines.get(key))
    return cfg


def load(root="/", path=SYSCONFIG_PATH):
    """The sysconfig under root; a missing file gives the defaults (as RHEL does)."""
    full = rootfs.join(root, path)
    try:
        with open(full, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return Sysconfig(path=full)
    except OSError as e:
        err = FormatError(full, "cannot read: %s" % e.strerror)
        raise err from None
    return parse(text, full)
