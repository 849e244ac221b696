"""The cpio "newc" format the kernel unpacks as an initramfs: a writer and a reader.

The writer builds initramfs images without an external cpio binary. Archives can be
concatenated (the kernel unpacks each in turn), so appending a file to an existing
initramfs is writing a second small archive after it.

The reader (iter_members, list_names, read_member) lists what an initramfs holds, for
`kdumpctl estimate` and for checks on a built capture initramfs.
"""
import bz2
import lzma
import os
import shutil
import stat
import struct
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass

from .errors import FormatError, KexecError

_HEADER = "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X"
TRAILER = "TRAILER!!!"


def _pad4(n):
    return (4 - n % 4) % 4


class CpioWriter:
    """Write entries to a binary file object in newc format; call close() for the trailer."""

    def __init__(self, fileobj, mtime=None):
        self.f = fileobj
        self.mtime = int(time.time() if mtime is None else mtime)
        self._ino = 1000
        self._dirs = set()

    def _entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name = name.lstrip("/") or "."
        raw = name.encode() + b"\0"
        self._ino += 1
        header = _HEADER % (self._ino, mode, 0, 0, nlink, self.mtime, len(data), 0, 0,
                            rdev[0], rdev[1], len(raw), 0)
        self.f.write(header.encode() + raw + b"\0" * _pad4(110 + len(raw)))
        if data:
            self.f.write(data + b"\0" * _pad4(len(data)))

    def mkdir(self, name, mode=0o755):
        """Add a directory and any missing parents."""
        name = name.strip("/")
        parts = name.split("/") if name else []
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            if path not in self._dirs:
                self._dirs.add(path)
                self._entry(path, stat.S_IFDIR | mode, nlink=2)

    def add_file(self, name, data, mode=0o644):
        self.mkdir(os.path.dirname(name.strip("/")))
        self._entry(name, stat.S_IFREG | mode, data)

    def add_path(self, name, path, mode=None):
        with open(path, "rb") as src:
            data = src.read()
        self.add_file(name, data, stat.S_IMODE(os.stat(path).st_mode) if mode is None else mode)

    def symlink(self, name, target):
        self.mkdir(os.path.dirname(name.strip("/")))
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def device(self, name, kind, major, minor, mode=0o600):
        """kind is "c" or "b"."""
        fmt = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        self.mkdir(os.path.dirname(name.strip("/")))
        self._entry(name, fmt | mode, rdev=(major, minor))

    def close(self):
        self._entry(TRAILER, 0, nlink=1)


# Reading: the names (and, on request, the contents) of the members of an initramfs

NEWC_MAGICS = (b"070701", b"070702")   # newc, and newc with checksums
HEADER_SIZE = 110
MAX_NAME = 4096                        # PATH_MAX: a longer name is a corrupt header
MAX_MEMBER_DATA = 16 << 20             # contents kept for a wanted member, at most
_CHUNK = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

COMPRESSIONS = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (_ZSTD_MAGIC, "zstd"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x89LZO", "lzo"),
)


@dataclass(frozen=True)
class CpioMember:
    """One member of an archive: its name, mode and size; data only when asked for."""

    name: str
    mode: int
    size: int
    data: bytes = None

    @property
    def is_file(self):
        return stat.S_ISREG(self.mode)


class _Reader:
    """Sequential reads over a series of byte chunks, counting the offset.

    limit is the stream's length when it is known (a plain file); sizes read from the
    archive are checked against it before anything is skipped or read.
    """

    def __init__(self, chunks, path, where, limit=None, start=0):
        self.chunks = iter(chunks)
        self.path, self.where, self.limit = path, where, limit
        self.offset = start          # offset of the next unread byte in this stream
        self.buf = b""
        self.pos = 0                 # unread data is buf[pos:] (no copying per read)

    def _avail(self):
        return len(self.buf) - self.pos

    def _fill(self, n):
        while self._avail() < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                return False
            self.buf = self.buf[self.pos:] + chunk
            self.pos = 0
        return True

    def peek(self, n):
        self._fill(n)
        return self.buf[self.pos:self.pos + n]

    def error(self, message, offset=None):
        at = self.offset if offset is None else offset
        if self.where:
            return FormatError(self.path, "%s at offset %#x of the %s" % (message, at, self.where))
        return FormatError(self.path, message, offset=at)

    def check(self, n, what):
        if self.limit is not None and self.offset + n > self.limit:
            raise self.error("%s needs %d bytes but only %d remain"
                             % (what, n, self.limit - self.offset))

    def read(self, n, what):
        self.check(n, what)
        if not self._fill(n):
            raise self.error("%s is cut short (%d of %d bytes)" % (what, self._avail(), n))
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        self.offset += n
        return out

    def skip(self, n, what):
        self.check(n, what)
        while n:
            if not self._avail() and not self._fill(1):
                raise self.error("%s is cut short" % what)
            step = min(n, self._avail())
            self.pos += step
            self.offset += step
            n -= step

    def skip_zeros(self):
        """Skip NUL padding between archives (the kernel does the same)."""
        while True:
            if not self._avail() and not self._fill(1):
                return
            at = self.pos
            while at < len(self.buf) and self.buf[at] == 0:
                at += 1
            self.offset += at - self.pos
            self.pos = at
            if self._avail():
                return

    def at_end(self):
        return not self._avail() and not self._fill(1)

    def rest(self):
        """The unread bytes as chunks (used to hand the tail to a decompressor)."""
        if self._avail():
            yield self.buf[self.pos:]
        self.buf, self.pos = b"", 0
        yield from self.chunks


def _file_chunks(f, start):
    f.seek(start)
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            return
        yield chunk


def _members(rd, want):
    """The members of one newc archive (up to and including its trailer)."""
    while True:
        start = rd.offset
        header = rd.read(HEADER_SIZE, "cpio header")
        if header[:6] not in NEWC_MAGICS:
            raise rd.error("not a newc cpio header (magic %r)" % header[:6], start)
        try:
            fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise rd.error("cpio header with a field that is not hex", start) from None
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        if not 1 <= namesize <= MAX_NAME:
            raise rd.error("cpio header with a name size of %d" % namesize, start)
        raw = rd.read(namesize, "member name")
        if raw[-1:] != b"\0":
            raise rd.error("member name not NUL-terminated", start)
        name = raw[:-1].decode("utf-8", "surrogateescape")
        rd.skip(_pad4(HEADER_SIZE + namesize), "name padding")
        if name == TRAILER:
            pad = _pad4(rd.offset - start)
            rd.skip(min(pad, len(rd.peek(pad))), "padding")
            return
        data = None
        what = "member %r" % name
        if want is not None and filesize <= MAX_MEMBER_DATA and want(name):
            data = rd.read(filesize, what)
        else:
            rd.skip(filesize, what)
        yield CpioMember(name, mode, filesize, data)
        pad = _pad4(rd.offset - start)   # the kernel insists on 4-byte aligned headers
        if pad:
            rd.skip(min(pad, len(rd.peek(pad))), "padding")


def _archives(rd, want, compressed_ok):
    """Members of every archive in a stream; stops at compressed data when compressed_ok.

    Returns (by StopIteration value) the compression name found, or None at the end.
    """
    while True:
        rd.skip_zeros()
        if rd.at_end():
            return None
        head = rd.peek(6)
        if head in NEWC_MAGICS:
            yield from _members(rd, want)
            continue
        kind = next((name for magic, name in COMPRESSIONS if head.startswith(magic)), None)
        if kind and compressed_ok:
            return kind
        if compressed_ok:
            raise rd.error("neither a cpio archive nor compressed data (%r)" % head)
        raise rd.error("junk after the archives in compressed data (%r)" % head)


def _decompressor(kind):
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)
    if kind == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "zstd":
        try:
            from compression import zstd  # Python 3.14
        except ImportError:
            return None
        return zstd.ZstdDecompressor()
    return None


def _inline_stream(chunks, kind, path, start, end_box):
    """Decompressed chunks of one stream; end_box gets the bytes after the stream."""
    dec = _decompressor(kind)
    for chunk in chunks:
        try:
            out = dec.decompress(chunk)
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as e:
            raise FormatError(path, "bad %s data: %s" % (kind, e), offset=start) from None
        if out:
            yield out
        if dec.eof:
            end_box.append(dec.unused_data)
            return
    if not dec.eof:
        raise FormatError(path, "%s data is cut short" % kind, offset=start)
    end_box.append(b"")


def zstd_stream_length(f, start, size, path):
    """Bytes from start that the zstd frames there take up (walking the frame headers)."""
    pos = start
    while pos + 4 <= size:
        f.seek(pos)
        magic = f.read(4)
        if magic == _ZSTD_MAGIC:
            pos = _zstd_frame_end(f, pos, size, path)
        elif magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50:  # skippable frame
            length = struct.unpack("<I", f.read(4).ljust(4, b"\0"))[0]
            pos += 8 + length
        else:
            break
        if pos > size:
            raise FormatError(path, "zstd frame runs past the end of the file", offset=start)
    return pos - start


def _zstd_frame_end(f, pos, size, path):
    f.seek(pos + 4)
    desc = f.read(1)
    if not desc:
        raise FormatError(path, "zstd frame header is cut short", offset=pos)
    fhd = desc[0]
    single_segment = fhd >> 5 & 1
    fcs_size = (0, 2, 4, 8)[fhd >> 6] if (fhd >> 6 or not single_segment) else 1
    dict_size = (0, 1, 2, 4)[fhd & 3]
    header = 5 + (0 if single_segment else 1) + dict_size + fcs_size
    at = pos + header
    while True:
        if at + 3 > size:
            raise FormatError(path, "zstd block header past the end of the file", offset=at)
        f.seek(at)
        b = f.read(3)
        value = b[0] | b[1] << 8 | b[2] << 16
        last, btype, bsize = value & 1, value >> 1 & 3, value >> 3
        if btype == 3:
            raise FormatError(path, "zstd block of the reserved type", offset=at)
        at += 3 + (1 if btype == 1 else bsize)
        if at > size:
            raise FormatError(path, "zstd block runs past the end of the file", offset=at)
        if last:
            break
    if fhd >> 2 & 1:
        at += 4  # content checksum
    return at


def _zstd_command(path, f, start, length):
    """Decompressed chunks from the zstd command fed the byte range [start, start+length)."""
    tool = shutil.which("zstd")
    if tool is None:
        raise KexecError("%s: the main archive is zstd-compressed and the zstd command is not "
                         "installed: install zstd" % path, exit_code=1)
    proc = subprocess.Popen([tool, "-d", "-c", "-q"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed():
        try:
            with open(path, "rb") as src:
                src.seek(start)
                left = length
                while left:
                    chunk = src.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    proc.stdin.write(chunk)
                    left -= len(chunk)
        except (OSError, ValueError):
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        while True:
            chunk = proc.stdout.read(_CHUNK)
            if not chunk:
                break
            yield chunk
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        rc = proc.wait()
        writer.join()
    if rc != 0:
        raise FormatError(path, "bad zstd data: %s" % (err or "zstd exited %d" % rc),
                          offset=start)


def iter_members(path, want=None):
    """Every member of every archive in an initramfs file, in order.

    Handles what the kernel unpacks: concatenated newc archives with NUL padding between
    them, an uncompressed early archive (microcode) followed by a gzip, xz, lzma, bzip2
    or zstd compressed one, and several compressed streams in a row. want(name) -> bool
    selects members whose contents (up to 16 MiB) are returned in .data. Every size read
    from the file is checked against the file; a damaged file raises FormatError.
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise KexecError("cannot read %s: %s" % (path, e.strerror), exit_code=1) from None
    with f:
        try:
            size = os.fstat(f.fileno()).st_size
            yield from _iter_file(f, path, size, want)
        except OSError as e:
            raise KexecError("cannot read %s: %s" % (path, e.strerror), exit_code=1) from None


def _iter_file(f, path, size, want):
    pos = 0
    while pos < size:
        rd = _Reader(_file_chunks(f, pos), path, "", limit=size, start=pos)
        kind = yield from _archives(rd, want, compressed_ok=True)
        if kind is None:
            return
        start = rd.offset
        where = "%s data at offset %#x" % (kind, start)
        if kind in ("lz4", "lzo"):
            raise FormatError(path, "%s-compressed archives are not supported (use gzip, xz, "
                              "zstd, bzip2 or lzma)" % kind, offset=start)
        if kind == "zstd" and _decompressor("zstd") is None:
            length = zstd_stream_length(f, start, size, path)
            inner = _Reader(_zstd_command(path, f, start, length), path, "decompressed " + where)
            yield from _archives(inner, want, compressed_ok=False)
            pos = start + length
            continue
        box = []
        inner = _Reader(_inline_stream(rd.rest(), kind, path, start, box), path,
                        "decompressed " + where)
        yield from _archives(inner, want, compressed_ok=False)
        for _ in inner.rest():   # drain so the decompressor reaches the end of its stream
            pass
        pos = size - _remaining(f, size, box)


def _remaining(f, size, box):
    """Bytes of the file after the compressed stream just read (unused_data + unread)."""
    unused = len(box[0]) if box else 0
    return unused + (size - f.tell())


def list_names(path):
    """The names of all members of an initramfs (see iter_members), in order."""
    return [m.name for m in iter_members(path)]


def read_member(path, name):
    """The contents of the last member called name (a later archive overrides), or None."""
    found = None
    for m in iter_members(path, want=lambda n: n.lstrip("./") == name.lstrip("./")):
        if m.data is not None:
            found = m.data
    return found
