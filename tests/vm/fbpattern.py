"""The test pattern the video VM test paints into /dev/fb0 (RGB565, 16 bits per pixel)
and finds again in QEMU's screendump: every pixel differs from its neighbours and from
the same pixel of the other patterns, so a shifted stride or a wrong depth shows.

    python3 -m tests.vm.fbpattern paint N     (in the guest: /dev/fb0, the console off)
"""
import array
import sys


def pixel(n, x, y):
    """(r5, g6, b5) of pattern n at (x, y)."""
    return (x >> 5) & 31, ((y >> 4) + n * 7) & 63, (x ^ y ^ (n * 11)) & 31


def row565(n, y, width):
    out = array.array("H", bytes(2 * width))
    for x in range(width):
        r, g, b = pixel(n, x, y)
        out[x] = r << 11 | g << 5 | b
    return out.tobytes()


def paint(n):
    import fcntl
    import os
    fb = "/sys/class/graphics/fb0/"
    with open(fb + "virtual_size") as f:
        width, height = (int(v) for v in f.read().split(","))
    with open(fb + "stride") as f:
        stride = int(f.read())
    with open(fb + "bits_per_pixel") as f:
        if int(f.read()) != 16:
            raise SystemExit("fb0 is not 16 bits per pixel")
    tty = os.open("/dev/tty0", os.O_RDWR)
    fcntl.ioctl(tty, 0x4B3A, 1)          # KDSETMODE KD_GRAPHICS: the console stops drawing
    fd = os.open("/dev/fb0", os.O_WRONLY)
    for y in range(height):
        os.pwrite(fd, row565(n, y, width).ljust(stride, b"\0"), y * stride)
    os.close(fd)


def read_ppm(path):
    """(width, height, rgb bytes) of a binary PPM (QMP screendump)."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError("%s: not an 8-bit binary PPM" % path)
    width, height = int(fields[1]), int(fields[2])
    return width, height, data[pos + 1:pos + 1 + 3 * width * height]


def mismatches(path, n, limit=5):
    """(pixels that differ from pattern n at RGB565 precision, the first few)."""
    width, height, rgb = read_ppm(path)
    bad, first = 0, []
    for y in range(height):
        line = rgb[3 * width * y:3 * width * (y + 1)]
        for x in range(width):
            want = pixel(n, x, y)
            got = (line[3 * x] >> 3, line[3 * x + 1] >> 2, line[3 * x + 2] >> 3)
            if got != want:
                bad += 1
                if len(first) < limit:
                    first.append((x, y, got, want))
    return bad, first, (width, height)


if __name__ == "__main__":
    if sys.argv[1:2] == ["paint"]:
        paint(int(sys.argv[2]))
    else:
        raise SystemExit("usage: python3 -m tests.vm.fbpattern paint N")
