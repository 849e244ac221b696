"""The one module that imports kexec_py._native: system calls and C helpers.

Each wrapper raises SyscallError (an OSError with errno and the call's name) on failure,
so callers never see the C library's -errno convention.
"""
from ._native import ffi, lib
from .errors import SyscallError

KEXEC_FILE_UNLOAD = 0x1
KEXEC_FILE_ON_CRASH = 0x2
KEXEC_FILE_NO_INITRAMFS = 0x4
KEXEC_FILE_DEBUG = 0x8

KEXEC_ON_CRASH = 0x1
KEXEC_PRESERVE_CONTEXT = 0x2
KEXEC_UPDATE_ELFCOREHDR = 0x4
KEXEC_ARCH_X86_64 = 62 << 16
KEXEC_SEGMENT_MAX = 16

FILE_FLAG_NAMES = (
    (KEXEC_FILE_UNLOAD, "KEXEC_FILE_UNLOAD"),
    (KEXEC_FILE_ON_CRASH, "KEXEC_FILE_ON_CRASH"),
    (KEXEC_FILE_NO_INITRAMFS, "KEXEC_FILE_NO_INITRAMFS"),
    (KEXEC_FILE_DEBUG, "KEXEC_FILE_DEBUG"),
)

LOAD_FLAG_NAMES = (
    (KEXEC_ON_CRASH, "KEXEC_ON_CRASH"),
    (KEXEC_PRESERVE_CONTEXT, "KEXEC_PRESERVE_CONTEXT"),
    (KEXEC_UPDATE_ELFCOREHDR, "KEXEC_UPDATE_ELFCOREHDR"),
)


def flag_names(flags, table):
    """'A|B' for the set bits of flags, '0' when none; unknown bits in hex."""
    names = [name for bit, name in table if flags & bit]
    rest = flags & ~sum(bit for bit, _ in table)
    if table is LOAD_FLAG_NAMES and rest & 0xFFFF0000:
        arch = rest & 0xFFFF0000
        names.append("KEXEC_ARCH_X86_64" if arch == KEXEC_ARCH_X86_64 else hex(arch))
        rest &= 0xFFFF
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


def _check(name, ret):
    if ret < 0:
        raise SyscallError(name, -ret)
    return ret


def kexec_file_load(kernel_fd, initrd_fd, cmdline, flags):
    """kexec_file_load(2). cmdline is bytes without the NUL, or None for none.

    The length passed to the kernel counts the trailing NUL, as the kernel expects.
    """
    if cmdline is None:
        return _check("kexec_file_load",
                      lib.kpy_kexec_file_load(kernel_fd, initrd_fd, ffi.NULL, 0, flags))
    buf = ffi.new("char[]", cmdline)  # cffi appends the NUL
    return _check("kexec_file_load",
                  lib.kpy_kexec_file_load(kernel_fd, initrd_fd, buf, len(cmdline) + 1, flags))


def kexec_load(entry, segments, flags):
    """kexec_load(2) with a raw segment list.

    segments: a sequence of (data: bytes, mem: int, memsz: int). The buffers are kept
    alive for the duration of the call; the kernel copies them.
    """
    count = len(segments)
    seg = ffi.new("struct kpy_segment[]", max(count, 1))
    keep = []
    for i, (data, mem, memsz) in enumerate(segments):
        cbuf = ffi.from_buffer(data)
        keep.append(cbuf)
        seg[i].buf = cbuf
        seg[i].bufsz = len(data)
        seg[i].mem = mem
        seg[i].memsz = memsz
    ret = lib.kpy_kexec_load(entry, count, seg if count else ffi.NULL, flags)
    del keep
    return _check("kexec_load", ret)


def reboot_kexec():
    """reboot(LINUX_REBOOT_CMD_KEXEC). Returns only on failure (raises)."""
    return _check("reboot", lib.kpy_reboot_kexec())


def zstd_decompress_fd(in_fd, out_fd, max_out):
    """Decompress a zstd stream between two file descriptors."""
    return _check("zstd_decompress", lib.kpy_zstd_decompress_fd(in_fd, out_fd, max_out))


def zstd_available():
    """True when the native module was built with libzstd."""
    return bool(lib.kpy_have_zstd())
