"""Kernel and initrd files: bzImage probe, setup header, decompression, bad files."""
import gzip
import lzma
import os

import pytest

from kexec_py.errors import ImageError
from kexec_py.load import bzimage, image

from .conftest import RELEASE, compress, make_bzimage, write_file, zstd_tool

COMPRESSIONS = ["gzip", "xz", pytest.param("zstd", marks=pytest.mark.skipif(
    zstd_tool() is None, reason="the zstd command-line tool is needed to make the fixture"))]


def open_fds():
    return set(os.listdir("/proc/self/fd"))


def fd_bytes(fd):
    out, offset = [], 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(out)
        out.append(chunk)
        offset += len(chunk)


def fd_target(fd):
    return os.readlink("/proc/self/fd/%d" % fd)


@pytest.fixture
def no_leak():
    before = open_fds()
    yield
    assert open_fds() - before == set(), "file descriptors leaked"


# setup header

def test_setup_header_fields_at_boot_protocol_offsets():
    data = make_bzimage(cmdline_size=4095, setup_sects=3)
    assert bzimage.is_bzimage(data[:0x300])
    hdr = bzimage.parse_setup_header(data)
    assert hdr.setup_sects == 3
    assert hdr.boot_flag == 0xAA55
    assert hdr.header == b"HdrS"
    assert hdr.version == 0x020F and hdr.protocol == (2, 15)
    assert hdr.loadflags & bzimage.LOADED_HIGH
    assert hdr.xloadflags == bzimage.XLF_KERNEL_64 | bzimage.XLF_CAN_BE_LOADED_ABOVE_4G
    assert hdr.cmdline_size == 4095 and hdr.max_cmdline == 4095
    assert hdr.kernel_alignment == 0x200000
    assert hdr.relocatable_kernel == 1 and hdr.min_alignment == 21
    assert hdr.initrd_addr_max == 0x7FFFFFFF
    assert hdr.code32_start == 0x100000
    assert hdr.pref_address == 0x1000000
    assert hdr.init_size == 0x2000000
    assert hdr.setup_size == 4 * 512
    assert bzimage.kernel_version_string(data, hdr).startswith(RELEASE + " (builder@")


def test_setup_sects_zero_means_four():
    hdr = bzimage.parse_setup_header(make_bzimage(setup_sects=0, kver=None))
    assert hdr.setup_sects == 0 and hdr.setup_size == 5 * 512


def test_old_protocol_limits_cmdline_to_255():
    hdr = bzimage.parse_setup_header(make_bzimage(version=0x0205, cmdline_size=4096))
    assert hdr.max_cmdline == 255


def test_no_kernel_version_pointer_gives_empty_string():
    data = make_bzimage(kernel_version_ptr=False)
    assert bzimage.kernel_version_string(data, bzimage.parse_setup_header(data)) == ""


@pytest.mark.parametrize("mutate", [
    lambda b: b[:0x205],                                       # too short
    lambda b: b[:0x202] + b"HdrX" + b[0x206:],                 # bad magic
    lambda b: b[:0x1FE] + b"\x55\xab" + b[0x200:],             # bad boot flag
])
def test_is_bzimage_rejects(mutate):
    assert not bzimage.is_bzimage(mutate(make_bzimage()))


@pytest.mark.parametrize("head,kind", [
    (b"\x1f\x8b\x08", "gzip"), (b"\x28\xb5\x2f\xfd\x00", "zstd"), (b"\xfd7zXZ\x00\x00", "xz"),
    (b"MZ\x90", None), (b"", None),
])
def test_detect_compression(head, kind):
    assert image.detect_compression(head) == kind


# kernels

def test_open_plain_bzimage(kernel_path, no_leak):
    kimg = image.open_kernel(kernel_path)
    try:
        assert kimg.compression is None and kimg.kind == "bzImage"
        assert kimg.path == kernel_path
        assert kimg.size == os.path.getsize(kernel_path)
        assert fd_target(kimg.fd) == kernel_path
        assert kimg.version.split()[0] == RELEASE
        assert kimg.header.cmdline_size == 2048
    finally:
        kimg.close()
    assert kimg.fd == -1


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_compressed_kernel_is_decompressed_into_memfd(tmp_path, kind, no_leak):
    raw = make_bzimage(cmdline_size=1024, payload_size=200000)
    path = write_file(str(tmp_path / ("vmlinuz." + kind)), compress(kind, raw, tmp_path))
    assert os.path.getsize(path) < len(raw)
    kimg = image.open_kernel(path)
    try:
        assert kimg.compression == kind
        assert kimg.kind == "bzImage (%s, decompressed into a memfd)" % kind
        assert fd_target(kimg.fd).startswith("/memfd:kexec-kernel")
        assert os.lseek(kimg.fd, 0, os.SEEK_CUR) == 0
        assert fd_bytes(kimg.fd) == raw
        assert kimg.size == len(raw)
        assert kimg.header.cmdline_size == 1024
        assert kimg.version.startswith(RELEASE)
    finally:
        kimg.close()


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_corrupt_compressed_kernel(tmp_path, kind, no_leak):
    good = compress(kind, make_bzimage(payload_size=100000), tmp_path)
    bad = good[:len(good) // 2]  # truncated in the middle of the stream
    path = write_file(str(tmp_path / ("broken." + kind)), bad)
    with pytest.raises(ImageError) as info:
        image.open_kernel(path)
    message = str(info.value)
    assert path in message
    assert kind in message
    assert info.value.exit_code == 255


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_garbage_after_magic(tmp_path, kind, no_leak):
    magic = dict((name, m) for m, name in image.MAGICS)[kind]
    path = write_file(str(tmp_path / "garbage"), magic + os.urandom(4096))
    with pytest.raises(ImageError) as info:
        image.open_kernel(path)
    assert path in str(info.value)


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_compressed_file_that_is_no_kernel(tmp_path, kind, no_leak):
    path = write_file(str(tmp_path / "notkernel"), compress(kind, b"\x7fELF" + b"\0" * 4000,
                                                           tmp_path))
    with pytest.raises(ImageError) as info:
        image.open_kernel(path)
    assert str(info.value) == ("%s is not a kernel image: an ELF file (a vmlinux? "
                               "kexec_file_load needs a bzImage) after %s decompression"
                               % (path, kind))


def test_decompressed_size_limit(tmp_path, monkeypatch, no_leak):
    monkeypatch.setattr(image, "MAX_DECOMPRESSED", 4096)
    monkeypatch.setattr(image, "_CHUNK", 1024)
    path = write_file(str(tmp_path / "big.gz"), gzip.compress(make_bzimage(payload_size=65536)))
    with pytest.raises(ImageError) as info:
        image.open_kernel(path)
    assert "exceeds" in str(info.value) and path in str(info.value)


@pytest.mark.parametrize("data,what", [
    (b"\x7fELF\x02\x01\x01" + b"\0" * 100, "an ELF file"),
    (b"070701" + b"0" * 200, "a cpio archive"),
    (b"", "an empty file"),
    (b"MZ" + b"\0" * 1000, "a PE/EFI file"),
    (b"hello world\n" * 100, "no x86 bzImage setup header"),
])
def test_file_that_is_no_kernel(tmp_path, data, what, no_leak):
    path = write_file(str(tmp_path / "not-a-kernel"), data)
    with pytest.raises(ImageError) as info:
        image.open_kernel(path)
    message = str(info.value)
    assert message.startswith("%s is not a kernel image: %s" % (path, what))
    assert "\n" not in message


def test_missing_kernel(tmp_path, no_leak):
    path = str(tmp_path / "vmlinuz-missing")
    with pytest.raises(ImageError) as info:
        image.open_kernel(path)
    assert str(info.value) == "cannot open kernel %s: No such file or directory" % path
    assert info.value.exit_code == 255


def test_directory_as_kernel(tmp_path, no_leak):
    with pytest.raises(ImageError) as info:
        image.open_kernel(str(tmp_path))
    assert str(info.value) == "kernel %s is not a regular file" % tmp_path


# initrds

def test_single_initrd_is_the_file_itself(initrd_paths, no_leak):
    initrd = image.open_initrds(initrd_paths[:1])
    try:
        assert initrd.paths == (initrd_paths[0],)
        assert fd_target(initrd.fd) == initrd_paths[0]
        assert initrd.size == os.path.getsize(initrd_paths[0])
        assert initrd.parts == (initrd.size,)
    finally:
        initrd.close()


def test_several_initrds_concatenated_in_order(initrd_paths, no_leak):
    order = [initrd_paths[2], initrd_paths[0], initrd_paths[1]]
    initrd = image.open_initrds(order)
    try:
        expected = b"".join(open(p, "rb").read() for p in order)
        assert fd_target(initrd.fd).startswith("/memfd:kexec-initrd")
        assert fd_bytes(initrd.fd) == expected
        assert os.lseek(initrd.fd, 0, os.SEEK_CUR) == 0
        assert initrd.size == len(expected)
        assert initrd.parts == tuple(os.path.getsize(p) for p in order)
        assert initrd.paths == tuple(order)
    finally:
        initrd.close()


def test_large_initrds_concatenate_completely(tmp_path, no_leak):
    a = write_file(str(tmp_path / "a"), os.urandom(3 << 20))
    b = write_file(str(tmp_path / "b"), os.urandom(12345))
    initrd = image.open_initrds([a, b])
    try:
        assert fd_bytes(initrd.fd) == open(a, "rb").read() + open(b, "rb").read()
    finally:
        initrd.close()


def test_missing_initrd_among_several(initrd_paths, tmp_path, no_leak):
    missing = str(tmp_path / "initrd-missing.img")
    with pytest.raises(ImageError) as info:
        image.open_initrds([initrd_paths[0], missing, initrd_paths[1]])
    assert str(info.value) == "cannot open initrd %s: No such file or directory" % missing


def test_directory_as_initrd(tmp_path, no_leak):
    with pytest.raises(ImageError) as info:
        image.open_initrds([str(tmp_path)])
    assert "initrd %s is not a regular file" % tmp_path == str(info.value)


def test_no_initrd_paths_is_a_programming_error():
    with pytest.raises(ValueError):
        image.open_initrds([])


def test_xz_kernel_with_check_none(tmp_path, no_leak):
    """xz as the kernel's own build writes it (CRC32 / no check) still decompresses."""
    raw = make_bzimage()
    path = write_file(str(tmp_path / "k.xz"), lzma.compress(raw, check=lzma.CHECK_CRC32))
    kimg = image.open_kernel(path)
    try:
        assert fd_bytes(kimg.fd) == raw
    finally:
        kimg.close()
