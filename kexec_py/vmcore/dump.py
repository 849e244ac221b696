"""open(): read physical memory back from a dump - ELF, kdump-compressed, or either one
in the flattened format - through the same C readers vmcore-copy --verify uses."""
import errno as _errno
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Tuple

from .. import native
from . import vmcoreinfo as _vmcoreinfo
from .errors import (CorruptPageError, PageLostError, PageNotInDump, VmcoreError,
                     from_native)



@dataclass(frozen=True)
class VerifyStats:
    """What verify() found: frames listed, decoded fine, lost (incomplete dump), bad."""

    frames: int
    ok: int
    lost: int
    bad: int
    first_bad_pfn: Optional[int]
    first_bad_offset: Optional[int]


class Dump:
    """An open dump. Not thread-safe: one reader per Dump. Use as a context manager.

    Attributes: path, format ("kdump" or "elf"), flattened, compression, incomplete,
    dump_level (kdump; None for ELF), page_size, max_pfn, nr_pages (frames present),
    machine, release, nr_cpus, phys_base.
    """

    def __init__(self, path, vmcoreinfo=None):
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        if isinstance(vmcoreinfo, str):
            vmcoreinfo = vmcoreinfo.encode("ascii")
        try:
            self._h = native.DumpHandle(self._fd, vmcoreinfo)
        except native.SyscallError as err:
            os.close(self._fd)
            raise from_native(err, self.path) from None
        i = self._h.info
        self.format = "elf" if i["format"] == native.DUMP_FORMATS["elf"] else "kdump"
        self.flattened = bool(i["flattened"])
        self.compression = native.CODEC_NAMES.get(i["codec"], hex(i["codec"]))
        self.incomplete = bool(i["incomplete"])
        self.dump_level = i["dump_level"] if i["dump_level"] >= 0 else None
        self.page_size = i["page_size"]
        self.max_pfn = i["max_pfn"]
        self.nr_pages = i["nr_frames"]
        self.machine = i["machine"]
        self.release = i["release"]
        self.nr_cpus = i["nr_cpus"]
        self.phys_base = i["phys_base"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            self._h.close()
            os.close(self._fd)
            self._fd = None

    def __repr__(self):
        return "<Dump %s %s%s, %d pages>" % (self.path, "flattened " if self.flattened else "",
                                             self.format, self.nr_pages)

    # ---- notes ----
    @property
    def notes(self) -> bytes:
        """The PT_NOTE blob (NT_PRSTATUS per CPU, VMCOREINFO)."""
        return self._h.notes()

    @property
    def vmcoreinfo_text(self) -> str:
        return self._h.vmcoreinfo().split(b"\0", 1)[0].decode("ascii", "replace")

    @property
    def vmcoreinfo(self) -> Dict[str, str]:
        """VMCOREINFO as a dict; see kexec_py.vmcore.vmcoreinfo for typed lookups."""
        return _vmcoreinfo.parse(self.vmcoreinfo_text)

    # ---- pages ----
    def read_page(self, pfn: int) -> bytes:
        """Frame pfn's page_size bytes. Raises PageNotInDump (not in the dump),
        PageLostError (cut off an incomplete dump), CorruptPageError (does not decode;
        names the file offset)."""
        try:
            return self._h.read_page(pfn)
        except native.SyscallError as err:
            if err.errno == _errno.ENOENT:
                raise PageNotInDump(self.path, pfn) from None
            if err.errno == _errno.ENODATA:
                raise PageLostError(self.path, pfn) from None
            raise CorruptPageError(self.path, "page frame %#x: %s" % (pfn, err.strerror),
                                   offset=err.offset) from None

    def read(self, paddr: int, size: int) -> bytes:
        """size bytes of physical memory from paddr (may span frames; every frame
        touched must be in the dump)."""
        ps = self.page_size
        out = bytearray()
        pfn, skip = divmod(paddr, ps)
        while len(out) < size:
            page = self.read_page(pfn)
            out += page[skip:skip + size - len(out)]
            pfn += 1
            skip = 0
        return bytes(out)

    def runs(self) -> Iterator[Tuple[int, int]]:
        """(first_pfn, count) for each run of consecutive frames in the dump."""
        pfn = 0
        while True:
            run = self._h.next_run(pfn)
            if run is None:
                return
            yield run
            pfn = run[0] + run[1]

    def pages(self) -> Iterator[int]:
        """Every frame number in the dump, in order."""
        for start, count in self.runs():
            yield from range(start, start + count)

    # ---- kernel virtual addresses (x86_64) ----
    def vtop(self, vaddr: int) -> int:
        """Physical address of a kernel virtual address: kernel text through phys_base,
        the direct map, anything else by walking the page tables from init_top_pgt.
        Raises VmcoreError when the address is not mapped or cannot be translated."""
        try:
            return self._h.vtop(vaddr)
        except native.SyscallError as err:
            raise VmcoreError("%s: cannot translate %#x: %s"
                              % (self.path, vaddr, err.strerror)) from None

    def read_virt(self, vaddr: int, size: int) -> bytes:
        """size bytes at a kernel virtual address (VmcoreError if any is unreadable)."""
        try:
            return self._h.read_virt(vaddr, size)
        except native.SyscallError as err:
            raise VmcoreError("%s: cannot read %d bytes at %#x: %s"
                              % (self.path, size, vaddr, err.strerror)) from None

    def dmesg(self) -> str:
        """The kernel log, line for line as kexec-tools' vmcore-dmesg prints it (bytes
        that are neither printable nor white space as \\xNN, so the text is ASCII)."""
        try:
            return self._h.dmesg().decode("ascii", "replace")
        except native.SyscallError as err:
            raise VmcoreError("%s: no kernel log: %s"
                              % (self.path, err.message or err.strerror)) from None

    def verify(self, progress: Optional[Callable[[int, int, int], Optional[bool]]] = None
               ) -> VerifyStats:
        """Decode every page the dump lists. progress(done, total, 0) as for copy()."""
        st = self._h.verify(progress)
        bad = st["bad"] > 0
        return VerifyStats(st["frames"], st["ok"], st["lost"], st["bad"],
                           st["first_bad_pfn"] if bad else None,
                           st["first_bad_offset"] if bad else None)


def open(path, vmcoreinfo=None) -> Dump:  # noqa: A001 - mirrors the builtin
    """Open a dump (ELF, kdump-compressed, flattened) for reading physical pages.
    vmcoreinfo: VMCOREINFO text (makedumpfile -g's KEY=VALUE lines) that supplies or
    replaces an ELF dump's. Raises DumpFormatError naming the file (and offset) when it
    is none of those."""
    return Dump(path, vmcoreinfo)


def dmesg(path, vmcoreinfo=None) -> str:
    """The kernel log held in a dump (ELF vmcore or kdump-compressed, flattened or not),
    as kexec-tools' vmcore-dmesg prints it; vmcoreinfo as for open()."""
    with Dump(path, vmcoreinfo) as d:
        return d.dmesg()
