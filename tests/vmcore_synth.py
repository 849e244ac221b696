"""Synthetic ELF vmcores shaped like /proc/vmcore, for tests and benchmarks.

A Synth holds RAM ranges (byte addresses, not necessarily page aligned), a kind for every
page frame, an optional kernel-text PT_LOAD that repeats part of RAM (as on x86_64), and
writes an ELF64 ET_CORE file: PT_NOTE first (two NT_PRSTATUS and a VMCOREINFO note), then
one PT_LOAD per range, with the segments' data placed in the file in a shuffled order
(p_offset is not in p_paddr order, like the kexec_load backup region) and every p_offset
congruent to p_paddr modulo the page size, as the kernel lays them out.

Page kinds: zero, text (compressible words), random (incompressible), sparse (zero but
one byte, at a position that moves from frame to frame), uts (the kernel's init_uts_ns).
Every non-zero page carries its frame number, so no two are alike.

    s = Synth.standard()          # the test layout (holes, zero runs 250..262, ...)
    s.write(path)
    s.page(pfn)                   # what frame pfn holds (zeros outside RAM)
    s.ram_spans()                 # [(start, end)] byte ranges that are RAM
"""
import os
import random
import struct

PAGE = 4096
KINDS = ("zero", "text", "random", "sparse", "uts", "pgtable")
ZERO, TEXT, RANDOM, SPARSE, UTS, PGTABLE = range(6)
KERNEL_TEXT_VADDR = 0xffffffff81000000
DIRECT_MAP = 0xffff888000000000
RELEASE = "6.1.0-synthetic"

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
NHDR = struct.Struct("<III")

WORDS = ("the of and to in is that for it as was with be by on not he this are or his "
         "from at which but have an they you were her she there been one all we their "
         "kernel page memory struct list_head spinlock task mutex inode dentry socket "
         "buffer cpu node zone slab vma anon file cache lru refcount 0x0 0xffff8880 "
         "NULL -ENOMEM return if else while for goto out err").split()


def _note(name, ntype, desc):
    name_b = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return NHDR.pack(len(name_b), len(desc), ntype) + pad(name_b) + pad(desc)


class Synth:
    def __init__(self, page_size=PAGE, seed=1, pool=64):
        self.page_size = page_size
        self.seed = seed
        self.ranges = []
        self.kinds = bytearray()
        self.text_segment = None         # (paddr, size) repeated as kernel text
        self.uts_pfn = None
        self._pgt = {}                   # pfn -> page table page
        rng = random.Random(seed)
        self._text = [self._text_page(rng) for _ in range(pool)]
        self._random = [rng.randbytes(page_size) for _ in range(pool)]
        self._zero = bytes(page_size)

    # ---- building ----
    def _text_page(self, rng):
        out, size = [], 0
        while size < self.page_size:
            w = rng.choice(WORDS)
            out.append(w)
            size += len(w) + 1
        return " ".join(out).encode().ljust(self.page_size, b" ")[:self.page_size]

    def add_range(self, start, end, runs=()):
        """RAM [start, end); runs = [(kind, count), ...] from its first frame on (the
        rest stays text)."""
        self.ranges.append((start, end))
        self.ranges.sort()
        first, last = start // self.page_size, (end - 1) // self.page_size
        if len(self.kinds) <= last:
            self.kinds.extend(bytes([TEXT]) * (last + 1 - len(self.kinds)))
        pfn = first
        for kind, count in runs:
            for _ in range(count):
                if pfn > last:
                    raise ValueError("runs overflow the range")
                self.kinds[pfn] = kind
                pfn += 1
        return self

    def set_kind(self, pfn, kind):
        self.kinds[pfn] = kind

    def kernel_text(self, paddr, size):
        """A second PT_LOAD at KERNEL_TEXT_VADDR repeating RAM [paddr, paddr+size); a
        utsname is planted in its second page (SYMBOL(init_uts_ns) points at it)."""
        self.text_segment = (paddr, size)
        self.uts_pfn = paddr // self.page_size + 1
        self.kinds[self.uts_pfn] = UTS
        self._page_tables(paddr, size)
        return self

    def _page_tables(self, paddr, size):
        """4-level x86_64 tables in text pages 2..5 mapping the kernel text (4 KiB pages),
        so that tools that translate SYMBOL(init_uts_ns) by walking init_top_pgt can."""
        ps = self.page_size
        base = paddr // ps + 2
        va = KERNEL_TEXT_VADDR
        idx = ((va >> 39) & 511, (va >> 30) & 511, (va >> 21) & 511)
        for level in range(3):
            table = bytearray(ps)
            struct.pack_into("<Q", table, idx[level] * 8, (base + level + 1) * ps | 0x63)
            self._pgt[base + level] = bytes(table)
        pte = bytearray(ps)
        for i in range(min(512, size // ps)):
            struct.pack_into("<Q", pte, i * 8, (paddr + i * ps) | 0x63)
        self._pgt[base + 3] = bytes(pte)
        for pfn in self._pgt:
            self.kinds[pfn] = PGTABLE
        self.pgt_vaddr = KERNEL_TEXT_VADDR + 2 * ps

    # ---- contents ----
    def _uts(self):
        fields = (b"Linux", b"synth-host", RELEASE.encode(), b"#1 SMP PREEMPT_DYNAMIC",
                  b"x86_64", b"(none)")
        return struct.pack("<I", 3) + b"".join(f.ljust(65, b"\0") for f in fields)

    def page(self, pfn):
        """The frame's whole content (a frame partly outside RAM reads zeros there)."""
        kind = self.kinds[pfn] if pfn < len(self.kinds) else ZERO
        ps = self.page_size
        stamp = struct.pack("<Q", pfn)
        if kind == ZERO:
            data = self._zero
        elif kind == TEXT:
            t = self._text[pfn % len(self._text)]
            data = t[:24] + stamp + t[32:]
        elif kind == RANDOM:
            data = stamp + self._random[pfn % len(self._random)][8:]
        elif kind == SPARSE:
            pos = (pfn * 97) % ps
            data = self._zero[:pos] + b"\x5a" + self._zero[pos + 1:]
        elif kind == PGTABLE:
            data = self._pgt[pfn]
        else:
            data = (b"\0" * 0x100 + self._uts()).ljust(0x800, b"\0")
            data = (data + struct.pack("<Q", 0xffffea0000000000)).ljust(ps, b"\0")
        return self._clip(pfn, data)

    def _clip(self, pfn, data):
        ps = self.page_size
        a, b = pfn * ps, (pfn + 1) * ps
        for start, end in self.ranges:
            if start <= a and end >= b:
                return data
        out = bytearray(ps)
        for start, end in self.ranges:
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                out[lo - a:hi - a] = data[lo - a:hi - a]
        return bytes(out)

    def read(self, paddr, size):
        """Bytes of physical memory (RAM only: callers stay inside ram_spans())."""
        ps = self.page_size
        out = bytearray()
        pfn = paddr // ps
        while len(out) < size + (paddr % ps):
            out += self.page(pfn)
            pfn += 1
        return bytes(out[paddr % ps:paddr % ps + size])

    def ram_spans(self):
        return list(self.ranges)

    def frames(self):
        """Sorted frame numbers that hold some RAM."""
        ps = self.page_size
        seen = set()
        for start, end in self.ranges:
            seen.update(range(start // ps, (end - 1) // ps + 1))
        return sorted(seen)

    def zero_frames(self):
        return [p for p in self.frames() if not any(self.page(p))]

    # ---- the file ----
    def vmcoreinfo(self):
        lines = ["OSRELEASE=%s" % RELEASE, "PAGESIZE=%d" % self.page_size,
                 "CRASHTIME=1700000000", "KERNELOFFSET=0", "NUMBER(pgtable_l5_enabled)=0",
                 ]
        pgt = getattr(self, "pgt_vaddr", KERNEL_TEXT_VADDR + 0x1000000)
        lines += ["SYMBOL(swapper_pg_dir)=%x" % pgt, "SYMBOL(init_top_pgt)=%x" % pgt]
        if self.text_segment:
            paddr = self.text_segment[0]
            lines += ["NUMBER(phys_base)=%d" % (paddr - 0x1000000),
                      "SYMBOL(init_uts_ns)=%x" % (KERNEL_TEXT_VADDR + self.page_size + 0x100),
                      "OFFSET(uts_namespace.name)=4",
                      "SYMBOL(_stext)=%x" % KERNEL_TEXT_VADDR,
                      # FLATMEM struct page facts: makedumpfile wants a memory model
                      # even at dump level 1 (it never reads a struct page there)
                      "SYMBOL(mem_map)=%x" % (KERNEL_TEXT_VADDR + self.page_size + 0x800),
                      "SIZE(page)=64", "OFFSET(page.flags)=0", "OFFSET(page._refcount)=52",
                      "OFFSET(page.mapping)=24", "OFFSET(page.lru)=8",
                      "OFFSET(page._mapcount)=48", "OFFSET(page.private)=40",
                      "OFFSET(page.compound_head)=8"]
        return ("\n".join(lines) + "\n").encode()

    def notes(self):
        prstatus = bytes(336)
        return (_note("CORE", 1, prstatus) + _note("CORE", 1, prstatus) +
                _note("VMCOREINFO", 0, self.vmcoreinfo()))

    def segments(self):
        """(vaddr, paddr, size) for each PT_LOAD, kernel text first as the kernel does."""
        segs = []
        if self.text_segment:
            paddr, size = self.text_segment
            segs.append((KERNEL_TEXT_VADDR, paddr, size))
        segs += [(DIRECT_MAP + s, s, e - s) for s, e in self.ranges]
        return segs

    def write(self, path, shuffle=True):
        ps = self.page_size
        notes = self.notes()
        segs = self.segments()
        nph = 1 + len(segs)
        notes_off = -(-(EHDR.size + nph * PHDR.size) // ps) * ps
        pos = notes_off + len(notes)
        order = list(range(len(segs)))
        if shuffle:
            random.Random(self.seed).shuffle(order)
        offsets = {}
        for i in order:
            vaddr, paddr, size = segs[i]
            pos = -(-pos // ps) * ps + paddr % ps
            offsets[i] = pos
            pos += size
        with open(path, "wb") as f:
            f.write(EHDR.pack(b"\x7fELF\x02\x01\x01".ljust(16, b"\0"), 4, 62, 1, 0,
                              EHDR.size, 0, 0, EHDR.size, PHDR.size, nph, 0, 0, 0))
            f.write(PHDR.pack(4, 0, notes_off, 0, 0, len(notes), len(notes), 0))
            for i, (vaddr, paddr, size) in enumerate(segs):
                f.write(PHDR.pack(1, 7, offsets[i], vaddr, paddr, size, size, 0))
            f.seek(notes_off)
            f.write(notes)
            for i in order:
                f.seek(offsets[i])
                self._write_segment(f, *segs[i][1:])
            f.truncate(pos)
        return path

    def _write_segment(self, f, paddr, size):
        ps = self.page_size
        end = paddr + size
        pfn = paddr // ps
        chunk = []
        while pfn * ps < end:
            data = self.page(pfn)
            lo, hi = max(paddr, pfn * ps) - pfn * ps, min(end, (pfn + 1) * ps) - pfn * ps
            chunk.append(data if (lo, hi) == (0, ps) else data[lo:hi])
            pfn += 1
            if len(chunk) >= 256:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))

    # ---- layouts ----
    @classmethod
    def standard(cls, seed=1):
        """The test layout: a low range ending mid-frame (0x9fc00), zero runs of every
        length from 250 to 262 and at both ends of a range, incompressible and sparse
        pages, a hole, a range starting mid-frame, and a kernel-text PT_LOAD."""
        s = cls(seed=seed)
        low = [(TEXT, 3), (ZERO, 5), (RANDOM, 4), (SPARSE, 6), (TEXT, 20), (ZERO, 40)]
        s.add_range(0x1000, 0x9fc00, low)
        runs = [(ZERO, 300), (TEXT, 1)]
        for n in range(250, 263):
            runs += [(ZERO, n), (TEXT if n % 2 else RANDOM, 1)]
        runs += [(SPARSE, 20), (RANDOM, 30), (TEXT, 40), (ZERO, 256)]
        total = sum(c for _, c in runs)
        s.add_range(0x100000, 0x100000 + total * PAGE, runs)
        base = 0x10000000
        s.add_range(base, base + 0x300000, [(TEXT, 200), (ZERO, 100), (RANDOM, 200),
                                            (ZERO, 255), (TEXT, 13)])
        s.add_range(0x20000800, 0x20040000, [(TEXT, 64)])
        s.kernel_text(0x1000000, 0x80000)
        return s

    @classmethod
    def mixed(cls, size, zero=45, text=40, seed=7, page_size=PAGE):
        """One big RAM range below 4 GiB plus the rest above, in runs of random length
        (1..512 frames) drawn zero / text / random in the given percentages."""
        s = cls(seed=seed, page_size=page_size)
        rng = random.Random(seed)
        frames = size // page_size
        kinds = bytearray()
        while len(kinds) < frames:
            r = rng.randrange(100)
            kind = ZERO if r < zero else TEXT if r < zero + text else RANDOM
            kinds += bytes([kind]) * rng.randint(1, 512)
        del kinds[frames:]
        low = min(frames, (0xc0000000 - 0x100000) // page_size)
        s.kinds = bytearray(0x100000 // page_size)
        s.ranges = [(0x100000, 0x100000 + low * page_size)]
        s.kinds += kinds[:low]
        if frames > low:
            gap = 0x100000000 // page_size - len(s.kinds)
            s.kinds += bytes(gap) + kinds[low:]
            s.ranges.append((0x100000000, 0x100000000 + (frames - low) * page_size))
        s.kernel_text(0x1000000, 0x1000000)
        return s


def mix_summary(s):
    """{kind: frames} over RAM frames."""
    counts = dict.fromkeys(KINDS, 0)
    for p in s.frames():
        counts[KINDS[s.kinds[p]]] += 1
    return counts


if __name__ == "__main__":
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/synthetic.vmcore"
    Synth.standard().write(out)
    print(out, os.path.getsize(out))
