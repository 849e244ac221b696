"""Unified kernel images (issue 12, item 1): built here with objcopy on systemd's EFI stub
(Debian's systemd-boot-efi) the way the UAPI group's specification describes, then
loaded with kexec -l through recorded syscalls: the kernel gets the .linux section byte
for byte, the initrd .initrd, the command line .cmdline, unless --initrd or --append
replace them; --dry-run says where each came from. Broken images fail with a message
that names the section; BLS type #2 entries (/boot/EFI/Linux/*.efi) are listed."""
import os
import struct

import pytest

from kexec_py import native
from kexec_py.load import state, uki

from tests.uki_build import CMDLINE, STUB, build_uki as _build

from .conftest import make_bzimage, write_file


def build_uki(tmp_path, name="uki.efi", kernel=None, **kw):
    return _build(tmp_path, make_bzimage() if kernel is None else kernel, name=name, **kw)

class Calls:
    def __init__(self):
        self.file_calls = []

    def kexec_file_load(self, kernel_fd, initrd_fd, cmdline, flags):
        size = os.fstat(kernel_fd).st_size
        self.file_calls.append({
            "kernel": os.pread(kernel_fd, size, 0),
            "initrd": os.pread(initrd_fd, 1 << 24, 0) if initrd_fd >= 0 else None,
            "cmdline": cmdline, "flags": flags})


@pytest.fixture
def calls(monkeypatch):
    rec = Calls()
    monkeypatch.setattr(native, "kexec_file_load", rec.kexec_file_load)
    monkeypatch.setattr(state, "has_cap_sys_boot", lambda: True)
    return rec


@pytest.mark.parametrize("mode", [["-s"], []], ids=["-s", "-a default"])
def test_sections_come_out_byte_for_byte(kexec, root, calls, tmp_path, mode):
    kernel = make_bzimage() + b"SIGNATURE-TRAILER" * 7      # a signed image's tail
    path = build_uki(tmp_path, kernel=kernel)
    r = kexec(*mode, "-l", path, "--root", root)
    assert r.code == 0, r.err
    call = calls.file_calls[0]
    assert call["kernel"] == kernel                 # passed as is: the signature survives
    assert call["initrd"] == b"INITRD" * 1000
    assert call["cmdline"] == CMDLINE.encode()
    assert not call["flags"] & native.KEXEC_FILE_NO_INITRAMFS


def test_explicit_initrd_and_append_replace_the_embedded_ones(kexec, root, calls, tmp_path):
    path = build_uki(tmp_path)
    other = write_file(str(tmp_path / "other.img"), b"OTHER-INITRD")
    r = kexec("-s", "-l", path, "--initrd", other, "--append", "quiet", "--root", root)
    assert r.code == 0, r.err
    assert calls.file_calls[0]["initrd"] == b"OTHER-INITRD"
    assert calls.file_calls[0]["cmdline"] == b"quiet"


def test_dry_run_says_where_each_part_came_from(kexec, root, tmp_path):
    path = build_uki(tmp_path)
    r = kexec("-s", "-l", path, "--dry-run", "--root", root)
    assert r.code == 0, r.err
    assert "the .linux section of a unified kernel image" in r.out
    assert "uki: %s: kernel from .linux, initrd from .initrd, command line from .cmdline" \
        % path in r.out
    assert "initrd: %s:.initrd" % path in r.out
    r = kexec("-s", "-l", path, "--dry-run", "--append", "x=1", "--root", root)
    assert "command line from the options given (they replace the image's .cmdline)" in r.out


def test_kexec_load_path_takes_the_same_parts(kexec, root, tmp_path):
    path = build_uki(tmp_path)
    r = kexec("-c", "-l", path, "--dry-run", "--root", root)
    assert r.code == 0, r.err
    assert "cmdline: %s" % CMDLINE in r.out


def _patched(path, offset, fmt, value):
    b = bytearray(open(path, "rb").read())
    struct.pack_into(fmt, b, offset, value)
    with open(path, "wb") as f:
        f.write(b)


def _section_offset(path, name):
    with open(path, "rb") as f:
        return uki.parse(f.fileno(), path, os.path.getsize(path)).sections[name].offset


def test_bad_images_fail_naming_the_section(kexec, root, tmp_path):
    r = kexec("-s", "-l", STUB, "--dry-run", "--root", root)       # a PE, but no .linux
    assert r.code != 0 and "not a unified kernel image: it has no .linux section" in r.err
    path = build_uki(tmp_path)
    cut = str(tmp_path / "cut.efi")
    with open(path, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(_section_offset(path, ".initrd") + 100))
    r = kexec("-s", "-l", cut, "--dry-run", "--root", root)
    assert r.code != 0 and "UKI section .initrd is truncated" in r.err, r.err
    arm = str(tmp_path / "arm.efi")
    with open(path, "rb") as f, open(arm, "wb") as g:
        g.write(f.read())
    lfanew = struct.unpack_from("<I", open(arm, "rb").read(64), 0x3C)[0]
    _patched(arm, lfanew + 4, "<H", 0xAA64)
    r = kexec("-s", "-l", arm, "--dry-run", "--root", root)
    assert r.code != 0 and "a unified kernel image for arm64" in r.err, r.err
    junk = build_uki(tmp_path, name="junk.efi", kernel=b"\x7fELF" + bytes(4000))
    r = kexec("-s", "-l", junk, "--dry-run", "--root", root)
    assert r.code != 0 and "its .linux section holds an ELF file" in r.err, r.err
    for bad in (r.err,):
        assert "Traceback" not in bad


def test_type2_entries_are_listed_and_loadable(kexec, root, calls, tmp_path):
    os.makedirs(os.path.join(str(root), "boot/EFI/Linux"))
    build_uki(tmp_path, name="debian-6.1.0-uki.efi")
    os.rename(str(tmp_path / "debian-6.1.0-uki.efi"),
              os.path.join(str(root), "boot/EFI/Linux/debian-6.1.0-uki.efi"))
    r = kexec("--list-entries", "--root", root)
    assert r.code == 0, r.err
    assert "Debian GNU/Linux 12 (bookworm)" in r.out and "debian-6.1.0-uki.efi" in r.out
    assert "6.1.0-uki" in r.out
    r = kexec("-s", "-l", "--default", "--root", root)
    assert r.code == 0, r.err
    assert calls.file_calls[0]["cmdline"] == CMDLINE.encode()
    assert calls.file_calls[0]["initrd"] == b"INITRD" * 1000
