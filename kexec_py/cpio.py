"""A writer for the cpio "newc" format the kernel unpacks as an initramfs.

Used to build initramfs images without an external cpio binary. Archives can be
concatenated (the kernel unpacks each in turn), so appending a file to an existing
initramfs is writing a second small archive after it.
"""
import os
import stat
import time

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
