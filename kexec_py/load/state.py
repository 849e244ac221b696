"""What the running kernel says about kexec: loaded images, the crash reserve, privileges.

All reads go through a root prefix (tests use temporary trees).
"""
from .. import rootfs
from ..errors import ReserveUnreadable

CAP_SYS_BOOT = 22
_HEX = frozenset("0123456789abcdefABCDEF")


def _iomem_line(line):
    """(indent, start, end, name) of a /proc/iomem line "  start-end : name", or None.
    (Parsed by hand: `re` would cost every `kexec -l` a few milliseconds of start-up.)"""
    body = line.lstrip()
    span, sep, name = body.partition(" : ")
    start, dash, end = span.partition("-")
    if not sep or not dash or not start or not end or not _HEX.issuperset(start) \
            or not _HEX.issuperset(end):
        return None
    return len(line) - len(body), int(start, 16), int(end, 16), name


def _flag(root, path):
    value = rootfs.read_first_line(root, path)
    return value == "1"


def image_loaded(root="/", panic=False):
    """True when a kernel (or, with panic, a capture kernel) is loaded."""
    return _flag(root, "/sys/kernel/kexec_crash_loaded" if panic else "/sys/kernel/kexec_loaded")


def iomem_ranges(root="/", name=None):
    """[(start, end_inclusive, name, depth)] from /proc/iomem, optionally only `name`."""
    text = rootfs.read_text(root, "/proc/iomem") or ""
    out = []
    for line in text.split("\n"):
        m = _iomem_line(line)
        if not m:
            continue
        entry = (m[1], m[2], m[3].strip(), m[0] // 2)
        if name is None or entry[2] == name:
            out.append(entry)
    return out


def _sysfs_crash_size(root):
    value = rootfs.read_first_line(root, "/sys/kernel/kexec_crash_size")
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def crash_reserve(root="/"):
    """The capture kernel's reserve: [(start, end_inclusive)] from /proc/iomem's "Crash
    kernel" ranges (the truth, and what kexec-tools reads), low to high; [] when nothing
    is reserved. Raises ReserveUnreadable when there is a reserve but /proc/iomem hides
    its addresses (it shows zeros to users without CAP_SYS_ADMIN), instead of taking the
    zeros for "not reserved"."""
    lines = iomem_ranges(root)
    ranges = sorted((s, e) for s, e, name, _ in lines if name == "Crash kernel" and e > s)
    if ranges:
        return ranges
    masked = bool(lines) and all(s == 0 and e == 0 for s, e, _, _ in lines)
    if masked and (_sysfs_crash_size(root) > 0 or
                   any(name == "Crash kernel" for _, _, name, _ in lines)):
        raise ReserveUnreadable("/proc/iomem (the crash kernel reserve's addresses)")
    return []


def crash_reserve_size(root="/"):
    """Bytes reserved for the capture kernel (0 when none): the sum of crash_reserve(),
    or, when /proc/iomem hides the addresses, /sys/kernel/kexec_crash_size (readable by
    everyone: the size alone is enough to say whether there is a reserve)."""
    try:
        return sum(e - s + 1 for s, e in crash_reserve(root))
    except ReserveUnreadable:
        return _sysfs_crash_size(root)


def kexec_disabled(root="/"):
    """True when kernel.kexec_load_disabled is set (then both syscalls fail with EPERM)."""
    return _flag(root, "/proc/sys/kernel/kexec_load_disabled")


def has_cap_sys_boot():
    """Whether this process may load and execute kernels (CAP_SYS_BOOT effective)."""
    text = rootfs.read_text("/", "/proc/self/status") or ""
    for line in text.split("\n"):
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_BOOT & 1)
    return False
