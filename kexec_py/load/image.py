"""Kernel and initrd files: open, recognise, decompress.

kexec_file_load takes file descriptors. A kernel compressed as a whole (gzip, zstd, xz)
is decompressed into a memfd first; several initrds are concatenated into one memfd (the
kernel unpacks concatenated cpio archives in order). What the caller gets is a set of
descriptors plus a description of where each came from, for --dry-run and --debug.
"""
import errno
import os
import stat

from .. import native
from ..errors import ImageError
from . import bzimage

HEAD_SIZE = 64 * 1024
# A decompressed kernel larger than this is a corrupt file or a bomb, not a kernel.
MAX_DECOMPRESSED = 1 << 30
_CHUNK = 1 << 20

MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)


def detect_compression(head):
    for magic, name in MAGICS:
        if head.startswith(magic):
            return name
    return None


def describe_unknown(head):
    """A short guess at what a non-kernel file is, for the error message."""
    if head.startswith(b"\x7fELF"):
        return "an ELF file (a vmlinux? kexec_file_load needs a bzImage)"
    if head.startswith(b"MZ"):
        return "a PE/EFI file without a bzImage setup header (UKI or EFI zboot)"
    if head.startswith(b"070701") or head.startswith(b"070702"):
        return "a cpio archive (an initramfs?)"
    if not head:
        return "an empty file"
    return "no x86 bzImage setup header"


def _open_regular(path, what):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise ImageError("cannot open %s %s: %s" % (what, path, e.strerror)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ImageError("%s %s is not a regular file" % (what, path))
    return fd


def _pread_head(fd, path, what):
    try:
        return os.pread(fd, HEAD_SIZE, 0)
    except OSError as e:
        raise ImageError("cannot read %s %s: %s" % (what, path, e.strerror)) from None


def _lzma():
    import lzma            # imported when a kernel is xz-compressed, not at start-up
    return lzma


def _zlib():
    import zlib
    return zlib


def _memfd(name):
    return os.memfd_create(name, os.MFD_CLOEXEC)


def _decompress_py(src_fd, out_fd, decompressor, path, kind):
    total = 0
    with os.fdopen(os.dup(src_fd), "rb") as src:
        src.seek(0)
        try:
            stream = decompressor(src)
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_DECOMPRESSED:
                    raise ImageError("%s: decompressed kernel exceeds %d MiB; corrupt file?"
                                     % (path, MAX_DECOMPRESSED >> 20))
                os.write(out_fd, chunk)
        except (OSError, EOFError, _lzma().LZMAError, _zlib().error) as e:
            if isinstance(e, ImageError):
                raise
            raise ImageError("%s: corrupt %s data: %s" % (path, kind, e)) from None


def decompress_to_memfd(fd, path, kind):
    """Decompress a whole-file gzip/xz/zstd kernel into a new memfd (positioned at 0)."""
    out = _memfd("kexec-kernel")
    try:
        if kind == "gzip":
            import gzip
            _decompress_py(fd, out, lambda f: gzip.GzipFile(fileobj=f), path, kind)
        elif kind == "xz":
            _decompress_py(fd, out, lambda f: _lzma().LZMAFile(f), path, kind)
        elif kind == "zstd":
            if not native.zstd_available():
                raise ImageError("%s is zstd-compressed but kexec-py was built without libzstd"
                                 % path)
            os.lseek(fd, 0, os.SEEK_SET)
            try:
                native.zstd_decompress_fd(fd, out, MAX_DECOMPRESSED)
            except OSError as e:
                raise ImageError("%s: cannot decompress zstd data: %s" % (path, e.strerror)) \
                    from None
        else:  # pragma: no cover - callers pass a kind from MAGICS
            raise ValueError(kind)
    except BaseException:
        os.close(out)
        raise
    os.lseek(out, 0, os.SEEK_SET)
    return out


class KernelImage:
    """An opened kernel: a descriptor ready for kexec_file_load plus what it is
    (compression None, "gzip", "zstd" or "xz"; for a UKI the image it came out of, its
    .cmdline and the file kept open for .initrd)."""

    def __init__(self, path, fd, size, compression, header, version, uki=None,
                 uki_cmdline=None, uki_fd=-1):
        self.path, self.fd, self.size = path, fd, size
        self.compression, self.header, self.version = compression, header, version
        self.uki, self.uki_cmdline, self.uki_fd = uki, uki_cmdline, uki_fd

    @property
    def kind(self):
        kind = "bzImage" if self.compression is None else \
            "bzImage (%s, decompressed into a memfd)" % self.compression
        if self.uki is not None:
            kind += ", the .linux section of a unified kernel image"
        return kind

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.uki_fd >= 0:
            os.close(self.uki_fd)
            self.uki_fd = -1


def _section_to_memfd(fd, section, name):
    """A copy of one section of a file in a new memfd (positioned at 0)."""
    out = _memfd(name)
    try:
        try:
            _copy_fd(fd, out, section.size, section.offset)
        except OSError as e:
            raise ImageError("cannot read section %s: %s" % (section.name, e.strerror)) \
                from None
    except BaseException:
        os.close(out)
        raise
    os.lseek(out, 0, os.SEEK_SET)
    return out


def uki_initrd(kimg):
    """The UKI's .initrd section as the initrd to load."""
    s = kimg.uki.sections[".initrd"]
    fd = _section_to_memfd(kimg.uki_fd, s, "kexec-initrd")
    return Initrd(("%s:.initrd" % kimg.path,), fd, s.size, (s.size,))


def open_kernel(path):
    """Open a kernel image for kexec_file_load, decompressing it when needed; a unified
    kernel image gives its .linux section (and keeps the file open for .initrd)."""
    fd = _open_regular(path, "kernel")
    uki = uki_cmdline = None
    uki_fd = -1
    try:
        head = _pread_head(fd, path, "kernel")
        if not bzimage.is_bzimage(head) and head[:2] == b"MZ":
            from . import uki as _uki       # only for PE files: not at start-up
            if _uki.is_pe(head):
                uki = _uki.parse(fd, path, os.fstat(fd).st_size)
                uki_cmdline = _uki.cmdline(uki, fd)
                uki_fd, fd = fd, -1
                fd = _section_to_memfd(uki_fd, uki.sections[".linux"], "kexec-kernel")
                head = os.pread(fd, HEAD_SIZE, 0)
        compression = detect_compression(head)
        if compression:
            inner = decompress_to_memfd(fd, path, compression)
            os.close(fd)
            fd = inner
            head = os.pread(fd, HEAD_SIZE, 0)
        if not bzimage.is_bzimage(head):
            what = describe_unknown(head)
            if compression:
                what = "%s after %s decompression" % (what, compression)
            if uki is not None:
                what = "its .linux section holds %s" % what
            raise ImageError("%s is not a kernel image: %s" % (path, what))
        hdr = bzimage.parse_setup_header(head)
        return KernelImage(path=path, fd=fd, size=os.fstat(fd).st_size,
                           compression=compression, header=hdr,
                           version=bzimage.kernel_version_string(head, hdr), uki=uki,
                           uki_cmdline=uki_cmdline, uki_fd=uki_fd)
    except BaseException:
        for f in (fd, uki_fd):
            if f >= 0:
                os.close(f)
        raise


def _copy_fd(src, dst, size, start=0):
    """Copy size bytes of src from offset start to dst's position; short copies loop."""
    done = 0
    while done < size:
        sent = os.sendfile(dst, src, start + done, min(size - done, 1 << 30))
        if sent == 0:
            raise OSError(errno.EIO, "file shrank while reading")
        done += sent


class Initrd:
    """The initrd handed to the kernel: one file, or several concatenated in a memfd
    (parts: the size of each)."""

    def __init__(self, paths, fd, size, parts=()):
        self.paths, self.fd, self.size, self.parts = paths, fd, size, parts

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_initrds(paths):
    """Open one or more initrd files; several are concatenated in that order."""
    paths = tuple(paths)
    if not paths:
        raise ValueError("no initrd paths")
    fds = []
    try:
        for p in paths:
            fds.append(_open_regular(p, "initrd"))
        sizes = tuple(os.fstat(fd).st_size for fd in fds)
        if len(fds) == 1:
            fd = fds.pop()
            return Initrd(paths, fd, sizes[0], sizes)
        out = _memfd("kexec-initrd")
        try:
            for fd, p, size in zip(fds, paths, sizes):
                try:
                    _copy_fd(fd, out, size)
                except OSError as e:
                    raise ImageError("cannot read initrd %s: %s" % (p, e.strerror)) from None
        except BaseException:
            os.close(out)
            raise
        os.lseek(out, 0, os.SEEK_SET)
        return Initrd(paths, out, sum(sizes), sizes)
    finally:
        for fd in fds:
            os.close(fd)
