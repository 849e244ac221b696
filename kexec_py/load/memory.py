"""The machine's physical memory map: firmware e820, /proc/iomem, the crash reserve.

/sys/firmware/memmap is the firmware's map as the kernel received it (kexec hands it on
unchanged to the next kernel); /proc/iomem is the running kernel's view, the fallback,
and the only place that names "Crash kernel", "Kernel code" and System RAM as the kernel
uses it.
"""
import os
from dataclasses import dataclass

from .. import rootfs
from ..errors import KexecError
from . import state

# e820 types (arch/x86/include/asm/e820/types.h)
E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4
E820_UNUSABLE = 5
E820_PMEM = 7
E820_PRAM = 12
E820_SOFT_RESERVED = 0xEFFFFFFF

TYPE_BY_NAME = {
    "System RAM": E820_RAM,
    "Reserved": E820_RESERVED,
    "reserved": E820_RESERVED,
    "ACPI Tables": E820_ACPI,
    "ACPI Non-volatile Storage": E820_NVS,
    "Unusable memory": E820_UNUSABLE,
    "Persistent Memory": E820_PMEM,
    "Persistent Memory (legacy)": E820_PRAM,
    "Soft Reserved": E820_SOFT_RESERVED,
}
NAME_BY_TYPE = {E820_RAM: "RAM", E820_RESERVED: "reserved", E820_ACPI: "ACPI",
                E820_NVS: "ACPI NVS", E820_UNUSABLE: "unusable", E820_PMEM: "pmem",
                E820_PRAM: "pmem (legacy)", E820_SOFT_RESERVED: "soft reserved"}


@dataclass(frozen=True, order=True)
class MemRange:
    """[start, end] inclusive, with its e820 type."""

    start: int
    end: int
    type: int = E820_RAM

    @property
    def size(self):
        return self.end - self.start + 1

    def __str__(self):
        return "%016x-%016x (%s)" % (self.start, self.end,
                                     NAME_BY_TYPE.get(self.type, str(self.type)))


def read_firmware_memmap(root="/"):
    """The firmware e820 from /sys/firmware/memmap/N/{start,end,type}, sorted; [] if absent."""
    base = rootfs.join(root, "/sys/firmware/memmap")
    try:
        names = os.listdir(base)
    except OSError:
        return []
    out = []
    for n in names:
        d = "/sys/firmware/memmap/" + n
        start = rootfs.read_first_line(root, d + "/start")
        end = rootfs.read_first_line(root, d + "/end")
        kind = rootfs.read_first_line(root, d + "/type")
        if start is None or end is None or kind is None:
            continue
        out.append(MemRange(int(start, 16), int(end, 16), TYPE_BY_NAME.get(kind, E820_RESERVED)))
    return sorted(out)


def read_iomem_memmap(root="/"):
    """Top-level /proc/iomem ranges that are memory (RAM, reserved, ACPI...), sorted."""
    out = []
    for start, end, name, depth in state.iomem_ranges(root):
        if depth == 0 and name in TYPE_BY_NAME:
            out.append(MemRange(start, end, TYPE_BY_NAME[name]))
    return sorted(out)


def memory_map(root="/"):
    """The e820 map to hand to the next kernel: firmware memmap, else /proc/iomem."""
    ranges = read_firmware_memmap(root) or read_iomem_memmap(root)
    if not ranges:
        raise KexecError("cannot read the memory map: neither /sys/firmware/memmap nor "
                         "/proc/iomem lists any memory under %s" % root)
    return ranges


def system_ram(root="/"):
    """The running kernel's System RAM ranges (/proc/iomem, top level)."""
    return [r for r in read_iomem_memmap(root) if r.type == E820_RAM]


def crash_ranges(root="/"):
    """All "Crash kernel" ranges, low to high (state.crash_reserve: raises
    ReserveUnreadable when /proc/iomem hides them)."""
    return [MemRange(s, e) for s, e in state.crash_reserve(root)]


def named_range(root, name):
    """The first /proc/iomem range with this name (e.g. "Kernel code"), or None."""
    for s, e, _, _ in state.iomem_ranges(root, name):
        if e > s:
            return MemRange(s, e)
    return None


def subtract(ranges, holes):
    """ranges minus holes (both lists of MemRange); types are kept, result sorted."""
    out = []
    for r in ranges:
        pieces = [r]
        for h in holes:
            nxt = []
            for p in pieces:
                if h.end < p.start or h.start > p.end:
                    nxt.append(p)
                    continue
                if h.start > p.start:
                    nxt.append(MemRange(p.start, h.start - 1, p.type))
                if h.end < p.end:
                    nxt.append(MemRange(h.end + 1, p.end, p.type))
            pieces = nxt
        out.extend(pieces)
    return sorted(out)


def intersect(ranges, window):
    """The parts of ranges inside window (a MemRange)."""
    out = []
    for r in ranges:
        s, e = max(r.start, window.start), min(r.end, window.end)
        if s <= e:
            out.append(MemRange(s, e, r.type))
    return out
