"""The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst).

This module probes a bzImage, parses its setup header, and builds what the kexec_load
path (load/kexec_load.py) hands the new kernel: the boot_params zero page with the
command line, initrd, e820 map (and its setup_data extension), ACPI RSDP and screen_info.
"""
import struct

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


class SetupHeader:
    """The setup header's fields in boot.rst order, read-only. (A plain class: a
    dataclass or a namedtuple would import modules that cost `kexec -l` start-up.)"""

    __slots__ = tuple(name for name, _ in _FIELDS)

    def __init__(self, *values):
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("the setup header is read-only")

    def __eq__(self, other):
        return type(other) is SetupHeader and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self):
        return "SetupHeader(%s)" % ", ".join("%s=%r" % (n, getattr(self, n))
                                             for n in self.__slots__)

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


# ---------------------------------------------------------------------------------------
# boot_params ("zero page") for a kexec_load of a 64-bit bzImage

BOOT_PARAMS_SIZE = 4096
TYPE_OF_LOADER = 0xD0          # boot.rst: loader type 0xD (kexec-tools' type), version 0
E820_MAX_ENTRIES_ZEROPAGE = 128
E820_ENTRY = struct.Struct("<QQI")
SETUP_DATA_HEADER = struct.Struct("<QII")  # next, type, len
SETUP_E820_EXT = 1
ENTRY_64_OFFSET = 0x200        # startup_64 sits 0x200 into the protected-mode kernel
MIN_KEXEC_LOAD_PROTOCOL = 0x20C

# offsets inside boot_params
BP_SCREEN_INFO = 0x000
BP_SCREEN_INFO_SIZE = 0x40
BP_ACPI_RSDP_ADDR = 0x070
BP_EXT_RAMDISK_IMAGE = 0x0C0
BP_EXT_RAMDISK_SIZE = 0x0C4
BP_EXT_CMD_LINE_PTR = 0x0C8
BP_ALT_MEM_K = 0x1E0
BP_E820_ENTRIES = 0x1E8
BP_E820_TABLE = 0x2D0
HDR_TYPE_OF_LOADER = 0x210
HDR_RAMDISK_IMAGE = 0x218
HDR_RAMDISK_SIZE = 0x21C
HDR_CMD_LINE_PTR = 0x228
HDR_HARDWARE_SUBARCH = 0x23C
HDR_HARDWARE_SUBARCH_DATA = 0x240
HDR_SETUP_DATA = 0x250


def kexec_load_problem(hdr):
    """Why this bzImage cannot go through kexec_load, or None when it can."""
    major, minor = hdr.protocol
    if hdr.version < MIN_KEXEC_LOAD_PROTOCOL:
        return "boot protocol %d.%02d is older than 2.12" % (major, minor)
    if not hdr.loadflags & LOADED_HIGH:
        return "it is not a bzImage loaded high (loadflags bit 0)"
    if hdr.xloadflags & (XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G) != \
            (XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G):
        return "it has no 64-bit entry point (xloadflags %#x)" % hdr.xloadflags
    return None


def header_end(head):
    """End offset of the setup header as the image declares it (0x202 + byte at 0x201)."""
    return 0x202 + head[0x201]


def kernel_payload(image, hdr):
    """The protected-mode kernel: the image after the real-mode setup sectors."""
    return image[hdr.setup_size:]


def kernel_memsz(hdr, payload_len):
    """Memory the kernel needs at its load address: init_size covers decompression."""
    return max(hdr.init_size, payload_len)


def e820_entries(ranges):
    return [(r.start, r.size, r.type) for r in ranges]


def build_boot_params(head, *, cmd_line_ptr, initrd_addr=0, initrd_size=0, e820=(),
                      setup_data_addr=0, old_boot_params=None, acpi_rsdp_addr=0,
                      alt_mem_k=0, screen_info=None, screen_info_rule=None):
    """The zero page for the kernel in `head` (its first bytes).

    Returns (boot_params bytes, fields) where fields maps each field set to its value,
    for --dry-run. e820 entries beyond 128 go into a SETUP_E820_EXT setup_data that the
    caller places at setup_data_addr (see e820_ext_setup_data). screen_info (64 bytes)
    replaces the running kernel's copy (video.screen_info; screen_info_rule says why).
    """
    bp = bytearray(BOOT_PARAMS_SIZE)
    end = header_end(head)
    bp[SETUP_HEADER_OFFSET:end] = head[SETUP_HEADER_OFFSET:end]
    fields = {}

    def put(fmt, off, value, name):
        struct.pack_into(fmt, bp, off, value)
        fields[name] = value

    put("<B", HDR_TYPE_OF_LOADER, TYPE_OF_LOADER, "type_of_loader")
    put("<I", HDR_CMD_LINE_PTR, cmd_line_ptr & 0xFFFFFFFF, "cmd_line_ptr")
    put("<I", BP_EXT_CMD_LINE_PTR, cmd_line_ptr >> 32, "ext_cmd_line_ptr")
    put("<I", HDR_RAMDISK_IMAGE, initrd_addr & 0xFFFFFFFF, "ramdisk_image")
    put("<I", BP_EXT_RAMDISK_IMAGE, initrd_addr >> 32, "ext_ramdisk_image")
    put("<I", HDR_RAMDISK_SIZE, initrd_size & 0xFFFFFFFF, "ramdisk_size")
    put("<I", BP_EXT_RAMDISK_SIZE, initrd_size >> 32, "ext_ramdisk_size")
    entries = list(e820)
    zero_page = entries[:E820_MAX_ENTRIES_ZEROPAGE]
    for i, (addr, size, kind) in enumerate(zero_page):
        E820_ENTRY.pack_into(bp, BP_E820_TABLE + i * E820_ENTRY.size, addr, size, kind)
    put("<B", BP_E820_ENTRIES, len(zero_page), "e820_entries")
    if len(entries) > E820_MAX_ENTRIES_ZEROPAGE:
        put("<Q", HDR_SETUP_DATA, setup_data_addr, "setup_data (SETUP_E820_EXT)")
    if alt_mem_k:
        put("<I", BP_ALT_MEM_K, alt_mem_k & 0xFFFFFFFF, "alt_mem_k")
    if acpi_rsdp_addr:
        put("<Q", BP_ACPI_RSDP_ADDR, acpi_rsdp_addr, "acpi_rsdp_addr")
    if screen_info is not None:
        bp[BP_SCREEN_INFO:BP_SCREEN_INFO + BP_SCREEN_INFO_SIZE] = \
            screen_info[:BP_SCREEN_INFO_SIZE].ljust(BP_SCREEN_INFO_SIZE, b"\0")
        fields["screen_info"] = screen_info_rule or "given"
    if old_boot_params and len(old_boot_params) >= 0x248:
        if screen_info is None:
            bp[BP_SCREEN_INFO:BP_SCREEN_INFO + BP_SCREEN_INFO_SIZE] = \
                old_boot_params[BP_SCREEN_INFO:BP_SCREEN_INFO + BP_SCREEN_INFO_SIZE]
            fields["screen_info"] = screen_info_rule or "copied from the running kernel"
        subarch = struct.unpack_from("<I", old_boot_params, HDR_HARDWARE_SUBARCH)[0]
        put("<I", HDR_HARDWARE_SUBARCH, subarch, "hardware_subarch")
        data = struct.unpack_from("<Q", old_boot_params, HDR_HARDWARE_SUBARCH_DATA)[0]
        put("<Q", HDR_HARDWARE_SUBARCH_DATA, data, "hardware_subarch_data")
    return bytes(bp), fields


def e820_ext_setup_data(e820):
    """A SETUP_E820_EXT setup_data block for the entries past the zero page's 128, or b""."""
    extra = list(e820)[E820_MAX_ENTRIES_ZEROPAGE:]
    if not extra:
        return b""
    body = b"".join(E820_ENTRY.pack(*e) for e in extra)
    return SETUP_DATA_HEADER.pack(0, SETUP_E820_EXT, len(body)) + body


def old_acpi_rsdp(old_boot_params):
    if old_boot_params and len(old_boot_params) >= BP_ACPI_RSDP_ADDR + 8:
        return struct.unpack_from("<Q", old_boot_params, BP_ACPI_RSDP_ADDR)[0]
    return 0
