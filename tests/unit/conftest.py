"""Shared fixtures for the unit tests: synthetic kernels and temporary root trees.

Nothing here touches the host: every file the code under test reads lives under a
temporary root that the tests pass as root= (or --root DIR on the command line).
"""
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap

import pytest

RELEASE = "6.1.0-test-amd64"
RUNNING_CMDLINE = ("BOOT_IMAGE=/vmlinuz-%s root=UUID=1234-abcd ro crashkernel=256M "
                   "console=ttyS0,115200 quiet" % RELEASE)
IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-7ffdffff : System RAM
  01000000-01e00fff : Kernel code
  01e01000-0260ffff : Kernel rodata
  6f000000-7effffff : Crash kernel
7ffe0000-7fffffff : Reserved
100000000-17fffffff : System RAM
  170000000-177ffffff : Crash kernel
"""
CRASH_RESERVE = 0x10000000 + 0x8000000  # the two "Crash kernel" ranges above


def make_bzimage(cmdline_size=2048, version=0x020F, setup_sects=2,
                 kver="%s (builder@example) #1 SMP PREEMPT_DYNAMIC" % RELEASE,
                 payload_size=8192, kernel_version_ptr=True, init_size=0x2000000):
    """A tiny x86 bzImage: a valid setup header and a payload of filler bytes.

    Fields are written at their boot.rst offsets so tests can check the parser against
    independent numbers.
    """
    setup = bytearray(((setup_sects or 4) + 1) * 512)  # 0 means 4 (boot.rst)
    struct.pack_into("<B", setup, 0x1F1, setup_sects)
    struct.pack_into("<I", setup, 0x1F4, payload_size // 16)     # syssize
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)                 # boot_flag
    struct.pack_into("<H", setup, 0x200, 0x66EB)                 # jump
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    struct.pack_into("<B", setup, 0x211, 0x01)                   # loadflags: LOADED_HIGH
    struct.pack_into("<I", setup, 0x214, 0x100000)               # code32_start
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)             # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)               # kernel_alignment
    struct.pack_into("<B", setup, 0x234, 1)                      # relocatable_kernel
    struct.pack_into("<B", setup, 0x235, 21)                     # min_alignment
    struct.pack_into("<H", setup, 0x236, 0x03)                   # xloadflags
    struct.pack_into("<I", setup, 0x238, cmdline_size)
    struct.pack_into("<Q", setup, 0x258, 0x1000000)              # pref_address
    struct.pack_into("<I", setup, 0x260, init_size)
    if kver is not None and kernel_version_ptr:
        text = kver.encode() + b"\0"
        at = 0x300
        setup[at:at + len(text)] = text
        struct.pack_into("<H", setup, 0x20E, at - 0x200)
    payload = bytes((i * 7 + 3) & 0xFF for i in range(payload_size))
    return bytes(setup) + payload


def write_file(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)
    return path


class FakeRoot:
    """A temporary tree standing in for "/": /boot, /proc, /sys, /etc."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)

    def __str__(self):
        return self.path

    def p(self, rel):
        """The full path of an absolute path inside the root."""
        return os.path.join(self.path, rel.lstrip("/"))

    def write(self, rel, data, mode=0o644):
        return write_file(self.p(rel), data, mode)

    def read(self, rel):
        with open(self.p(rel)) as f:
            return f.read()

    def kernel(self, rel="/boot/vmlinuz-%s" % RELEASE, **kw):
        return self.write(rel, make_bzimage(**kw))

    def initrd(self, rel="/boot/initramfs-%s.img" % RELEASE, data=None):
        return self.write(rel, data if data is not None else b"070701" + rel.encode())

    def grubenv(self, rel="/boot/grub2/grubenv", **env):
        """A GRUB environment block: a header, key=value lines, '#' padding to 1 KiB."""
        text = "# GRUB Environment Block\n" + "".join("%s=%s\n" % kv for kv in env.items())
        return self.write(rel, text.ljust(1024, "#"))

    def bls(self, ident, text, entries="/boot/loader/entries"):
        """A BLS snippet <ident>.conf; text is dedented."""
        return self.write("%s/%s.conf" % (entries, ident), textwrap.dedent(text).lstrip("\n"))

    def mkdir(self, rel):
        os.makedirs(self.p(rel), exist_ok=True)
        return self.p(rel)

    def standard(self, release=RELEASE, cmdline=RUNNING_CMDLINE, iomem=IOMEM,
                 loaded=0, crash_loaded=0, crash_size=CRASH_RESERVE):
        """The /proc and /sys files a running machine has; /boot left empty."""
        self.write("/proc/cmdline", cmdline + "\n")
        self.write("/proc/sys/kernel/osrelease", release + "\n")
        self.write("/proc/iomem", iomem)
        self.write("/sys/kernel/kexec_loaded", "%d\n" % loaded)
        self.write("/sys/kernel/kexec_crash_loaded", "%d\n" % crash_loaded)
        self.write("/sys/kernel/kexec_crash_size", "%d\n" % crash_size)
        self.mkdir("/boot")
        return self

    def no_crash_reserve(self):
        self.write("/proc/iomem", "\n".join(
            line for line in IOMEM.split("\n") if "Crash kernel" not in line))
        self.write("/sys/kernel/kexec_crash_size", "0\n")
        return self


@pytest.fixture
def fake_root(tmp_path):
    """An empty root tree (no /proc, /sys or /boot files yet)."""
    return FakeRoot(tmp_path / "root")


@pytest.fixture
def root(tmp_path):
    """A root tree with the running machine's /proc and /sys files and an empty /boot."""
    return FakeRoot(tmp_path / "root").standard()


@pytest.fixture
def kernel_path(tmp_path):
    """A synthetic bzImage outside any root, with a 2048-byte cmdline_size."""
    return write_file(str(tmp_path / "bzImage"), make_bzimage())


@pytest.fixture
def small_kernel_path(tmp_path):
    """A bzImage whose setup header accepts only a 64-byte command line."""
    return write_file(str(tmp_path / "bzImage-small"), make_bzimage(cmdline_size=64))


@pytest.fixture
def initrd_paths(tmp_path):
    """Three small initrd files with distinct contents, in order."""
    return [write_file(str(tmp_path / ("initrd%d.img" % n)), ("initrd-%d|" % n).encode() * (n + 3))
            for n in range(3)]


@pytest.fixture
def world_root():
    """A root tree every user can read (uid 65534 runs the CLI against it)."""
    path = tempfile.mkdtemp(prefix="kexec-py-unit-")
    os.chmod(path, 0o755)
    try:
        yield FakeRoot(os.path.join(path, "root")).standard()
    finally:
        shutil.rmtree(path)


def make_tree_readable(top):
    for dirpath, dirnames, filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, stat.S_IMODE(os.stat(full).st_mode) | 0o444)


def compress(kind, data, tmp_path):
    """data compressed as a whole with gzip, xz or zstd (the zstd command-line tool)."""
    if kind == "gzip":
        import gzip
        return gzip.compress(data)
    if kind == "xz":
        import lzma
        return lzma.compress(data)
    if kind == "zstd":
        src = str(tmp_path / "to-compress")
        write_file(src, data)
        return subprocess.run(["zstd", "-q", "-c", src], check=True,
                              stdout=subprocess.PIPE).stdout
    raise ValueError(kind)


def zstd_tool():
    return shutil.which("zstd")


def venv_kexec():
    """The installed `kexec` console script next to this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), "kexec")


# The kexec CLI, in process

class Forbidden(AssertionError):
    pass


def _forbidden(name):
    def call(*args, **kwargs):
        raise Forbidden("the unit tests must never call %s for real" % name)
    return call


@pytest.fixture(autouse=True)
def no_host_side_effects(monkeypatch):
    """Make every call that would change the host fail the test instead.

    Tests that exercise the real load path replace kexec_file_load/kexec_load with
    recorders; nothing ever reaches reboot(), kexec_load or `shutdown -r now`.
    """
    from kexec_py import native
    from kexec_py.load import loader, state
    monkeypatch.setattr(native, "kexec_file_load", _forbidden("kexec_file_load"))
    monkeypatch.setattr(native, "kexec_load", _forbidden("kexec_load"))
    monkeypatch.setattr(native, "reboot_kexec", _forbidden("reboot"))
    monkeypatch.setattr(loader.os, "execvp", _forbidden("execvp (shutdown -r now)"))
    monkeypatch.setattr(loader.os, "sync", _forbidden("sync"))
    monkeypatch.setattr(state, "has_cap_sys_boot", lambda: False)


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    @property
    def lines(self):
        return self.out.splitlines()

    def __repr__(self):
        return "Result(code=%r, out=%r, err=%r)" % (self.code, self.out, self.err)


@pytest.fixture
def kexec(capsys):
    """kexec(*args) runs kexec_py.cli.kexec.main in process: Result(code, out, err)."""
    from kexec_py.cli.kexec import main

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, -v, usage errors
            code = e.code
        out, err = capsys.readouterr()
        return Result(code, out, err)
    return run


# The kexec CLI as another user

NOBODY = 65534
PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/libexec/platform-python", "/usr/bin/python3.11")


def _drop_to_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@pytest.fixture(scope="session")
def unprivileged():
    """(argv prefix, env, preexec_fn) running kexec as uid 65534 (or, when the tests
    already run as a user, as that user).

    The package is copied into a world-readable directory and run by the first
    interpreter that user can execute: the venv's interpreter may live under a private
    home directory.
    """
    import kexec_py
    top = tempfile.mkdtemp(prefix="kexec-py-pkg-")
    try:
        shutil.copytree(os.path.dirname(kexec_py.__file__), os.path.join(top, "kexec_py"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        make_tree_readable(top)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": top,
               "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8", "HOME": "/"}
        preexec = _drop_to_nobody if os.geteuid() == 0 else None
        tried = []
        for python in (sys.executable,) + PYTHON_CANDIDATES:
            if not os.path.exists(python):
                continue
            argv = [python, "-m", "kexec_py.cli.kexec"]
            try:
                probe = subprocess.run(argv + ["-v"], env=env, cwd="/", preexec_fn=preexec,
                                       capture_output=True, text=True, timeout=60)
            except OSError as e:
                tried.append("%s: %s" % (python, e))
                continue
            if probe.returncode == 0 and "kexec-py" in probe.stdout:
                yield argv, env, preexec
                return
            tried.append("%s: %s" % (python, probe.stderr.strip()[-200:]))
        pytest.fail("no Python interpreter can run kexec_py as uid %d: %s"
                    % (NOBODY, "; ".join(tried)))
    finally:
        shutil.rmtree(top)
