"""The test oracle for x86_64 kernel virtual -> physical translation: an independent
Python page-table walk over any reader with read(paddr, size) and a vmcoreinfo dict.
The product translates in C (csrc/vmcore/x86_64.c, Dump.vtop/read_virt); this walk is
kept only to judge it (tests/unit/test_vmcore_translate.py), never shipped."""
from typing import Dict, Optional, Tuple

from kexec_py.vmcore.vmcoreinfo import number, symbol

KERNEL_MAP = 0xffffffff80000000      # __START_KERNEL_map
_PTE_PRESENT = 0x1
_PTE_PSE = 0x80
_PTE_ADDR = 0x000ffffffffff000


class TranslationError(LookupError):
    """A kernel virtual address that the dump cannot turn into a physical one."""


class X86Translator:
    """x86_64 kernel virtual -> physical addresses over an open Dump (or anything with
    read(paddr, size) and a vmcoreinfo dict), the same rules as the C library:

    - kernel text and data: vaddr - __START_KERNEL_map + phys_base (SYMBOL() values
      already include KERNELOFFSET);
    - the direct map, when direct_map=(page_offset, end) is given: vaddr - page_offset;
    - anything else (vmemmap, vmalloc): a 4- or 5-level page-table walk from
      SYMBOL(init_top_pgt), NUMBER(pgtable_l5_enabled) choosing the depth.

        t = X86Translator(dump)
        t.vtop(symbol(dump.vmcoreinfo, "init_uts_ns"))
        t.read(0xffffea0000000000, 64)     # a struct page through vmemmap
    """

    def __init__(self, dump, info: Optional[Dict[str, str]] = None,
                 phys_base: Optional[int] = None,
                 direct_map: Optional[Tuple[int, int]] = None):
        self.dump = dump
        info = dump.vmcoreinfo if info is None else info
        pb = number(info, "phys_base")
        if pb is None:
            pb = phys_base if phys_base is not None else getattr(dump, "phys_base", None)
        self.phys_base = pb
        offset = info.get("KERNELOFFSET")
        self.kernel_offset = int(offset, 16) if offset else 0
        self.levels = 5 if number(info, "pgtable_l5_enabled") else 4
        self.top_pgt = symbol(info, "init_top_pgt")
        self.direct_map = direct_map
        self._leaf = None          # (vaddr, paddr, size) of the last large page

    def _entry(self, table, index):
        raw = self.dump.read((table & _PTE_ADDR) + 8 * index, 8)
        return int.from_bytes(raw, "little")

    def _walk(self, vaddr):
        if self.top_pgt is None or self.phys_base is None:
            raise TranslationError("%#x: VMCOREINFO lacks SYMBOL(init_top_pgt)" % vaddr)
        table = self.top_pgt - KERNEL_MAP + self.phys_base
        for level in range(self.levels - 1, -1, -1):
            shift = 12 + 9 * level
            entry = self._entry(table, (vaddr >> shift) & 511)
            if not entry & _PTE_PRESENT:
                raise TranslationError("%#x is not mapped (level %d)" % (vaddr, level + 1))
            if shift == 12 or (shift in (21, 30) and entry & _PTE_PSE):
                size = 1 << shift
                base = entry & _PTE_ADDR & ~(size - 1)
                if shift > 12:
                    self._leaf = (vaddr & ~(size - 1), base, size)
                return base + (vaddr & (size - 1))
            table = entry
        raise TranslationError("%#x: page-table walk did not end" % vaddr)  # not reached

    def vtop(self, vaddr: int) -> int:
        """Physical address of vaddr; TranslationError when it has none."""
        if vaddr >= KERNEL_MAP:
            if self.phys_base is None:
                raise TranslationError("%#x: phys_base is unknown" % vaddr)
            return vaddr - KERNEL_MAP + self.phys_base
        if self.direct_map and self.direct_map[0] <= vaddr < self.direct_map[1]:
            return vaddr - self.direct_map[0]
        leaf = self._leaf
        if leaf and 0 <= vaddr - leaf[0] < leaf[2]:
            return leaf[1] + vaddr - leaf[0]
        return self._walk(vaddr)

    def read(self, vaddr: int, size: int) -> bytes:
        """size bytes at vaddr, translated 4 KiB at a time."""
        out = bytearray()
        while len(out) < size:
            n = min(size - len(out), 4096 - (vaddr & 4095))
            out += self.dump.read(self.vtop(vaddr), n)
            vaddr += n
        return bytes(out)
