"""Unified kernel images (UAPI group's UKI specification): a PE file made from systemd's
EFI stub with the kernel in .linux, the initrd in .initrd, the command line in .cmdline,
os-release in .osrel and the kernel release in .uname.

kexec takes the three it needs out of the image, as kexec-tools does since 2.0.28: the
.linux section goes to the kernel as is (a signed bzImage keeps its signature for
kexec_file_load's check), .initrd becomes the initrd and .cmdline the command line,
unless --initrd or --append/--reuse-cmdline name others. Every size read from the PE
headers is checked against the file before it is used.
"""
import os
import struct
from dataclasses import dataclass, field

from ..errors import ImageError

PE_MACHINES = {0x8664: "x86_64", 0xAA64: "arm64", 0x14C: "i386", 0x1C4: "arm",
               0x5064: "riscv64", 0x6264: "loongarch64"}
MACHINE_X86_64 = 0x8664
MAX_SECTIONS = 96          # the PE format's own limit
COFF = struct.Struct("<4sHHIIIHH")        # "PE\0\0", machine, nsections, ..., opt size, flags
SECTION = struct.Struct("<8sIIIIIIHHI")   # name, vsize, vaddr, rawsize, rawptr, ...
CMDLINE_MAX = 1 << 20


@dataclass
class Section:
    name: str
    offset: int     # in the file
    size: int       # bytes of content (VirtualSize when it is the smaller)


@dataclass
class Uki:
    path: str
    machine: int
    sections: dict = field(default_factory=dict)   # name -> Section

    def read(self, fd, name):
        s = self.sections[name]
        data = os.pread(fd, s.size, s.offset)
        if len(data) != s.size:
            raise ImageError("UKI %s: section %s is truncated" % (self.path, name))
        return data

    @property
    def has_initrd(self):
        return ".initrd" in self.sections and self.sections[".initrd"].size > 0


def is_pe(head):
    """MZ with a PE header where e_lfanew says."""
    if len(head) < 0x40 or head[:2] != b"MZ":
        return False
    lfanew = struct.unpack_from("<I", head, 0x3C)[0]
    return lfanew + 4 <= len(head) and head[lfanew:lfanew + 4] == b"PE\0\0"


def parse(fd, path, file_size):
    """The sections of the PE file behind fd; ImageError naming the problem when it is
    not a UKI for x86_64, or when a header or section lies past the end of the file."""
    head = os.pread(fd, 4096, 0)
    if len(head) < 0x40 or head[:2] != b"MZ":
        raise ImageError("%s is not a PE file" % path)
    lfanew = struct.unpack_from("<I", head, 0x3C)[0]
    if lfanew + COFF.size > file_size:
        raise ImageError("%s: the PE header offset %#x is past the end of the file (%d "
                         "bytes)" % (path, lfanew, file_size))
    coff = os.pread(fd, COFF.size, lfanew)
    sig, machine, nsect, _, _, _, optsize, _ = COFF.unpack(coff)
    if sig != b"PE\0\0":
        raise ImageError("%s is an MZ file without a PE header" % path)
    if nsect > MAX_SECTIONS:
        raise ImageError("%s: %d PE sections (the format allows %d)" % (path, nsect,
                                                                     MAX_SECTIONS))
    table = lfanew + COFF.size + optsize
    if table + nsect * SECTION.size > file_size:
        raise ImageError("%s: the PE section table is past the end of the file" % path)
    raw = os.pread(fd, nsect * SECTION.size, table)
    uki = Uki(path=path, machine=machine)
    for i in range(nsect):
        name, vsize, _, rawsize, rawptr = SECTION.unpack_from(raw, i * SECTION.size)[:5]
        name = name.rstrip(b"\0").decode("ascii", "replace")
        size = vsize if 0 < vsize <= rawsize else rawsize
        uki.sections[name] = Section(name, rawptr, size)
    if ".linux" not in uki.sections:
        raise ImageError("%s is a PE file but not a unified kernel image: it has no .linux "
                         "section (sections: %s)" % (path, " ".join(uki.sections) or "none"))
    if machine != MACHINE_X86_64:
        raise ImageError("%s is a unified kernel image for %s (PE machine %#x), not x86_64"
                         % (path, PE_MACHINES.get(machine, "another architecture"), machine))
    for s in uki.sections.values():
        if s.offset + s.size > file_size:
            raise ImageError("%s: UKI section %s is truncated: it needs bytes up to %#x, the "
                             "file ends at %#x" % (path, s.name, s.offset + s.size, file_size))
    if uki.sections[".linux"].size == 0:
        raise ImageError("%s: UKI section .linux is empty" % path)
    return uki


def cmdline(uki, fd):
    """The embedded command line (.cmdline), or None when the image has none."""
    if ".cmdline" not in uki.sections:
        return None
    if uki.sections[".cmdline"].size > CMDLINE_MAX:
        raise ImageError("%s: UKI section .cmdline is %d bytes, not a command line"
                         % (uki.path, uki.sections[".cmdline"].size))
    return uki.read(fd, ".cmdline").rstrip(b"\0").decode("utf-8", "replace").strip()


def text(uki, fd, name):
    """A small text section (.uname, .osrel) or None."""
    if name not in uki.sections or uki.sections[name].size > 65536:
        return None
    return uki.read(fd, name).rstrip(b"\0").decode("utf-8", "replace")


def os_release_field(osrel, key):
    for line in (osrel or "").splitlines():
        k, eq, v = line.partition("=")
        if eq and k.strip() == key:
            return v.strip().strip('"').strip("'")
    return None
