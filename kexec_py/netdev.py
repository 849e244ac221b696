"""Bringing network interfaces down before a kexec (kexec-tools does it unless -x).

A NIC left running keeps DMA going into memory the next kernel is about to reuse.
"""
import fcntl
import os
import socket
import struct

from . import rootfs

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = struct.Struct("16sH22x")  # ifr_name, ifr_flags, rest of the union


def interfaces(root="/"):
    """Network interfaces other than loopback, by name."""
    try:
        names = sorted(os.listdir(rootfs.join(root, "/sys/class/net")))
    except OSError:
        return []
    return [n for n in names if n != "lo"]


def ifdown_all(root="/"):
    """Clear IFF_UP on every interface but lo; errors on one do not stop the others."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in interfaces(root):
            try:
                req = _IFREQ.pack(name.encode()[:15], 0)
                flags = _IFREQ.unpack(fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
                if flags & IFF_UP:
                    fcntl.ioctl(s, SIOCSIFFLAGS, _IFREQ.pack(name.encode()[:15],
                                                             flags & ~IFF_UP))
            except OSError:
                continue
