"""copy(): save a vmcore as a kdump-compressed, ELF or flattened dump (the C copier)."""
import os
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Union

from .. import native
from .errors import IncompleteDumpError, OptionError, VmcoreError, from_native

FORMATS = ("kdump", "elf")
COMPRESSIONS = tuple(native.CODECS)        # the C library's table: none zlib lzo zstd snappy

PathOrFd = Union[str, "os.PathLike[str]", int]
Progress = Callable[[int, int, int], Optional[bool]]


@dataclass(frozen=True)
class CopyStats:
    """What a copy did. Pages are page frames of page_size bytes."""

    pages_in: int         #: RAM page frames in the vmcore
    pages_zero: int       #: of those, all-zero
    pages_excluded: int   #: left out of the dump (ELF: zero runs of 256+ frames)
    pages_written: int    #: in the dump (own data, or the shared zero page)
    pages_lost: int       #: not written because the dump was cut short
    bytes_out: int        #: bytes written (flattened: payload, without record headers)
    file_size: int        #: size of the dump file (flattened: of the rebuilt file)
    seconds: float
    page_size: int
    incomplete: bool      #: the dump is marked incomplete
    format: str
    compression: str
    dump_level: int
    threads: int
    flattened: bool

    def to_dict(self):
        return asdict(self)


def _check_options(format, compression, dump_level, threads, flattened):
    if format not in FORMATS:
        raise OptionError("format must be one of %s, not %r" % (", ".join(FORMATS), format))
    if compression not in COMPRESSIONS:
        raise OptionError("compression must be one of %s, not %r"
                          % (", ".join(COMPRESSIONS), compression))
    if format == "elf" and compression != "none":
        raise OptionError("ELF dumps are not compressed: use compression='none'")
    if not isinstance(dump_level, int) or not 0 <= dump_level <= 31:
        raise OptionError("dump_level must be 0..31, not %r" % (dump_level,))
    if not isinstance(threads, int) or not 0 <= threads <= 256:
        raise OptionError("threads must be 0..256, not %r" % (threads,))
    if compression != "none" and not native.codec_available(compression):
        raise OptionError("%s compression is not available in this build" % compression)


def _open_src(src):
    """(fd, whether we opened it, name) for an fd, a binary file object or a path."""
    if isinstance(src, int):
        return src, False, "<fd %d>" % src
    if hasattr(src, "fileno"):
        return src.fileno(), False, getattr(src, "name", "<stream>")
    return os.open(src, os.O_RDONLY | os.O_CLOEXEC), True, os.fspath(src)


def _open_dst(dst, overwrite):
    if isinstance(dst, int):
        return dst, False, "<fd %d>" % dst
    if hasattr(dst, "fileno"):
        dst.flush()
        return dst.fileno(), False, getattr(dst, "name", "<stream>")
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        return os.open(dst, flags, 0o600), True, os.fspath(dst)
    except FileExistsError:
        raise OptionError("%s already exists (pass overwrite=True to replace it)"
                          % os.fspath(dst)) from None


def _stats(raw, format, compression, dump_level, threads, flattened):
    return CopyStats(
        pages_in=raw["pages_in"], pages_zero=raw["pages_zero"],
        pages_excluded=raw["pages_excluded"], pages_written=raw["pages_written"],
        pages_lost=raw["pages_lost"], bytes_out=raw["bytes_out"],
        file_size=raw["file_size"], seconds=raw["elapsed_ns"] / 1e9,
        page_size=raw["page_size"], incomplete=bool(raw["incomplete"]), format=format,
        compression=compression, dump_level=dump_level, threads=threads,
        flattened=bool(flattened))


def _raise_failure(err, src_name, dst_name, made):
    """A SyscallError from native.vmcore_copy -> our exception (errors.from_native)."""
    raise from_native(err, src_name, dst_name, stats=made(err.stats) if err.stats else None,
                      copying=True) from None


def _info_bytes(vmcoreinfo):
    if vmcoreinfo is None or isinstance(vmcoreinfo, bytes):
        return vmcoreinfo
    return vmcoreinfo.encode("ascii")


def copy(src: PathOrFd, dst, *, format: str = "kdump", compression: str = "none",
         dump_level: int = 1, threads: int = 1, progress: Optional[Progress] = None,
         flattened: bool = False, size_limit: Optional[int] = None,
         overwrite: bool = False, use_mmap: bool = True,
         filter_window: Optional[int] = None,
         vmcoreinfo: Optional[Union[str, bytes]] = None) -> CopyStats:
    """Copy the vmcore src (a path such as "/proc/vmcore", or an open fd) into dst.

    src: an ELF vmcore (/proc/vmcore, a saved one, QEMU's dump-guest-memory ELF) or a
    kdump-compressed dump, flattened or not (re-filter it to a higher dump_level,
    re-compress it, or turn it into ELF).

    dst: a path (created with mode 0600; an existing file is an error unless
    overwrite=True), an open fd, or a binary file object (flattened streams to a pipe).

    format: "kdump" (kdump-compressed, what crash and drgn read best) or "elf".
    compression: "none", "zlib", "lzo", "zstd" or "snappy" (kdump only; each page on
    its own). dump_level: makedumpfile's bits, 0..31: 1 leaves out zero pages (kdump:
    they share one stored zero page; ELF: runs of 256+ are left to p_memsz), 2 page
    cache, 4 page cache including private, 8 user pages, 16 free pages; with any of
    2-16 hardware-poisoned and offline pages go too. Bits 2-16 read the crashed
    kernel's struct pages (x86_64, VMCOREINFO); in ELF the frames they leave out end a
    PT_LOAD (PN_XNUM past 65534 of them). A key they need that the kernel does not
    export raises OptionError naming it.
    filter_window: frames classified at once for bits 2-16 (memory stays bounded by
    it; default 512Ki frames, a 64 KiB bitmap).
    threads: compression workers; 0 or 1 keeps everything on the calling thread.
    flattened: write makedumpfile's flattened stream (rebuild it with rearrange()).
    size_limit: stop at this many bytes, leaving an incomplete dump.
    vmcoreinfo: VMCOREINFO text (makedumpfile -g's KEY=VALUE lines of the same kernel)
    that supplies the one an ELF dump lacks (a QEMU guest dump taken without -device
    vmcoreinfo) or replaces it.
    progress: called as progress(done_pages, total_pages, bytes_out) as pages are
    written (about every 0.1%); return False to cancel. An exception it raises cancels
    the copy and is re-raised after the dump is closed (incomplete).

    Returns a CopyStats. Raises IncompleteDumpError (with .stats) when the dump had to
    be closed incomplete: out of space, size_limit reached, cancelled; DumpFormatError
    when src is not a usable vmcore (names the file and offset); DumpWriteError when
    writing failed otherwise; OptionError for bad options.
    """
    _check_options(format, compression, dump_level, threads, flattened)

    def made(raw):
        return _stats(raw, format, compression, dump_level, threads, flattened)

    in_fd, close_in, src_name = _open_src(src)
    try:
        out_fd, close_out, dst_name = _open_dst(dst, overwrite)
        try:
            status, raw = native.vmcore_copy(
                in_fd, out_fd, fmt=format, codec=compression, dump_level=dump_level,
                threads=threads, flattened=flattened, no_mmap=not use_mmap,
                size_limit=size_limit or 0, progress=progress,
                filter_window=filter_window or 0, vmcoreinfo=_info_bytes(vmcoreinfo))
        except native.SyscallError as err:
            if close_out:
                os.close(out_fd)
                close_out = False
                if not (err.stats or {}).get("incomplete"):
                    os.unlink(dst)   # nothing usable: leave no file that looks like a dump
            _raise_failure(err, src_name, dst_name, made)
        finally:
            if close_out:
                os.close(out_fd)
    finally:
        if close_in:
            os.close(in_fd)
    stats = made(raw)
    if status < 0:
        raise IncompleteDumpError(dst_name, raw["message"], stats, errno=-status)
    return stats


def rearrange(stream, dst, *, overwrite: bool = False) -> int:
    """Rebuild the dump file a flattened stream describes (vmcore-copy -R). stream: an
    fd, a path or a binary file object. Returns the rebuilt file's size. A stream cut
    short raises IncompleteDumpError; the file then keeps its incomplete mark."""
    in_fd, close_in, _ = _open_src(stream)
    try:
        out_fd, close_out, dst_name = _open_dst(dst, overwrite)
        try:
            return native.flat_rearrange(in_fd, out_fd)["file_size"]
        except native.SyscallError as err:
            if err.stats and err.stats["records"]:
                raise IncompleteDumpError(dst_name, err.message, None, errno=err.errno) \
                    from None
            raise VmcoreError("%s: %s" % (dst_name, err.message)) from None
        finally:
            if close_out:
                os.close(out_fd)
    finally:
        if close_in:
            os.close(in_fd)
