"""The one module that imports kexec_py._native: system calls and C helpers.

Each wrapper raises SyscallError (an OSError with errno and the call's name) on failure,
so callers never see the C library's -errno convention.
"""
import errno
import os

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


# ---- vmcore: the copier and the dump readers (csrc/vmcore/) ----
#
# Each call returns plain Python values; failures raise SyscallError carrying the C
# library's message (.message), the file offset it names (.offset) and, for a copy, the
# statistics gathered so far (.stats). kexec_py.vmcore turns those into its exceptions.

DUMP_FORMATS = {"kdump": lib.KPY_FMT_KDUMP, "elf": lib.KPY_FMT_ELF}


def _codec_table():
    """{name: KPY_CODEC_*} from the C library's own table (kpy_codecs, kpy_codec_name)."""
    table, i = {}, 0
    while lib.kpy_codecs[i] >= 0:
        table[ffi.string(lib.kpy_codec_name(lib.kpy_codecs[i])).decode()] = lib.kpy_codecs[i]
        i += 1
    return table


CODECS = _codec_table()                              # name -> id, in the tools' order
CODEC_NAMES = {v: k for k, v in CODECS.items()}      # id -> name
_STAT_FIELDS = ("pages_in", "pages_zero", "pages_excluded", "pages_written", "pages_lost",
                "bytes_out", "file_size", "elapsed_ns", "page_size", "incomplete",
                "err_in_output", "err_offset")


class _Callback:
    """What kpy_py_progress calls back into, and the exception it raised, if any."""

    def __init__(self, fn):
        self.fn = fn
        self.exc = None


@ffi.def_extern()
def kpy_py_progress(arg, done, total, bytes_out):
    cb = ffi.from_handle(arg)
    try:
        return 1 if cb.fn(done, total, bytes_out) is False else 0
    except BaseException as exc:  # re-raised by the caller once C has closed the dump
        cb.exc = exc
        return 1


def _fail(name, ret, message, offset=None, stats=None):
    err = SyscallError(name, -ret)
    err.message = message
    err.offset = offset
    err.stats = stats
    return err


def codec_available(codec):
    """True when the C library was built with this codec ('zstd', 'snappy', ...)."""
    return bool(lib.kpy_vmcore_codec_available(CODECS[codec]))


def vmcore_copy(in_fd, out_fd, *, fmt, codec, dump_level, threads, flattened=False,
                no_mmap=False, size_limit=0, progress=None, filter_window=0,
                vmcoreinfo=None):
    """kpy_vmcore_copy(). Returns (status, stats): status 0 for a complete dump, or the
    -errno of an out-of-space / size-limit / cancelled copy that left an incomplete but
    readable dump (stats['incomplete'] is then 1). Any other failure raises."""
    opts = ffi.new("struct kpy_copy_opts *")
    opts.format = DUMP_FORMATS[fmt]
    opts.codec = CODECS[codec]
    opts.dump_level = dump_level
    opts.threads = threads
    opts.flattened = int(bool(flattened))
    opts.no_mmap = int(bool(no_mmap))
    opts.size_limit = size_limit or 0
    opts.filter_window = filter_window or 0
    if vmcoreinfo is not None:
        info_buf = ffi.from_buffer(vmcoreinfo)    # kept alive until the call returns
        opts.vmcoreinfo = ffi.cast("const char *", info_buf)
        opts.vmcoreinfo_len = len(vmcoreinfo)
    cb = handle = None
    if progress is not None:
        cb = _Callback(progress)
        handle = ffi.new_handle(cb)
        opts.progress = lib.kpy_py_progress
        opts.progress_arg = handle
    st = ffi.new("struct kpy_copy_stats *")
    ret = lib.kpy_vmcore_copy(in_fd, out_fd, opts, st)
    stats = {name: getattr(st, name) for name in _STAT_FIELDS}
    message = ffi.string(st.message).decode("utf-8", "replace")
    if cb is not None and cb.exc is not None:
        cb.exc.vmcore_stats = stats
        raise cb.exc
    if ret < 0 and not st.incomplete:
        raise _fail("vmcore_copy", ret, message, st.err_offset, stats)
    stats["message"] = message
    return ret, stats


MU_CLASSES = ("cache", "cache_private", "user", "free", "hwpoison", "offline", "kernel",
              "no_memmap")        # the order of KPY_MU_* in kexecpy.h


class UsageHandle:
    """kpy_vmcore_mem_usage()'s result, kept for kpy_usage_predict()."""

    def __init__(self, st):
        self._st = st
        self.page_size = st.page_size
        self.pages = {name: st.pages[i] for i, name in enumerate(MU_CLASSES)}
        self.pages_total = st.pages_total
        self.crash_reserved = st.crash_reserved
        self.zero = st.zero
        self.stride = st.stride
        self.seconds = st.elapsed_ns / 1e9
        self.sampled = {name: st.sampled[i] for i, name in enumerate(MU_CLASSES)}

    def predict(self, dump_level, fmt, codec):
        """Predicted bytes, or None when codec was not sampled."""
        n = lib.kpy_usage_predict(self._st, dump_level, DUMP_FORMATS[fmt], CODECS[codec])
        return None if n < 0 else n


def vmcore_mem_usage(in_fd, *, codecs=(), sample_target=0, vmcoreinfo=None, iomem=None):
    """kpy_vmcore_mem_usage(): a UsageHandle; failures raise SyscallError."""
    opts = ffi.new("struct kpy_usage_opts *")
    iomem_buf = None
    if iomem is not None:
        iomem_buf = ffi.new("char[]", os.fsencode(iomem))
        opts.iomem = iomem_buf
    for c in codecs:
        opts.codecs |= CODECS[c] or lib.KPY_MU_UNCOMPRESSED
    opts.sample_target = sample_target or 0
    if vmcoreinfo is not None:
        info_buf = ffi.from_buffer(vmcoreinfo)
        opts.vmcoreinfo = ffi.cast("const char *", info_buf)
        opts.vmcoreinfo_len = len(vmcoreinfo)
    st = ffi.new("struct kpy_usage_stats *")
    ret = lib.kpy_vmcore_mem_usage(in_fd, opts, st)
    if ret < 0:
        raise _fail("vmcore_mem_usage", ret, ffi.string(st.message).decode("utf-8", "replace"),
                    st.err_offset)
    return UsageHandle(st)


def flat_rearrange(in_fd, out_fd):
    """kpy_flat_rearrange(): replay a flattened stream into a file. Returns stats."""
    st = ffi.new("struct kpy_flat_stats *")
    ret = lib.kpy_flat_rearrange(in_fd, out_fd, st)
    stats = {"records": st.records, "bytes": st.bytes, "file_size": st.file_size}
    if ret < 0:
        raise _fail("flat_rearrange", ret, ffi.string(st.message).decode("utf-8", "replace"),
                    st.err_offset, stats)
    return stats


class DumpHandle:
    """An open kpy_dump: the caller keeps fd open until close()."""

    _INFO = ("format", "flattened", "codec", "incomplete", "dump_level", "page_size",
             "max_pfn", "nr_frames", "notes_size", "vmcoreinfo_size", "phys_base",
             "elf_machine", "nr_cpus")

    def __init__(self, fd, vmcoreinfo=None):
        pp = ffi.new("struct kpy_dump **")
        info = ffi.new("struct kpy_dump_info *")
        if vmcoreinfo is None:
            ret = lib.kpy_dump_open(fd, pp, info)
        else:
            ret = lib.kpy_dump_open_info(fd, vmcoreinfo, len(vmcoreinfo), pp, info)
        if ret < 0:
            raise _fail("dump_open", ret, ffi.string(info.message).decode("utf-8", "replace"),
                        info.err_offset)
        self._d = pp[0]
        self.info = {name: getattr(info, name) for name in self._INFO}
        self.info["machine"] = ffi.string(info.machine).decode("ascii", "replace")
        self.info["release"] = ffi.string(info.release).decode("ascii", "replace")
        self._page = ffi.new("unsigned char[]", self.info["page_size"])

    def close(self):
        if self._d is not None:
            lib.kpy_dump_close(self._d)
            self._d = None

    def read_page(self, pfn):
        """The frame's bytes; raises SyscallError: ENOENT not in the dump, ENODATA lost
        (incomplete dump), EBADMSG does not decode (.offset names where)."""
        ret = lib.kpy_dump_read_page(self._d, pfn, self._page)
        if ret < 0:
            raise _fail("dump_read_page", ret, "", lib.kpy_dump_error_offset(self._d))
        return bytes(ffi.buffer(self._page))

    def next_run(self, pfn):
        """(start, count) of the first run of present frames at or after pfn, or None."""
        start, count = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        if lib.kpy_dump_next_run(self._d, pfn, start, count) < 0:
            return None
        return start[0], count[0]

    def _blob(self, fn, size):
        buf = ffi.new("unsigned char[]", max(size, 1))
        n = fn(self._d, buf, size)
        return bytes(ffi.buffer(buf, min(n, size)))

    def notes(self):
        return self._blob(lib.kpy_dump_notes, self.info["notes_size"])

    def vmcoreinfo(self):
        return self._blob(lib.kpy_dump_vmcoreinfo, self.info["vmcoreinfo_size"])

    def _message(self):
        return ffi.string(lib.kpy_dump_error_message(self._d)).decode("utf-8", "replace")

    def vtop(self, vaddr):
        """Physical address of a kernel virtual address (x86_64). SyscallError: ENOTSUP
        (not x86_64, no VMCOREINFO), EFAULT (not mapped), ENOENT (a table not in the dump)."""
        out = ffi.new("uint64_t *")
        ret = lib.kpy_dump_vtop(self._d, vaddr, out)
        if ret < 0:
            raise _fail("dump_vtop", ret, "")
        return out[0]

    def read_virt(self, vaddr, size):
        buf = ffi.new("unsigned char[]", max(size, 1))
        ret = lib.kpy_dump_read_virt(self._d, vaddr, buf, size)
        if ret < 0:
            raise _fail("dump_read_virt", ret, "", lib.kpy_dump_error_offset(self._d))
        return bytes(ffi.buffer(buf, size))

    def dmesg(self):
        """The kernel log as bytes, formatted as kexec-tools' vmcore-dmesg prints it."""
        text, size = ffi.new("char **"), ffi.new("size_t *")
        ret = lib.kpy_dump_dmesg(self._d, text, size)
        if ret < 0:
            raise _fail("dump_dmesg", ret, self._message())
        try:
            return bytes(ffi.buffer(text[0], size[0]))
        finally:
            lib.kpy_free(text[0])

    def verify(self, progress=None):
        """Decode every listed page: dict(frames, ok, lost, bad, first_bad_pfn,
        first_bad_offset). Bad pages are counted, not raised."""
        st = ffi.new("struct kpy_verify_stats *")
        cb = handle = None
        fn = ffi.NULL
        if progress is not None:
            cb = _Callback(progress)
            handle = ffi.new_handle(cb)
            fn = lib.kpy_py_progress
        ret = lib.kpy_dump_verify(self._d, st, fn, handle if handle is not None else ffi.NULL)
        if cb is not None and cb.exc is not None:
            raise cb.exc
        if ret < 0 and ret != -errno.EBADMSG:
            raise _fail("dump_verify", ret, "")
        return {name: getattr(st, name) for name in
                ("frames", "ok", "lost", "bad", "first_bad_pfn", "first_bad_offset")}
