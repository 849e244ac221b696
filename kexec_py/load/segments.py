"""Placing kexec_load segments in physical memory.

A segment is a buffer copied to [mem, mem + memsz) at exec time; mem and memsz are page
aligned, segments never overlap, and the kernel takes at most 16. The plan hands out
holes from a list of allowed RAM ranges, bottom-up or top-down, with an alignment and
address limits per segment.
"""
from dataclasses import dataclass

from ..errors import KexecError
from .memory import MemRange, subtract

PAGE_SIZE = 4096
MAX_SEGMENTS = 16
ADDR_MAX = (1 << 64) - 1


def align_up(x, a):
    return (x + a - 1) // a * a


def align_down(x, a):
    return x // a * a


@dataclass
class Segment:
    name: str
    data: bytes
    mem: int
    memsz: int

    @property
    def end(self):
        return self.mem + self.memsz - 1


class SegmentPlan:
    """Segments placed so far inside the allowed RAM ranges."""

    def __init__(self, ram, where="RAM"):
        self.ram = sorted(r for r in ram if r.size >= PAGE_SIZE)
        self.where = where
        self.segments = []

    def free(self):
        used = [MemRange(s.mem, s.end) for s in self.segments]
        return subtract(self.ram, used)

    def _fits(self, addr, memsz, lo, hi):
        return addr >= lo and addr + memsz - 1 <= hi

    def find(self, memsz, align=PAGE_SIZE, min_addr=0, max_addr=ADDR_MAX, top_down=False,
             prefer=None):
        """An address for memsz bytes, or None."""
        align = max(align, PAGE_SIZE)
        free = self.free()
        if prefer is not None and prefer % align == 0:
            for r in free:
                lo, hi = max(r.start, min_addr), min(r.end, max_addr)
                if self._fits(prefer, memsz, lo, hi):
                    return prefer
        for r in (reversed(free) if top_down else free):
            lo, hi = max(r.start, min_addr), min(r.end, max_addr)
            if hi < lo:
                continue
            addr = align_down(hi - memsz + 1, align) if top_down else align_up(lo, align)
            if self._fits(addr, memsz, lo, hi):
                return addr
        return None

    def add(self, name, data, memsz=0, align=PAGE_SIZE, min_addr=0, max_addr=ADDR_MAX,
            top_down=False, prefer=None):
        """Place a segment; memsz defaults to the data length, rounded up to a page."""
        if len(self.segments) >= MAX_SEGMENTS:
            raise KexecError("kexec_load takes at most %d segments; the %s segment would be "
                             "number %d" % (MAX_SEGMENTS, name, len(self.segments) + 1))
        memsz = align_up(max(memsz, len(data), 1), PAGE_SIZE)
        addr = self.find(memsz, align, min_addr, max_addr, top_down, prefer)
        if addr is None:
            raise KexecError("no room for the %s segment (%d KiB, %#x-aligned) in %s"
                             % (name, memsz >> 10, align, self.where))
        seg = Segment(name, bytes(data), addr, memsz)
        self.segments.append(seg)
        return seg

    def check(self):
        """Assert the kernel's rules: page alignment, no overlap, at most 16."""
        segs = sorted(self.segments, key=lambda s: s.mem)
        if len(segs) > MAX_SEGMENTS:
            raise KexecError("%d segments; kexec_load takes at most %d"
                             % (len(segs), MAX_SEGMENTS))
        for a, b in zip(segs, segs[1:]):
            if a.end >= b.mem:
                raise KexecError("segments %s and %s overlap" % (a.name, b.name))
        for s in segs:
            if s.mem % PAGE_SIZE or s.memsz % PAGE_SIZE or len(s.data) > s.memsz:
                raise KexecError("segment %s is not page aligned" % s.name)
        return segs


def format_table(segments):
    """The segment table as --dry-run and -d print it."""
    lines = ["nr_segments = %d" % len(segments)]
    for i, s in enumerate(segments):
        lines.append("segment[%d]: %-10s bufsz=%#-10x mem=%#-12x memsz=%#x"
                     % (i, s.name, len(s.data), s.mem, s.memsz))
    return lines
