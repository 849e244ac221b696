"""kexec_py.cpio: archives that GNU cpio and busybox cpio accept, as the kernel would."""
import io
import os
import shutil
import stat
import subprocess

import pytest

from kexec_py.cpio import CpioWriter

CPIO = shutil.which("cpio")
BUSYBOX = shutil.which("busybox")
needs_cpio = pytest.mark.skipif(CPIO is None and BUSYBOX is None,
                                reason="GNU cpio or busybox is needed as the oracle")


def cpio_cmd(*args):
    return [CPIO, *args] if CPIO else [BUSYBOX, "cpio", *args]


def build(tmp_path, mtime=1700000000):
    buf = io.BytesIO()
    w = CpioWriter(buf, mtime=mtime)
    w.mkdir("/etc")
    w.add_file("/init", b"#!/bin/sh\necho hello\n", mode=0o755)
    w.add_file("etc/kdump/plan", b"path /var/crash\n", mode=0o600)
    w.add_file("deep/a/b/c.txt", b"x" * 5)              # parents created on demand
    w.add_file("empty", b"")
    w.add_file("odd-size", bytes(range(256)) * 3 + b"\x01")
    w.symlink("/bin/sh", "busybox")
    w.symlink("lib64", "/usr/lib64")
    extra = tmp_path / "host-file"
    extra.write_bytes(b"from the host\n")
    os.chmod(extra, 0o640)
    w.add_path("etc/from-host", str(extra))
    w.close()
    return buf.getvalue()


def test_newc_layout_is_four_byte_aligned_and_ends_with_trailer(tmp_path):
    data = build(tmp_path)
    assert data.startswith(b"070701")
    assert len(data) % 4 == 0
    assert b"TRAILER!!!\0" in data[-128:]


@needs_cpio
def test_listing_names_and_modes(tmp_path):
    archive = tmp_path / "a.cpio"
    archive.write_bytes(build(tmp_path))
    out = subprocess.run(cpio_cmd("-itv", "--quiet") if CPIO else cpio_cmd("-itv"),
                         stdin=open(archive, "rb"), capture_output=True, check=True,
                         text=True).stdout
    rows = {}
    for line in out.splitlines():
        fields = line.split()
        name = fields[8] if len(fields) > 8 else fields[-1]
        rows[name] = fields[0]
    assert set(rows) == {"etc", "init", "etc/kdump", "etc/kdump/plan", "deep", "deep/a",
                         "deep/a/b", "deep/a/b/c.txt", "empty", "odd-size", "bin", "bin/sh",
                         "lib64", "etc/from-host"}
    assert rows["etc"] == "drwxr-xr-x"
    assert rows["init"] == "-rwxr-xr-x"
    assert rows["etc/kdump/plan"] == "-rw-------"
    assert rows["empty"] == "-rw-r--r--"
    assert rows["etc/from-host"] == "-rw-r-----"
    assert rows["bin/sh"] == "lrwxrwxrwx"
    assert "bin/sh -> busybox" in out
    assert "lib64 -> /usr/lib64" in out


@needs_cpio
def test_extracts_contents_modes_and_symlinks(tmp_path):
    archive = tmp_path / "a.cpio"
    archive.write_bytes(build(tmp_path))
    dest = tmp_path / "out"
    dest.mkdir()
    subprocess.run(cpio_cmd("-idm", "--quiet") if CPIO else cpio_cmd("-idm"),
                   stdin=open(archive, "rb"), cwd=str(dest), check=True,
                   capture_output=True)
    assert (dest / "init").read_bytes() == b"#!/bin/sh\necho hello\n"
    assert (dest / "etc/kdump/plan").read_bytes() == b"path /var/crash\n"
    assert (dest / "deep/a/b/c.txt").read_bytes() == b"xxxxx"
    assert (dest / "empty").read_bytes() == b""
    assert (dest / "odd-size").read_bytes() == bytes(range(256)) * 3 + b"\x01"
    assert (dest / "etc/from-host").read_bytes() == b"from the host\n"
    assert stat.S_IMODE(os.stat(dest / "init").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "etc/kdump/plan").st_mode) == 0o600
    assert os.readlink(dest / "bin/sh") == "busybox"
    assert os.readlink(dest / "lib64") == "/usr/lib64"
    assert int(os.stat(dest / "init").st_mtime) == 1700000000


@needs_cpio
def test_concatenated_archives_extract_in_order(tmp_path):
    """The kernel unpacks concatenated archives in turn; a later file overrides."""
    first, second = io.BytesIO(), io.BytesIO()
    w = CpioWriter(first, mtime=0)
    w.add_file("marker", b"first")
    w.add_file("only-first", b"1")
    w.close()
    w = CpioWriter(second, mtime=0)
    w.add_file("marker", b"second")
    w.close()
    dest = tmp_path / "out"
    dest.mkdir()
    # GNU cpio stops at the first trailer, like a single-archive reader; extract each.
    for part in (first.getvalue(), second.getvalue()):
        subprocess.run(cpio_cmd("-idu", "--quiet") if CPIO else cpio_cmd("-idu"),
                       input=part, cwd=str(dest), check=True, capture_output=True)
    assert (dest / "marker").read_bytes() == b"second"
    assert (dest / "only-first").read_bytes() == b"1"


def test_device_node_header_fields():
    buf = io.BytesIO()
    w = CpioWriter(buf, mtime=0)
    w.device("dev/console", "c", 5, 1)
    w.close()
    data = buf.getvalue()
    at = data.index(b"dev/console") - 110
    header = data[at:at + 110].decode()
    fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    mode, rdevmajor, rdevminor, namesize = fields[1], fields[9], fields[10], fields[11]
    assert stat.S_ISCHR(mode) and stat.S_IMODE(mode) == 0o600
    assert (rdevmajor, rdevminor) == (5, 1)
    assert namesize == len("dev/console") + 1


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is the second oracle")
def test_busybox_lists_the_same_names(tmp_path):
    out = subprocess.run([BUSYBOX, "cpio", "-t"], input=build(tmp_path),
                         capture_output=True, check=True).stdout.decode().split()
    assert out == ["etc", "init", "etc/kdump", "etc/kdump/plan", "deep", "deep/a",
                   "deep/a/b", "deep/a/b/c.txt", "empty", "odd-size", "bin", "bin/sh",
                   "lib64", "etc/from-host"]
