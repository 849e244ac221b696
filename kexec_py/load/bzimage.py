"""The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst).

This module probes a bzImage and exposes its setup header. The kexec_load loader that
builds boot_params from it arrives with the purgatory.
"""
import struct
from dataclasses import dataclass

SETUP_HEADER_OFFSET = 0x1F1
BOOT_FLAG = 0xAA55
HDRS_MAGIC = b"HdrS"

# loadflags
LOADED_HIGH = 0x01
# xloadflags
XLF_KERNEL_64 = 0x01
XLF_CAN_BE_LOADED_ABOVE_4G = 0x02
XLF_EFI_HANDOVER_32 = 0x04
XLF_EFI_HANDOVER_64 = 0x08
XLF_EFI_KEXEC = 0x10

# (name, struct code) from offset 0x1f1 to 0x26c, packed, little-endian
_FIELDS = (
    ("setup_sects", "B"), ("root_flags", "H"), ("syssize", "I"), ("ram_size", "H"),
    ("vid_mode", "H"), ("root_dev", "H"), ("boot_flag", "H"), ("jump", "H"),
    ("header", "4s"), ("version", "H"), ("realmode_swtch", "I"), ("start_sys_seg", "H"),
    ("kernel_version", "H"), ("type_of_loader", "B"), ("loadflags", "B"),
    ("setup_move_size", "H"), ("code32_start", "I"), ("ramdisk_image", "I"),
    ("ramdisk_size", "I"), ("bootsect_kludge", "I"), ("heap_end_ptr", "H"),
    ("ext_loader_ver", "B"), ("ext_loader_type", "B"), ("cmd_line_ptr", "I"),
    ("initrd_addr_max", "I"), ("kernel_alignment", "I"), ("relocatable_kernel", "B"),
    ("min_alignment", "B"), ("xloadflags", "H"), ("cmdline_size", "I"),
    ("hardware_subarch", "I"), ("hardware_subarch_data", "Q"), ("payload_offset", "I"),
    ("payload_length", "I"), ("setup_data", "Q"), ("pref_address", "Q"),
    ("init_size", "I"), ("handover_offset", "I"), ("kernel_info_offset", "I"),
)
SETUP_HEADER = struct.Struct("<" + "".join(code for _, code in _FIELDS))
assert SETUP_HEADER_OFFSET + SETUP_HEADER.size == 0x26C


@dataclass(frozen=True)
class SetupHeader:
    setup_sects: int
    root_flags: int
    syssize: int
    ram_size: int
    vid_mode: int
    root_dev: int
    boot_flag: int
    jump: int
    header: bytes
    version: int
    realmode_swtch: int
    start_sys_seg: int
    kernel_version: int
    type_of_loader: int
    loadflags: int
    setup_move_size: int
    code32_start: int
    ramdisk_image: int
    ramdisk_size: int
    bootsect_kludge: int
    heap_end_ptr: int
    ext_loader_ver: int
    ext_loader_type: int
    cmd_line_ptr: int
    initrd_addr_max: int
    kernel_alignment: int
    relocatable_kernel: int
    min_alignment: int
    xloadflags: int
    cmdline_size: int
    hardware_subarch: int
    hardware_subarch_data: int
    payload_offset: int
    payload_length: int
    setup_data: int
    pref_address: int
    init_size: int
    handover_offset: int
    kernel_info_offset: int

    @property
    def protocol(self):
        """Boot protocol version as (major, minor)."""
        return self.version >> 8, self.version & 0xFF

    @property
    def max_cmdline(self):
        """Longest command line the kernel takes, without the NUL (255 before 2.06)."""
        return self.cmdline_size if self.version >= 0x206 else 255

    @property
    def setup_size(self):
        """Bytes of real-mode setup code plus the boot sector."""
        return ((self.setup_sects or 4) + 1) * 512


def is_bzimage(head):
    """True when the first bytes of a file carry an x86 setup header."""
    if len(head) < 0x206:
        return False
    return head[0x202:0x206] == HDRS_MAGIC and struct.unpack_from("<H", head, 0x1FE)[0] == BOOT_FLAG


def parse_setup_header(head):
    """Parse the setup header from the first bytes (at least 0x26c) of a bzImage."""
    data = bytes(head[SETUP_HEADER_OFFSET:SETUP_HEADER_OFFSET + SETUP_HEADER.size])
    data = data.ljust(SETUP_HEADER.size, b"\0")  # very old protocols end earlier
    return SetupHeader(*SETUP_HEADER.unpack(data))


def kernel_version_string(head, hdr):
    """The version text the setup header points at, or '' when there is none."""
    if hdr.version < 0x200 or not hdr.kernel_version:
        return ""
    start = hdr.kernel_version + 0x200
    end = head.find(b"\0", start, start + 512)
    if start >= len(head) or end < 0:
        return ""
    return head[start:end].decode("ascii", "replace")
