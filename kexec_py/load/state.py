"""What the running kernel says about kexec: loaded images, the crash reserve, privileges.

All reads go through a root prefix (tests use temporary trees).
"""
import re

from .. import rootfs

CAP_SYS_BOOT = 22
_IOMEM_LINE = re.compile(r"^(\s*)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$")


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
        m = _IOMEM_LINE.match(line)
        if not m:
            continue
        entry = (int(m.group(2), 16), int(m.group(3), 16), m.group(4).strip(),
                 len(m.group(1)) // 2)
        if name is None or entry[2] == name:
            out.append(entry)
    return out


def crash_reserve_size(root="/"):
    """Bytes reserved for the capture kernel (0 when none).

    /proc/iomem's "Crash kernel" ranges are the truth (also what kexec-tools reads); they
    read as zeros to non-root users, so /sys/kernel/kexec_crash_size is the fallback.
    """
    ranges = iomem_ranges(root, "Crash kernel")
    total = sum(end - start + 1 for start, end, _, _ in ranges if end > start)
    if total:
        return total
    value = rootfs.read_first_line(root, "/sys/kernel/kexec_crash_size")
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


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
