"""Synthetic ELF vmcores shaped like /proc/vmcore, for tests and benchmarks.

A Synth holds RAM ranges (byte addresses, not necessarily page aligned), a kind for every
page frame, an optional kernel-text PT_LOAD that repeats part of RAM (as on x86_64), and
writes an ELF64 ET_CORE file: PT_NOTE first (two NT_PRSTATUS and a VMCOREINFO note), then
one PT_LOAD per range, with the segments' data placed in the file in a shuffled order
(p_offset is not in p_paddr order, like the kexec_load backup region) and every p_offset
congruent to p_paddr modulo the page size, as the kernel lays them out.

Page kinds: zero, text (compressible words), random (incompressible), sparse (zero but
one byte, at a position that moves from frame to frame), uts (the kernel's init_uts_ns),
pgtable (x86_64 page tables), data (bytes a test planted with plant()).
Every non-zero page carries its frame number, so no two are alike.

    s = Synth.standard()          # the test layout (holes, zero runs 250..262, ...)
    s.write(path)
    s.page(pfn)                   # what frame pfn holds (zeros outside RAM)
    s.ram_spans()                 # [(start, end)] byte ranges that are RAM
"""
import bisect
import os
import random
import struct

PAGE = 4096
KINDS = ("zero", "text", "random", "sparse", "uts", "pgtable", "data")
ZERO, TEXT, RANDOM, SPARSE, UTS, PGTABLE, DATA = range(7)
KERNEL_MAP = 0xffffffff80000000
PTE_ADDR = 0x000ffffffffff000
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
        self._data = {}                  # pfn -> planted page (kind DATA)
        self.levels = 4
        self.extra_info = []             # more VMCOREINFO lines
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
        self._pgt_root = base

    def five_level(self):
        """Switch to 5-level paging: a new top table in kernel-text page 6 whose entry for
        the kernel text points at the 4-level root (now a P4D)."""
        ps = self.page_size
        paddr = self.text_segment[0]
        root = paddr // ps + 6
        table = bytearray(ps)
        struct.pack_into("<Q", table, ((KERNEL_TEXT_VADDR >> 48) & 511) * 8,
                         self._pgt_root * ps | 0x63)
        self._pgt[root] = bytes(table)
        self.kinds[root] = PGTABLE
        self._pgt_root = root
        self.pgt_vaddr = KERNEL_TEXT_VADDR + 6 * ps
        self.levels = 5
        return self

    def map_virtual(self, vaddr, paddr, shift, table_pfns):
        """Map vaddr -> paddr in the page tables with one page of 1 << shift bytes (12, 21
        or 30); new tables take frames from the iterator table_pfns (RAM frames)."""
        ps = self.page_size
        table = self._pgt_root
        for level in range(self.levels - 1, -1, -1):
            at = 12 + 9 * level
            idx = (vaddr >> at) & 511
            page = bytearray(self._pgt[table])
            if at == shift:
                struct.pack_into("<Q", page, idx * 8, paddr | 0x63 | (0x80 if shift > 12 else 0))
                self._pgt[table] = bytes(page)
                return self
            entry, = struct.unpack_from("<Q", page, idx * 8)
            if not entry & 1:
                new = next(table_pfns)
                self._pgt[new] = bytes(ps)
                self.kinds[new] = PGTABLE
                entry = new * ps | 0x63
                struct.pack_into("<Q", page, idx * 8, entry)
                self._pgt[table] = bytes(page)
            table = (entry & PTE_ADDR) // ps
        raise ValueError("shift %d is not a page size" % shift)

    def plant(self, paddr, data):
        """Put bytes at a physical address (the frames become kind DATA)."""
        ps = self.page_size
        while data:
            pfn, at = divmod(paddr, ps)
            page = bytearray(self._data.get(pfn, bytes(ps)))
            n = min(len(data), ps - at)
            page[at:at + n] = data[:n]
            self._data[pfn] = bytes(page)
            self.kinds[pfn] = DATA
            data, paddr = data[n:], paddr + n

    def kernel_paddr(self, vaddr):
        """Physical address of a kernel-text virtual address."""
        return vaddr - KERNEL_MAP + self.text_segment[0] - 0x1000000

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
        elif kind == DATA:
            data = self._data[pfn]
        else:
            data = (b"\0" * 0x100 + self._uts()).ljust(0x800, b"\0")
            data = (data + struct.pack("<Q", 0xffffea0000000000)).ljust(ps, b"\0")
        return self._clip(pfn, data)

    def _overlapping(self, a, b):
        """The RAM ranges that overlap [a, b) (ranges are sorted and disjoint)."""
        key = (len(self.ranges), self.ranges[-1] if self.ranges else None)
        if getattr(self, "_starts_key", None) != key:
            self._starts = [start for start, _ in self.ranges]
            self._starts_key = key
        i = bisect.bisect_left(self._starts, b)
        out = []
        while i > 0 and self.ranges[i - 1][1] > a:
            out.append(self.ranges[i - 1])
            i -= 1
        return out

    def _clip(self, pfn, data):
        ps = self.page_size
        a, b = pfn * ps, (pfn + 1) * ps
        near = self._overlapping(a, b)
        for start, end in near:
            if start <= a and end >= b:
                return data
        out = bytearray(ps)
        for start, end in near:
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
                 "CRASHTIME=1700000000", "KERNELOFFSET=0",
                 "NUMBER(pgtable_l5_enabled)=%d" % (self.levels == 5)]
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
        lines += self.extra_info
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

    def write_qemu(self, path, vmcoreinfo=True, vaddr="paddr", cpus=2, xnum=False):
        """The file QEMU's dump-guest-memory (paging=false, ELF) writes for this memory:
        per vCPU a CORE NT_PRSTATUS and a QEMU note, then the guest's VMCOREINFO note
        (vmcoreinfo=False: a guest without -device vmcoreinfo), one PT_LOAD per RAM range
        with no kernel-text segment, p_vaddr the physical address (vaddr="paddr") or 0,
        the data packed right after the notes (not page aligned). xnum=True writes
        e_phnum = PN_XNUM with the count in section header 0's sh_info, as QEMU and
        makedumpfile do past 65534 segments (any count here)."""
        notes = b"".join(_note("CORE", 1, struct.pack("<I", i + 1).rjust(336, b"\0"))
                         for i in range(cpus))
        notes += b"".join(_note("QEMU", 0, struct.pack("<II", 1, 0x1b0) + bytes(0x1a8))
                          for _ in range(cpus))
        if vmcoreinfo:
            notes += _note("VMCOREINFO", 0, self.vmcoreinfo())
        segs = [(s if vaddr == "paddr" else 0, s, e - s) for s, e in self.ranges]
        nph = 1 + len(segs)
        phnum, shoff, shnum = (0xFFFF, EHDR.size, 1) if xnum else (nph, 0, 0)
        phoff = EHDR.size + (64 if xnum else 0)
        pos = phoff + nph * PHDR.size
        notes_off, pos = pos, pos + len(notes)
        with open(path, "wb") as f:
            f.write(EHDR.pack(b"\x7fELF\x02\x01\x01".ljust(16, b"\0"), 4, 62, 1, 0, phoff,
                              shoff, 0, EHDR.size, PHDR.size, phnum, 64 if xnum else 0,
                              shnum, 0))
            if xnum:   # section header 0: SHN_UNDEF with sh_info = the real e_phnum
                f.write(struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, nph, 0, 0))
            f.write(PHDR.pack(4, 0, notes_off, 0, 0, len(notes), len(notes), 0))
            offsets = []
            for v, paddr, size in segs:
                f.write(PHDR.pack(1, 0, pos, v, paddr, size, size, 0))
                offsets.append(pos)
                pos += size
            f.write(notes)
            for (v, paddr, size), off in zip(segs, offsets):
                assert f.tell() == off
                self._write_segment(f, paddr, size)
        return path

    def write_xc_core(self, path, pv=False, shuffle=True, pad=0, cpus=2, magic=None):
        """This memory as `xl dump-core` writes it (write_xc_core below); for PV the
        page-table pages hold machine frames."""
        def page(pfn):
            data = self.page(pfn)
            return _pv_table(data) if pv and self.kinds[pfn] == PGTABLE else data
        return write_xc_core(path, self.frames(), page, pv=pv,
                             seed=self.seed + 17 if shuffle else None, pad=pad, cpus=cpus,
                             magic=magic, page_size=self.page_size)

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


def write_xc_core(path, frames, page, pv=False, seed=None, pad=0, cpus=2, magic=None,
                  page_size=PAGE):
    """A Xen domain dump (`xl dump-core`, the xc_core format) of the frames given, page(pfn)
    giving each frame's bytes: ELF64 ET_CORE with no program headers; sections .shstrtab,
    .note.Xen (the dump-core header: magic, vCPUs, pages, page size; the Xen version;
    format version 1), .xen_prstatus (one vcpu_guest_context per vCPU),
    .xen_shared_info, .xen_pages and the page map: .xen_pfn (HVM) or .xen_p2m {pfn, gmfn}
    (PV, gmfn = xen_gmfn(pfn)), shuffled with seed (None: in order), with `pad` ~0 entries
    (pages a live dump could not take, their data zeros). No VMCOREINFO: the format has
    none."""
    ps = page_size
    invalid = 2**64 - 1
    order = list(frames)
    if seed is not None:
        random.Random(seed).shuffle(order)
    entries = [(pfn, xen_gmfn(pfn)) for pfn in order] + [(invalid, invalid)] * pad
    if seed is not None and pad:      # the padding among the real entries
        random.Random(seed + 1).shuffle(entries)
    npages = len(entries)
    magic = magic if magic is not None else (0xF00FEBED if pv else 0xF00FEBEE)
    version = struct.pack("<QQ", 4, 17) + b"-synthetic".ljust(16, b"\0")
    version = version.ljust(1272, b"\0") + struct.pack("<Q", ps)
    notes = (_note("Xen", 0x2000000, b"") +
             _note("Xen", 0x2000001, struct.pack("<QQQQ", magic, cpus, npages, ps)) +
             _note("Xen", 0x2000002, version) +
             _note("Xen", 0x2000003, struct.pack("<Q", 1)))
    ctx = 5168                                  # sizeof(vcpu_guest_context) on x86_64
    prstatus = b"".join(struct.pack("<Q", i).ljust(ctx, b"\0") for i in range(cpus))
    if pv:
        pmap = b"".join(struct.pack("<QQ", *e) for e in entries)
    else:
        pmap = b"".join(struct.pack("<Q", e[0]) for e in entries)
    names = ["", ".shstrtab", ".note.Xen", ".xen_prstatus", ".xen_shared_info",
             ".xen_p2m" if pv else ".xen_pfn", ".xen_pages"]
    strtab = b"\0".join(n.encode() for n in names) + b"\0"
    name_off = [strtab.index(n.encode() + b"\0") if n else 0 for n in names]
    shoff = EHDR.size
    pos = shoff + 64 * len(names)
    blobs = [strtab, notes, prstatus, bytes(ps), pmap]
    offs = [0]
    for b in blobs:
        pos = -(-pos // 8) * 8
        offs.append(pos)
        pos += len(b)
    offs.append(-(-pos // ps) * ps)                 # .xen_pages, page aligned
    sizes = [0] + [len(b) for b in blobs] + [npages * ps]
    types = [0, 3, 7, 1, 1, 1, 1]
    ent = [0, 0, 0, ctx, ps, 16 if pv else 8, ps]
    sh = [bytes(64)]
    for i in range(1, len(names)):
        sh.append(struct.pack("<IIQQQQIIQQ", name_off[i], types[i], 0, 0, offs[i],
                              sizes[i], 0, 0, ps if i == 6 else 8, ent[i]))
    with open(path, "wb") as f:
        f.write(EHDR.pack(b"\x7fELF\x02\x01\x01".ljust(16, b"\0"), 4, 62, 1, 0, 0,
                          shoff, 0, EHDR.size, 0, 0, 64, len(names), 1))
        f.write(b"".join(sh))
        for b, off in zip(blobs, offs[1:]):
            f.seek(off)
            f.write(b)
        f.seek(offs[-1])
        chunk = []
        for e in entries:
            chunk.append(bytes(ps) if e[0] == invalid else page(e[0]))
            if len(chunk) >= 256:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
    return path


def xen_gmfn(pfn):
    """The machine frame of a synthetic PV guest's frame: 2 MiB blocks shuffled (XOR of
    the block number) and moved up, so a page table read without the p2m reads the wrong
    frame, while 2 MiB mappings stay machine-contiguous as Xen keeps them."""
    return (((pfn >> 9) ^ 0x15) << 9 | (pfn & 511)) + 0x4000000


def _pv_table(page):
    """A page-table page as a PV guest holds it: present entries name machine frames."""
    out = bytearray(page)
    for i in range(0, len(page), 8):
        e, = struct.unpack_from("<Q", page, i)
        if e & 1:
            frame = (e & PTE_ADDR) >> 12
            struct.pack_into("<Q", out, i, (e & ~PTE_ADDR) | (xen_gmfn(frame) << 12))
    return bytes(out)


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


# ---- kernel logs (docs/formats/printk.md) ----
LOG_VARS = KERNEL_TEXT_VADDR + 8 * PAGE          # kernel variables (text page 8)
LOG_BUF = 0x10000000 + 16 * PAGE                 # log buffers (physical, direct map)


def _direct_map(s):
    """Map the third RAM range's first 2 MiB in the direct map through the page tables
    (kdump files have no PT_LOADs, so readers must walk)."""
    tables = iter(range(0x10000000 // PAGE + 40, 0x10000000 // PAGE + 60))
    s.map_virtual(DIRECT_MAP + 0x10000000, 0x10000000, 21, tables)


def structured_log(s, records, buf_len=8192, first_idx=5000):
    """Plant a 3.5-5.9 log_buf: struct printk_log {u64 ts_nsec; u16 len; u16 text_len;
    u16 dict_len; u8 facility; u8 flags_level} (16 bytes, records 8-aligned) holding
    records = [(ts_nsec, text bytes, dict bytes)], starting at first_idx; a record that
    does not fit before the end leaves a zeroed header (len 0) and goes to index 0."""
    buf = bytearray(b"\xee" * buf_len)   # stale bytes that must never be printed
    idx = first_idx
    for ts, text, dict_ in records:
        size = -(-(16 + len(text) + len(dict_)) // 8) * 8
        if idx + size + 16 > buf_len:
            buf[idx:idx + 16] = bytes(16)
            idx = 0
        buf[idx:idx + 16] = struct.pack("<QHHHBB", ts, size, len(text), len(dict_), 0, 6)
        buf[idx + 16:idx + 16 + len(text) + len(dict_)] = text + dict_
        idx += size
    _direct_map(s)
    s.plant(LOG_BUF, bytes(buf))
    s.plant(s.kernel_paddr(LOG_VARS), struct.pack("<QIIIIII", DIRECT_MAP + LOG_BUF, buf_len,
                                                  0, first_idx, 0, idx, 0))
    s.extra_info += ["SYMBOL(log_buf)=%x" % LOG_VARS, "SYMBOL(log_buf_len)=%x" % (LOG_VARS + 8),
                     "SYMBOL(log_first_idx)=%x" % (LOG_VARS + 16),
                     "SYMBOL(log_next_idx)=%x" % (LOG_VARS + 24),
                     "SIZE(printk_log)=16", "OFFSET(printk_log.ts_nsec)=0",
                     "OFFSET(printk_log.len)=8", "OFFSET(printk_log.text_len)=10"]
    return s


def plain_log(s, text, buf_len=4096):
    """Plant a pre-3.5 character ring: log_buf (a pointer), log_buf_len (u32), log_end
    (u32, the count of characters ever written) and logged_chars (u32, what a reader
    may print: kexec-tools' vmcore-dmesg needs it); text longer than buf_len wraps, and
    only its last buf_len characters survive."""
    buf = bytearray(b"\xee" * buf_len)
    for i, c in enumerate(text):
        buf[i % buf_len] = c
    _direct_map(s)
    s.plant(LOG_BUF, bytes(buf))
    s.plant(s.kernel_paddr(LOG_VARS), struct.pack("<QIII", DIRECT_MAP + LOG_BUF, buf_len,
                                                  len(text), min(len(text), buf_len)))
    s.extra_info += ["SYMBOL(log_buf)=%x" % LOG_VARS, "SYMBOL(log_buf_len)=%x" % (LOG_VARS + 8),
                     "SYMBOL(log_end)=%x" % (LOG_VARS + 12),
                     "SYMBOL(logged_chars)=%x" % (LOG_VARS + 16)]
    return s


LOCKLESS_INFO = [
    "SIZE(printk_ringbuffer)=88", "OFFSET(printk_ringbuffer.desc_ring)=0",
    "OFFSET(printk_ringbuffer.text_data_ring)=48", "OFFSET(prb_desc_ring.count_bits)=0",
    "OFFSET(prb_desc_ring.descs)=8", "OFFSET(prb_desc_ring.infos)=16",
    "OFFSET(prb_desc_ring.head_id)=24", "OFFSET(prb_desc_ring.tail_id)=32",
    "SIZE(prb_desc)=24", "OFFSET(prb_desc.state_var)=0", "OFFSET(prb_desc.text_blk_lpos)=8",
    "OFFSET(prb_data_blk_lpos.begin)=0", "OFFSET(prb_data_blk_lpos.next)=8",
    "SIZE(printk_info)=88", "OFFSET(printk_info.ts_nsec)=8",
    "OFFSET(printk_info.text_len)=16", "OFFSET(prb_data_ring.size_bits)=0",
    "OFFSET(prb_data_ring.data)=8", "OFFSET(atomic_long_t.counter)=0"]


def lockless_log(s, records, count_bits=4, size_bits=12, first_id=1000, first_lpos=3000):
    """Plant a 5.10+ printk_ringbuffer (6.1 x86_64 layout). records = [(ts_nsec, text,
    state)] with consecutive ids from first_id (state 1 committed, 2 finalized, 0 reserved,
    3 reusable, 'stale' = slot holds an older id, 'dataless' = no text block). Blocks are
    {u64 id; text} 8-aligned in a ring of 1 << size_bits bytes; a block that would cross
    the end starts again at 0."""
    count, size = 1 << count_bits, 1 << size_bits
    descs, infos = bytearray(24 * count), bytearray(88 * count)
    data = bytearray(b"\xee" * size)
    lpos = first_lpos
    for i, (ts, text, state) in enumerate(records):
        rid, slot = first_id + i, (first_id + i) % count
        blk = -(-(8 + len(text)) // 8) * 8
        if state == "dataless":
            begin = nxt = 1
        else:
            at = lpos % size
            if at + blk >= size:         # wrap (ending at the end wraps too)
                begin, nxt = lpos, lpos + (size - at) + blk
                at = 0
            else:
                begin, nxt = lpos, lpos + blk
            data[at:at + 8] = struct.pack("<Q", rid)
            data[at + 8:at + 8 + len(text)] = text
            lpos = nxt
        sv_id = rid - count if state == "stale" else rid
        sv_state = 2 if state in ("stale", "dataless") else state
        struct.pack_into("<QQQ", descs, 24 * slot, (sv_state << 62) | sv_id, begin, nxt)
        struct.pack_into("<QQH", infos, 88 * slot, i, ts, len(text))
    base = LOG_BUF
    desc_at, info_at, data_at = base, base + len(descs), base + len(descs) + len(infos)
    rb_at = data_at + size
    rb = bytearray(88)
    struct.pack_into("<IxxxxQQQQ", rb, 0, count_bits, DIRECT_MAP + desc_at,
                     DIRECT_MAP + info_at, first_id + len(records) - 1, first_id)
    struct.pack_into("<IxxxxQ", rb, 48, size_bits, DIRECT_MAP + data_at)
    _direct_map(s)
    for at, blob in ((desc_at, descs), (info_at, infos), (data_at, data), (rb_at, rb)):
        s.plant(at, bytes(blob))
    s.plant(s.kernel_paddr(LOG_VARS), struct.pack("<Q", DIRECT_MAP + rb_at))
    s.extra_info += ["SYMBOL(prb)=%x" % LOG_VARS] + LOCKLESS_INFO
    return s


# ---- struct pages (SPARSEMEM_EXTREME + VMEMMAP, x86_64 6.1 layout) ----
VMEMMAP_BASE = 0xffffea0000000000
MEM_SECTION_ROOTS = 0x10000000 + 64 * PAGE       # physical; the table of roots
PAGE_FLAGS_61 = dict(PG_lru=4, PG_private=13, PG_swapcache=10, PG_swapbacked=19,
                     PG_slab=9, PG_hwpoison=23, PG_head_mask=1 << 16)
SPARSEMEM_INFO = [
    "SYMBOL(mem_section)=%x" % (DIRECT_MAP + MEM_SECTION_ROOTS), "LENGTH(mem_section)=2048",
    "SIZE(mem_section)=16", "OFFSET(mem_section.section_mem_map)=0",
    "NUMBER(SECTION_SIZE_BITS)=27", "OFFSET(page.compound_dtor)=16",
    "OFFSET(page.compound_order)=17", "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129",
    "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257", "NUMBER(HUGETLB_PAGE_DTOR)=2"] + [
    "NUMBER(%s)=%d" % kv for kv in PAGE_FLAGS_61.items()]


def struct_page(flags=0, head=0, mapping=0, private=0, mapcount=-1, dtor=0, order=0):
    """64 bytes of a 6.1 struct page (dtor and order are fields of a first tail page)."""
    sp = bytearray(64)
    struct.pack_into("<QQ", sp, 0, flags, head)
    sp[16], sp[17] = dtor, order
    struct.pack_into("<QQQiI", sp, 24, mapping, 0, private, mapcount, 1)
    return bytes(sp)


def sparsemem(s, pages, sections, backing):
    """Give the synthetic kernel struct pages: every section in `sections` present with
    its mem_map in vmemmap; pages = {pfn: 64 bytes}; vmemmap pages holding them are
    backed by frames taken from the iterator `backing` (page tables too). Struct pages
    that nobody planted are unmapped: a reader must keep those frames."""
    _direct_map(s)
    roots = bytearray(PAGE)
    struct.pack_into("<Q", roots, 0, DIRECT_MAP + MEM_SECTION_ROOTS + PAGE)
    table = bytearray(PAGE)
    for nr in sections:
        struct.pack_into("<Q", table, 16 * nr, VMEMMAP_BASE | 3)
    s.plant(MEM_SECTION_ROOTS, bytes(roots))
    s.plant(MEM_SECTION_ROOTS + PAGE, bytes(table))
    frames = {}
    for pfn in sorted(pages):
        vpage = (VMEMMAP_BASE + pfn * 64) & ~(PAGE - 1)
        if vpage not in frames:
            frames[vpage] = next(backing) * PAGE
            s.map_virtual(vpage, frames[vpage], 12, backing)
            s.plant(frames[vpage], bytes(PAGE))
        s.plant(frames[vpage] + (pfn * 64) % PAGE, pages[pfn])
    s.extra_info += SPARSEMEM_INFO
    return s
