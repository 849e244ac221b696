"""The framebuffer handed to the next kernel on the kexec_load path (kexec-tools' rules):
/dev/fb0's ioctls are answered by a fake, the screen_info bytes checked field by field."""
import errno
import os
import struct

import pytest

from kexec_py.load import kexec_load, video

from .test_kexec_load_plan import machine, open_images

OLD = bytearray(64)
OLD[0:4] = b"SCRN"          # boot-time text-mode fields, kept where the rules keep them
OLD[video.SI_ISVGA] = 0x23   # the boot-time type (vesafb at boot)


def fake_ioctl(driver, xres=1024, yres=768, bpp=16, base=0xFD000000, smem_len=16 << 20,
               stride=2048, colours=((11, 5), (5, 6), (0, 5), (0, 0))):
    fix = video.FB_FIX.pack(driver.encode(), base, smem_len, 0, 0, 2, 1, 1, 0, stride,
                            0, 0, 0, 0, 0, 0)
    flat = []
    for offset, length in colours:
        flat += [offset, length, 0]
    var = video.FB_VAR.pack(xres, yres, xres, yres, 0, 0, bpp, 0, *flat)
    calls = []

    def ioctl(fd, request, arg):
        calls.append(request)
        assert len(arg) == {video.FBIOGET_FSCREENINFO: 80,
                            video.FBIOGET_VSCREENINFO: 160}[request]
        return fix if request == video.FBIOGET_FSCREENINFO else var
    ioctl.calls = calls
    return ioctl


@pytest.fixture
def fbroot(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "fb0").write_bytes(b"")
    return str(tmp_path)


def fields(si):
    width, height, depth, base, size = video.SI_LFB.unpack_from(si, 0x12)
    return {"type": si[video.SI_ISVGA], "width": width, "height": height, "depth": depth,
            "base": base, "size64k": size,
            "stride": struct.unpack_from("<H", si, video.SI_LINELENGTH)[0],
            "colours": tuple(si[video.SI_COLOURS:video.SI_COLOURS + 8]),
            "pages": struct.unpack_from("<H", si, video.SI_PAGES)[0],
            "caps": struct.unpack_from("<I", si, video.SI_CAPABILITIES)[0],
            "ext_base": struct.unpack_from("<I", si, video.SI_EXT_LFB_BASE)[0]}


def test_vesa_framebuffer_is_described(fbroot):
    si, rule = video.screen_info(bytes(OLD), fbroot, ioctl=fake_ioctl("VESA VGA"))
    assert len(si) == 64 and si[0:4] == b"SCRN"
    assert fields(si) == {"type": 0x23, "width": 1024, "height": 768, "depth": 16,
                          "base": 0xFD000000, "size64k": 256, "stride": 2048,
                          "colours": (5, 11, 6, 5, 5, 0, 0, 0), "pages": 4096, "caps": 0,
                          "ext_base": 0}
    assert "'VESA VGA'" in rule and "type 0x23" in rule and "1024x768x16" in rule


def test_efi_framebuffer_above_4g_uses_ext_lfb_base(fbroot):
    si, rule = video.screen_info(None, fbroot, ioctl=fake_ioctl(
        "EFI VGA", xres=1920, yres=1080, bpp=32, base=0x4000000000 + 0x1000, smem_len=8294400,
        stride=7680, colours=((16, 8), (8, 8), (0, 8), (24, 8))))
    f = fields(si)
    assert f["type"] == 0x70 and f["base"] == 0x1000 and f["ext_base"] == 0x40
    assert f["caps"] & video.VIDEO_CAPABILITY_64BIT_BASE
    assert f["size64k"] == 127 and f["pages"] == 2025 and f["stride"] == 7680
    assert f["colours"] == (8, 16, 8, 8, 8, 0, 8, 24)


def test_another_driver_hands_over_no_framebuffer_type(fbroot):
    si, rule = video.screen_info(bytes(OLD), fbroot, ioctl=fake_ioctl("bochs-drmdrmfb"))
    assert si[video.SI_ISVGA] == 0 and si[0:4] == b"SCRN"
    assert si[0x12:] == bytes(OLD[0x12:])          # nothing else described
    assert "not VESA VGA or EFI VGA" in rule and "--reuse-video-type" in rule


def test_reuse_video_type_keeps_the_boot_time_type(fbroot):
    si, rule = video.screen_info(bytes(OLD), fbroot, reuse_video_type=True,
                                 ioctl=fake_ioctl("virtio_gpudrmfb", bpp=32, stride=4096))
    f = fields(si)
    assert f["type"] == 0x23 and f["width"] == 1024 and f["stride"] == 4096
    assert "boot-time video type 0x23" in rule
    si, rule = video.screen_info(None, fbroot, reuse_video_type=True,
                                 ioctl=fake_ioctl("virtio_gpudrmfb"))
    assert si is None and "unreadable" in rule


def test_no_usable_fb0_keeps_the_boot_time_screen_info(tmp_path, fbroot):
    si, rule = video.screen_info(bytes(OLD), str(tmp_path / "nowhere"))
    assert si is None and "no usable /dev/fb0" in rule
    # a regular file answers the real ioctl with ENOTTY
    si, rule = video.screen_info(bytes(OLD), fbroot)
    assert si is None and os.strerror(errno.ENOTTY) in rule

    def short(fd, request, arg):
        return b"\0" * 10
    si, rule = video.screen_info(bytes(OLD), fbroot, ioctl=short)
    assert si is None and "short fb_fix_screeninfo" in rule


def test_plan_puts_the_rule_in_boot_params_and_dry_run_details(tmp_path, monkeypatch):
    root = machine(tmp_path)
    root.write("/dev/fb0", b"")
    fb = fake_ioctl("VESA VGA")
    real = video.read_framebuffer
    monkeypatch.setattr(video, "read_framebuffer",
                        lambda r, device="/dev/fb0", ioctl=None: real(r, device, ioctl=fb))
    kimg, initrd = open_images(root, tmp_path)
    p = kexec_load.plan(kimg, initrd, "root=/dev/sda ro", root=str(root))
    seg = {s.name: s for s in p.segments}
    bp = seg["setup"].data
    assert bp[0:4] == b"SCRN" and bp[video.SI_ISVGA] == 0x23
    assert video.SI_LFB.unpack_from(bp, 0x12)[:3] == (1024, 768, 16)
    assert any(d.startswith("video: /dev/fb0 is 'VESA VGA'") for d in p.details)
    assert "VESA VGA" in p.boot_params_fields["screen_info"]
    assert fb.calls == [video.FBIOGET_FSCREENINFO, video.FBIOGET_VSCREENINFO]
    kimg.close()
    initrd.close()
