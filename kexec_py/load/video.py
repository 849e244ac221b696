"""The framebuffer handed to the next kernel in boot_params.screen_info (kexec_load path).

kexec enters the new kernel at its 64-bit entry: the 16-bit setup code that acts on vga=
never runs, so the new kernel learns the display mode only from screen_info. Told "VGA
text" while the card is in a graphics mode, its console draws garbage (the knowledge
base's garbled video). The rules are kexec-tools':

- /dev/fb0's driver is "VESA VGA" (vesafb) or "EFI VGA" (efifb): screen_info describes
  that framebuffer (type 0x23 or 0x70; width, height, depth, base, stride, size, colour
  layout; a base above 4 GiB in ext_lfb_base with VIDEO_CAPABILITY_64BIT_BASE).
- another driver (a DRM driver took the display): no framebuffer type (0), since the
  new kernel cannot drive that hardware as a plain framebuffer; --reuse-video-type keeps
  the boot-time type and describes /dev/fb0 anyway.
- no usable /dev/fb0: the boot-time screen_info, unchanged.

kexec_file_load needs none of this: the kernel copies its live screen_info itself.
"""
import errno
import os
import struct
from dataclasses import dataclass

from .. import rootfs

FBIOGET_VSCREENINFO = 0x4600
FBIOGET_FSCREENINFO = 0x4602
VIDEO_TYPE_VLFB = 0x23
VIDEO_TYPE_EFI = 0x70
VIDEO_CAPABILITY_64BIT_BASE = 1 << 1
DRIVER_TYPES = {"VESA VGA": VIDEO_TYPE_VLFB, "EFI VGA": VIDEO_TYPE_EFI}

SCREEN_INFO_SIZE = 0x40
# struct fb_fix_screeninfo on a 64-bit kernel (80 bytes): id, smem_start, smem_len, type,
# type_aux, visual, x/ypanstep, ywrapstep, line_length, mmio_start, mmio_len, accel,
# capabilities, reserved[2]
FB_FIX = struct.Struct("<16sQIIIIHHH2xI4xQIIHHH2x")
# struct fb_var_screeninfo (160 bytes): the first 8 u32 then red/green/blue/transp as
# (offset, length, msb_right), then 20 u32 we do not need
FB_VAR = struct.Struct("<8I12I80x")
# screen_info offsets (arch/x86 uapi screen_info.h)
SI_ISVGA = 0x0F
SI_LFB = struct.Struct("<HHHII")          # 0x12: width, height, depth, base, size
SI_LINELENGTH = 0x24
SI_COLOURS = 0x26                         # red, green, blue, rsvd: (size, pos) bytes
SI_VESAPM_SEG = 0x2E
SI_PAGES = 0x32
SI_CAPABILITIES = 0x36
SI_EXT_LFB_BASE = 0x3A


@dataclass
class Framebuffer:
    driver: str
    smem_start: int
    smem_len: int
    line_length: int
    xres: int
    yres: int
    bits_per_pixel: int
    colours: tuple     # ((offset, length) for red, green, blue, transp)

    @classmethod
    def from_ioctls(cls, fix, var):
        if len(fix) < FB_FIX.size or len(var) < FB_VAR.size:
            raise ValueError("short fb_fix_screeninfo or fb_var_screeninfo")
        f = FB_FIX.unpack_from(fix)
        v = FB_VAR.unpack_from(var)
        colours = tuple((v[8 + 3 * i], v[9 + 3 * i]) for i in range(4))
        return cls(driver=f[0].split(b"\0", 1)[0].decode("latin-1"), smem_start=f[1],
                   smem_len=f[2], line_length=f[9], xres=v[0], yres=v[1],
                   bits_per_pixel=v[6], colours=colours)

    def describe(self):
        return "%dx%dx%d at %#x, stride %d" % (self.xres, self.yres, self.bits_per_pixel,
                                               self.smem_start, self.line_length)


def read_framebuffer(root="/", device="/dev/fb0", ioctl=None):
    """The framebuffer /dev/fb0 reports, or raises OSError when there is none usable."""
    if ioctl is None:
        import fcntl
        ioctl = fcntl.ioctl
    fd = os.open(rootfs.join(root, device), os.O_RDONLY | os.O_CLOEXEC)
    try:
        fix = ioctl(fd, FBIOGET_FSCREENINFO, bytes(FB_FIX.size))
        var = ioctl(fd, FBIOGET_VSCREENINFO, bytes(FB_VAR.size))
    finally:
        os.close(fd)
    try:
        return Framebuffer.from_ioctls(fix, var)
    except ValueError as e:
        raise OSError(errno.EINVAL, str(e))


def describe_framebuffer(si, fb, video_type):
    """screen_info si (bytearray, 64 bytes) set to describe fb with video_type."""
    si[SI_ISVGA] = video_type
    lfb_size = min((fb.smem_len + 65535) // 65536, 0xFFFFFFFF)   # in 64 KiB units
    SI_LFB.pack_into(si, 0x12, fb.xres & 0xFFFF, fb.yres & 0xFFFF,
                     fb.bits_per_pixel & 0xFFFF, fb.smem_start & 0xFFFFFFFF, lfb_size)
    struct.pack_into("<H", si, SI_LINELENGTH, fb.line_length & 0xFFFF)
    struct.pack_into("<H", si, SI_VESAPM_SEG, 0)
    struct.pack_into("<H", si, SI_PAGES, min((fb.smem_len + 4095) // 4096, 0xFFFF))
    caps = struct.unpack_from("<I", si, SI_CAPABILITIES)[0]
    if fb.smem_start > 0xFFFFFFFF:
        struct.pack_into("<I", si, SI_EXT_LFB_BASE, (fb.smem_start >> 32) & 0xFFFFFFFF)
        caps |= VIDEO_CAPABILITY_64BIT_BASE
    else:
        struct.pack_into("<I", si, SI_EXT_LFB_BASE, 0)
        caps &= ~VIDEO_CAPABILITY_64BIT_BASE
    struct.pack_into("<I", si, SI_CAPABILITIES, caps)
    if fb.bits_per_pixel > 8:
        for i, (offset, length) in enumerate(fb.colours):
            si[SI_COLOURS + 2 * i] = length & 0xFF
            si[SI_COLOURS + 2 * i + 1] = offset & 0xFF
    return si


def screen_info(old_screen_info, root="/", reuse_video_type=False, ioctl=None):
    """(screen_info for the new kernel or None to keep the boot-time one, the rule applied).

    old_screen_info is the running kernel's boot-time screen_info (64 bytes) or None."""
    try:
        fb = read_framebuffer(root, ioctl=ioctl)
    except OSError as e:
        return None, ("no usable /dev/fb0 (%s): the boot-time screen_info is handed over"
                      % (e.strerror or e))
    si = bytearray(old_screen_info[:SCREEN_INFO_SIZE] if old_screen_info
                   else bytes(SCREEN_INFO_SIZE))
    si += bytes(SCREEN_INFO_SIZE - len(si))
    video_type = DRIVER_TYPES.get(fb.driver)
    if video_type is not None:
        return bytes(describe_framebuffer(si, fb, video_type)), (
            "/dev/fb0 is %r: a framebuffer of type %#x handed over, %s"
            % (fb.driver, video_type, fb.describe()))
    if reuse_video_type:
        if not old_screen_info:
            return None, ("/dev/fb0 is %r and the boot-time video type is unreadable: the "
                          "boot-time screen_info is handed over" % fb.driver)
        return bytes(describe_framebuffer(si, fb, si[SI_ISVGA])), (
            "/dev/fb0 is %r: the boot-time video type %#x handed over with its %s "
            "(--reuse-video-type)" % (fb.driver, si[SI_ISVGA], fb.describe()))
    si[SI_ISVGA] = 0
    return bytes(si), ("/dev/fb0 is %r, not VESA VGA or EFI VGA: no framebuffer type is "
                       "handed over (--reuse-video-type hands over the boot-time one)"
                       % fb.driver)
