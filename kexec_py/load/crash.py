"""What a panic load through kexec_load needs from userspace: the ELF core header that
becomes /proc/vmcore in the capture kernel, and the capture kernel's memory map.

The header follows the kernel's own kexec_file layout (crash_prepare_elf64_headers):
one PT_NOTE per possible CPU (its crash_notes buffer), one PT_NOTE for vmcoreinfo, a
PT_LOAD for the kernel text (_text.._end), and a PT_LOAD per System RAM range with the
crash reserve and the low 1 MiB cut out. Modern kernels keep the low 1 MiB reserved, so
the capture kernel may use it and no backup copy is made (kexec-tools still copies the
first 640 KiB to a backup segment: docs/kexec-load.md explains the difference).
"""
import struct
from dataclasses import dataclass

from .. import rootfs
from ..errors import KexecError, ReserveUnreadable
from . import memory
from .memory import MemRange

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
PT_LOAD, PT_NOTE = 1, 4
PF_RWX = 7
ET_CORE = 4
EM_X86_64 = 62
LOW_1M = MemRange(0, (1 << 20) - 1)
# Direct-map base without KASLR (4-level paging); used when /proc/kcore cannot be read.
DEFAULT_PAGE_OFFSET = 0xFFFF888000000000
CRASH_NOTES_DEFAULT_SIZE = 368  # sizeof(note_buf_t) on x86_64 6.x, if not exported
ELF_HEADER_SPACE = 64 * 1024    # room reserved for the header (and its growth)


@dataclass(frozen=True)
class Note:
    paddr: int
    size: int
    what: str


def parse_cpu_list(text):
    """'0-3,5' -> [0, 1, 2, 3, 5]."""
    cpus = []
    for part in (text or "").strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def crash_notes(root="/"):
    """The per-CPU crash_notes buffers of every possible CPU."""
    notes = []
    for cpu in parse_cpu_list(rootfs.read_first_line(root, "/sys/devices/system/cpu/possible")):
        d = "/sys/devices/system/cpu/cpu%d" % cpu
        addr = rootfs.read_first_line(root, d + "/crash_notes")
        if not addr:
            if rootfs.exists(root, d + "/crash_notes"):    # mode 0400: root only
                raise ReserveUnreadable("%s/crash_notes" % d)
            continue  # a possible CPU that was never brought up has no directory
        size = rootfs.read_first_line(root, d + "/crash_notes_size")
        notes.append(Note(int(addr, 16), int(size) if size else CRASH_NOTES_DEFAULT_SIZE,
                          "cpu%d crash_notes" % cpu))
    if not notes:
        raise KexecError("no /sys/devices/system/cpu/cpu*/crash_notes: the kernel was built "
                         "without crash dump support (CONFIG_CRASH_DUMP)")
    return notes


def vmcoreinfo_note(root="/"):
    """/sys/kernel/vmcoreinfo: "<paddr hex> <size hex>"."""
    text = rootfs.read_first_line(root, "/sys/kernel/vmcoreinfo")
    if not text:
        raise KexecError("/sys/kernel/vmcoreinfo is missing: dump tools could not read the "
                         "vmcore (kernel built without CONFIG_CRASH_CORE?)")
    addr, size = text.split()[:2]
    return Note(int(addr, 16), int(size, 16), "vmcoreinfo")


def kernel_text(root="/"):
    """(vaddr of _text, size to _end, paddr of "Kernel code"), or None when hidden."""
    text = rootfs.read_text(root, "/proc/kallsyms") or ""
    syms = {}
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) >= 3 and parts[2] in ("_text", "_end") and parts[2] not in syms:
            syms[parts[2]] = int(parts[0], 16)
    code = memory.named_range(root, "Kernel code")
    if not syms.get("_text") or not syms.get("_end") or code is None:
        return None  # kptr_restrict or not root: addresses read as zero
    return syms["_text"], syms["_end"] - syms["_text"], code.start


def page_offset(root="/"):
    """The direct map's base (randomised by KASLR), from /proc/kcore's RAM headers."""
    try:
        with open(rootfs.join(root, "/proc/kcore"), "rb") as f:
            head = f.read(64 * 1024)
    except OSError:
        return DEFAULT_PAGE_OFFSET
    if head[:4] != b"\x7fELF" or len(head) < EHDR.size:
        return DEFAULT_PAGE_OFFSET
    ehdr = EHDR.unpack_from(head)
    phoff, phnum = ehdr[5], ehdr[11]
    for i in range(phnum):
        off = phoff + i * PHDR.size
        if off + PHDR.size > len(head):
            break
        p_type, _, _, vaddr, paddr, _, _, _ = PHDR.unpack_from(head, off)
        # RAM headers carry the physical address; kernel text and vmalloc ones do not.
        if p_type == PT_LOAD and paddr and vaddr >= 0xFF00000000000000 \
                and vaddr < 0xFFFFFFFF80000000:
            return vaddr - paddr
    return DEFAULT_PAGE_OFFSET


def dump_ranges(root, crash):
    """System RAM that the vmcore must cover: RAM minus the crash reserve and low 1 MiB."""
    return memory.subtract(memory.system_ram(root), list(crash) + [LOW_1M])


def build_elf_core_header(notes, text, ram, direct_map_base):
    """ELF64 ET_CORE header bytes: PT_NOTEs, kernel text PT_LOAD, RAM PT_LOADs."""
    phdrs = []
    for n in notes:
        phdrs.append(PHDR.pack(PT_NOTE, 0, n.paddr, 0, n.paddr, n.size, n.size, 0))
    if text is not None:
        vaddr, size, paddr = text
        phdrs.append(PHDR.pack(PT_LOAD, PF_RWX, paddr, vaddr, paddr, size, size, 0))
    for r in ram:
        phdrs.append(PHDR.pack(PT_LOAD, PF_RWX, r.start, direct_map_base + r.start, r.start,
                               r.size, r.size, 0))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = EHDR.pack(ident, ET_CORE, EM_X86_64, 1, 0, EHDR.size, 0, 0, EHDR.size,
                     PHDR.size, len(phdrs), 0, 0, 0)
    return ehdr + b"".join(phdrs)


def capture_e820(firmware_map, system_ram, crash, elfcorehdr):
    """The capture kernel's memory map: the low 1 MiB of RAM, the crash reserve minus the
    ELF core header as RAM, and the firmware's ACPI, NVS and reserved ranges."""
    out = [MemRange(r.start, r.end, memory.E820_RAM)
           for r in memory.intersect(system_ram, LOW_1M)]
    out += memory.subtract([MemRange(c.start, c.end, memory.E820_RAM) for c in crash],
                           [elfcorehdr])
    out += [r for r in firmware_map if r.type != memory.E820_RAM]
    return sorted(out)


def elfcorehdr_param(addr):
    """The capture kernel's elfcorehdr= parameter (kexec-tools writes it in KiB)."""
    return "elfcorehdr=%dK" % (addr >> 10)


def describe(header_bytes):
    """Program header lines for --dry-run/-d."""
    ehdr = EHDR.unpack_from(header_bytes)
    lines = []
    for i in range(ehdr[10]):          # e_phnum
        t, _, off, vaddr, paddr, fsz, _, _ = PHDR.unpack_from(header_bytes,
                                                            EHDR.size + i * PHDR.size)
        lines.append("elfcorehdr phdr[%d]: %s paddr=%#x vaddr=%#x size=%#x"
                     % (i, "PT_NOTE" if t == PT_NOTE else "PT_LOAD", paddr, vaddr, fsz))
    return lines
