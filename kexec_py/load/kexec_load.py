"""The kexec_load path: everything the kernel does for kexec_file_load, done here.

plan() turns a kernel image, an initrd and a command line into a segment list and an
entry point: the protected-mode kernel, the initrd, boot_params with the command line
(and SETUP_E820_EXT when the e820 map is long), for a panic load the ELF core header,
and the purgatory that checks the SHA-256 of all of them and jumps to the kernel.
"""
import os
from dataclasses import dataclass, field

from .. import native, rootfs
from ..errors import ImageError, KexecError, NoCrashReserve
from . import bzimage, crash, memory, purgatory, video
from .segments import PAGE_SIZE, SegmentPlan, align_up

LOW_LIMIT = 1 << 20          # nothing is placed in the first MiB
BELOW_4G = (1 << 32) - 1


@dataclass
class KexecLoadPlan:
    entry: int
    flags: int
    segments: list
    cmdline: str
    boot_params_fields: dict
    details: list = field(default_factory=list)  # extra lines for --dry-run / -d

    def syscall_segments(self):
        return [(s.data, s.mem, s.memsz) for s in self.segments]


def read_fd(fd):
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0)
    if len(data) != size:
        raise ImageError("short read (%d of %d bytes)" % (len(data), size))
    return data


def read_old_boot_params(root="/"):
    """The running kernel's zero page, or None when it cannot be read (not root)."""
    try:
        with open(rootfs.join(root, "/sys/kernel/boot_params/data"), "rb") as f:
            return f.read()
    except OSError:
        return None


def efi_acpi_rsdp(root="/"):
    """ACPI RSDP from /sys/firmware/efi/systab (ACPI20= preferred), or 0."""
    found = {}
    for line in (rootfs.read_text(root, "/sys/firmware/efi/systab") or "").split("\n"):
        key, _, value = line.partition("=")
        if key in ("ACPI20", "ACPI") and value:
            found[key] = int(value, 16)
    return found.get("ACPI20") or found.get("ACPI") or 0


def _crash_target(root):
    ranges = memory.crash_ranges(root)
    if not ranges:
        raise NoCrashReserve()
    return ranges, ranges[-1]


def _check_crash_room(target, parts):
    need = sum(align_up(size, PAGE_SIZE) for _, size in parts)
    if need > target.size:
        detail = ", ".join("%s %.1f MiB" % (name, size / 2.0 ** 20) for name, size in parts)
        raise KexecError("the crash kernel reserve is %.1f MiB but the capture kernel needs "
                         "at least %.1f MiB (%s): raise crashkernel= or use a smaller initrd"
                         % (target.size / 2.0 ** 20, need / 2.0 ** 20, detail))


def _add_low(segs, name, data, limit=BELOW_4G):
    """Top-down below limit (4 GiB by default) when there is room, else anywhere."""
    if segs.find(align_up(max(len(data), 1), PAGE_SIZE), max_addr=limit,
                 top_down=True) is not None:
        return segs.add(name, data, max_addr=limit, top_down=True)
    return segs.add(name, data, top_down=True)


def _segment_plan(root, panic, hdr, payload_len, initrd_len, blob_len, details):
    """Where segments may go: the highest crash range for panic loads, else RAM >= 1 MiB.

    Returns (SegmentPlan, the crash ranges or None)."""
    if not panic:
        ram = [r for r in memory.memory_map(root) if r.type == memory.E820_RAM]
        return SegmentPlan(memory.subtract(ram, [memory.MemRange(0, LOW_LIMIT - 1)]),
                           "RAM"), None
    crash_list, target = _crash_target(root)
    _check_crash_room(target, [
        ("kernel", bzimage.kernel_memsz(hdr, payload_len) + hdr.kernel_alignment),
        ("initrd", initrd_len), ("boot_params", 2 * PAGE_SIZE), ("purgatory", blob_len),
        ("elfcorehdr", crash.ELF_HEADER_SPACE)])
    details.append("crash kernel reserve: %#x-%#x (%d MiB)"
                   % (target.start, target.end, target.size >> 20))
    return SegmentPlan([target], "the crash kernel reserve %s" % target), crash_list


def _add_elf_core_header(segs, root, crash_list, e820, cmdline, details):
    """Place the ELF core header; returns (capture kernel e820, command line)."""
    header = crash.build_elf_core_header(
        crash.crash_notes(root) + [crash.vmcoreinfo_note(root)], crash.kernel_text(root),
        crash.dump_ranges(root, crash_list), crash.page_offset(root))
    elf_seg = _add_low(segs, "elfcorehdr", header)
    details += crash.describe(header)
    e820 = crash.capture_e820(e820, memory.system_ram(root), crash_list,
                              memory.MemRange(elf_seg.mem, elf_seg.end))
    return e820, (cmdline + " " + crash.elfcorehdr_param(elf_seg.mem)).strip()


def _add_setup(segs, root, image, cmdline, e820, initrd_seg, details, reuse_video_type=False):
    """boot_params + command line (+ SETUP_E820_EXT) in one segment; returns (it, fields)."""
    entries = bzimage.e820_entries(e820)
    cmd = cmdline.encode() + b"\0"
    ext = bzimage.e820_ext_setup_data(entries)
    cmd_off = bzimage.BOOT_PARAMS_SIZE
    ext_off = align_up(cmd_off + len(cmd), 16)
    setup = _add_low(segs, "setup", bytes(ext_off + len(ext)))
    old_bp = read_old_boot_params(root)
    si, rule = video.screen_info(old_bp[:video.SCREEN_INFO_SIZE] if old_bp else None, root,
                                 reuse_video_type=reuse_video_type)
    details.append("video: " + rule)
    bp, fields = bzimage.build_boot_params(
        image[:bzimage.header_end(image)], cmd_line_ptr=setup.mem + cmd_off,
        initrd_addr=initrd_seg.mem if initrd_seg else 0,
        initrd_size=len(initrd_seg.data) if initrd_seg else 0,
        e820=entries, setup_data_addr=setup.mem + ext_off if ext else 0,
        old_boot_params=old_bp,
        acpi_rsdp_addr=bzimage.old_acpi_rsdp(old_bp) or efi_acpi_rsdp(root),
        screen_info=si, screen_info_rule=rule)
    setup.data = bp + cmd + bytes(ext_off - cmd_off - len(cmd)) + ext
    if old_bp is None:
        details.append("note: /sys/kernel/boot_params/data is unreadable (not root): "
                       "screen_info and hardware_subarch are left zero")
    return setup, fields


def plan(kimg, initrd, cmdline, *, panic=False, root="/", serial_port=0, no_checks=False,
         reuse_video_type=False):
    """Build the segments for kexec_load. kimg/initrd are image.KernelImage/Initrd."""
    hdr = kimg.header
    problem = bzimage.kexec_load_problem(hdr)
    if problem:
        raise ImageError("%s cannot be loaded with kexec_load: %s; use -s (kexec_file_load)"
                         % (kimg.path, problem))
    image = read_fd(kimg.fd)
    payload = bzimage.kernel_payload(image, hdr)
    initrd_data = read_fd(initrd.fd) if initrd is not None else b""
    blob = purgatory.load_blob()
    details = []
    segs, crash_list = _segment_plan(root, panic, hdr, len(payload), len(initrd_data),
                                     len(blob), details)
    kernel = segs.add("kernel", payload, bzimage.kernel_memsz(hdr, len(payload)),
                      align=max(hdr.kernel_alignment, PAGE_SIZE), min_addr=LOW_LIMIT,
                      prefer=hdr.pref_address)
    initrd_seg = None
    if initrd_data:
        initrd_seg = _add_low(segs, "initrd", initrd_data,
                              min(hdr.initrd_addr_max or BELOW_4G, BELOW_4G))
    e820 = memory.memory_map(root)
    if panic:
        e820, cmdline = _add_elf_core_header(segs, root, crash_list, e820, cmdline, details)
    if len(cmdline.encode()) > hdr.max_cmdline:
        raise ImageError("command line is %d bytes; %s takes at most %d (setup header "
                         "cmdline_size)" % (len(cmdline.encode()), kimg.path, hdr.max_cmdline))
    setup, fields = _add_setup(segs, root, image, cmdline, e820, initrd_seg, details,
                               reuse_video_type)

    regions = tuple((s.mem, s.data) for s in segs.segments)
    purg = _add_low(segs, "purgatory", blob)
    entry = kernel.mem + bzimage.ENTRY_64_OFFSET
    purg.data = purgatory.patch(blob, purgatory.PurgatoryParams(
        entry=entry, boot_params=setup.mem, regions=regions, serial_port=serial_port,
        no_checks=no_checks))
    details.insert(0, "entry: purgatory at %#x, then the kernel's 64-bit entry at %#x"
                   % (purg.mem, entry))
    details += ["e820[%d]: %s" % (i, r) for i, r in enumerate(e820)]
    flags = native.KEXEC_ARCH_X86_64 | (native.KEXEC_ON_CRASH if panic else 0)
    return KexecLoadPlan(entry=purg.mem, flags=flags, segments=segs.check(), cmdline=cmdline,
                         boot_params_fields=fields, details=details)
