"""Reading the machine's files under a root prefix.

Every module that reads /proc, /sys, /boot or /etc takes a root (default "/") and goes
through these helpers, so tests point it at a temporary tree and never touch the host.
"""
import os


def join(root, path):
    """root + absolute path, e.g. join('/tmp/t', '/boot/x') -> '/tmp/t/boot/x'."""
    root = root or "/"
    return os.path.join(root, path.lstrip("/"))


def read_text(root, path, default=None):
    """The file's text, or default when it does not exist or cannot be read."""
    try:
        with open(join(root, path), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def read_first_line(root, path, default=None):
    text = read_text(root, path)
    if text is None:
        return default
    return text.split("\n", 1)[0].strip()


def exists(root, path):
    return os.path.exists(join(root, path))


def running_release(root):
    """The running kernel's release (uname -r) as seen under root."""
    release = read_first_line(root, "/proc/sys/kernel/osrelease")
    if release:
        return release
    if (root or "/") == "/":
        return os.uname().release
    return None
