"""kexec_py.native: the cffi module, errno -> SyscallError, flag names, zstd.

The only real kexec syscall made here is kexec_file_load with invalid flags, which every
kernel refuses before looking at anything (ENOSYS without kexec, EINVAL with it, EPERM for
a user without CAP_SYS_BOOT).
"""
import errno
import os
import subprocess

import pytest

from kexec_py import native
from kexec_py.errors import SyscallError
# The real wrappers, bound at import: conftest's safety net replaces the module
# attributes during each test.
from kexec_py.native import kexec_file_load as real_kexec_file_load
from kexec_py.native import kexec_load as real_kexec_load

from .conftest import write_file, zstd_tool

needs_zstd_tool = pytest.mark.skipif(zstd_tool() is None,
                                     reason="the zstd command-line tool makes the fixture")
REFUSALS = (errno.ENOSYS, errno.EINVAL, errno.EPERM)


def test_cffi_module_loads_with_every_function():
    from kexec_py import _native
    for name in ("kpy_kexec_file_load", "kpy_kexec_load", "kpy_reboot_kexec",
                 "kpy_zstd_decompress_fd", "kpy_have_zstd"):
        assert callable(getattr(_native.lib, name))
    assert _native.ffi.sizeof("struct kpy_segment") == 32


def test_built_with_libzstd():
    assert native.zstd_available() is True


@pytest.mark.parametrize("cmdline", [None, b"console=ttyS0 quiet"])
def test_kexec_file_load_invalid_flags_raises_syscall_error(cmdline):
    with pytest.raises(OSError) as info:
        real_kexec_file_load(-1, -1, cmdline, 0xDEAD0000)
    err = info.value
    assert isinstance(err, SyscallError)
    assert err.syscall == "kexec_file_load"
    assert err.errno in REFUSALS
    assert err.strerror == os.strerror(err.errno)
    assert str(err) == "kexec_file_load failed: %s" % os.strerror(err.errno)


def test_kexec_load_refuses_too_many_segments_before_the_syscall():
    segments = [(b"x", 0x100000 * (i + 1), 0x1000) for i in range(native.KEXEC_SEGMENT_MAX + 1)]
    with pytest.raises(SyscallError) as info:
        real_kexec_load(0, segments, native.KEXEC_ARCH_X86_64)
    assert info.value.errno == errno.E2BIG
    assert info.value.syscall == "kexec_load"


def test_syscall_error_is_an_oserror_with_errno():
    e = SyscallError("kexec_load", errno.EPERM)
    assert isinstance(e, OSError)
    assert e.errno == errno.EPERM and e.syscall == "kexec_load"
    assert str(e) == "kexec_load failed: Operation not permitted"


@pytest.mark.parametrize("flags,expected", [
    (0, "0"),
    (native.KEXEC_FILE_UNLOAD, "KEXEC_FILE_UNLOAD"),
    (native.KEXEC_FILE_ON_CRASH | native.KEXEC_FILE_NO_INITRAMFS,
     "KEXEC_FILE_ON_CRASH|KEXEC_FILE_NO_INITRAMFS"),
    (0xF, "KEXEC_FILE_UNLOAD|KEXEC_FILE_ON_CRASH|KEXEC_FILE_NO_INITRAMFS|KEXEC_FILE_DEBUG"),
    (native.KEXEC_FILE_DEBUG | 0x30, "KEXEC_FILE_DEBUG|0x30"),
])
def test_flag_names_file(flags, expected):
    assert native.flag_names(flags, native.FILE_FLAG_NAMES) == expected


@pytest.mark.parametrize("flags,expected", [
    (native.KEXEC_ARCH_X86_64, "KEXEC_ARCH_X86_64"),
    (native.KEXEC_ON_CRASH | native.KEXEC_ARCH_X86_64, "KEXEC_ON_CRASH|KEXEC_ARCH_X86_64"),
    (native.KEXEC_ON_CRASH | (3 << 16), "KEXEC_ON_CRASH|0x30000"),
    (native.KEXEC_UPDATE_ELFCOREHDR | 0x8, "KEXEC_UPDATE_ELFCOREHDR|0x8"),
    (0, "0"),
])
def test_flag_names_load(flags, expected):
    assert native.flag_names(flags, native.LOAD_FLAG_NAMES) == expected


def test_flag_values_match_uapi():
    assert (native.KEXEC_FILE_UNLOAD, native.KEXEC_FILE_ON_CRASH,
            native.KEXEC_FILE_NO_INITRAMFS, native.KEXEC_FILE_DEBUG) == (1, 2, 4, 8)
    assert native.KEXEC_ARCH_X86_64 == 0x3E0000


def _zst(tmp_path, data):
    src = write_file(str(tmp_path / "plain"), data)
    subprocess.run(["zstd", "-q", "-f", "-o", src + ".zst", src], check=True)
    return src + ".zst"


def _decompress(path, max_out=1 << 30):
    fd = os.open(path, os.O_RDONLY)
    out = os.memfd_create("t")
    try:
        native.zstd_decompress_fd(fd, out, max_out)
        return os.pread(out, 1 << 24, 0)
    finally:
        os.close(fd)
        os.close(out)


@needs_zstd_tool
def test_zstd_round_trip(tmp_path):
    data = os.urandom(300000) + b"\0" * 2000000 + b"tail"
    assert _decompress(_zst(tmp_path, data)) == data


@needs_zstd_tool
def test_zstd_truncated_is_ebadmsg(tmp_path):
    path = _zst(tmp_path, os.urandom(200000))
    with open(path, "rb") as f:
        half = f.read()[:-100]
    write_file(path, half)
    with pytest.raises(SyscallError) as info:
        _decompress(path)
    assert info.value.errno == errno.EBADMSG
    assert info.value.syscall == "zstd_decompress"


@needs_zstd_tool
def test_zstd_output_limit_is_efbig(tmp_path):
    path = _zst(tmp_path, b"\0" * 1000000)
    with pytest.raises(SyscallError) as info:
        _decompress(path, max_out=4096)
    assert info.value.errno == errno.EFBIG


def test_zstd_empty_input_is_ebadmsg(tmp_path):
    with pytest.raises(SyscallError) as info:
        _decompress(write_file(str(tmp_path / "empty"), b""))
    assert info.value.errno == errno.EBADMSG
