"""mem_usage(): makedumpfile's --mem-usage as a library call (csrc/vmcore/usage.c).

    from kexec_py import vmcore
    u = vmcore.mem_usage("/proc/kcore", compressions=("lzo",))   # as root
    print(u.free, u.kern_data, u.predict(31, compression="lzo"))
"""
import os
from typing import Optional, Sequence, Union

from .. import native
from .copy import COMPRESSIONS, FORMATS, _info_bytes, _open_src
from .errors import OptionError, from_native


class MemUsage:
    """Page counts by class as dump level 31 sees them (makedumpfile's table) and the
    sampled compression that predicts a dump's size at any level."""

    def __init__(self, handle):
        self._h = handle
        p = handle.pages
        self.page_size = handle.page_size
        self.total_pages = handle.pages_total   #: frames below the last struct page
        self.zero = handle.zero                 #: all-zero frames level 31 would keep
        self.non_pri_cache = p["cache"]
        self.pri_cache = p["cache_private"]
        self.user = p["user"]
        self.free = p["free"]
        self.hwpoison = p["hwpoison"]
        self.offline = p["offline"]
        self.kern_data = p["kernel"] - handle.zero
        self.no_memmap = p["no_memmap"]         #: frames above the last struct page
        self.crash_reserved = handle.crash_reserved   #: the capture kernel's, left out
        self.sample_stride = handle.stride
        self.seconds = handle.seconds

    def predict(self, dump_level: int = 31, format: str = "kdump",
                compression: str = "none") -> Optional[int]:
        """Predicted dump size in bytes; None when compression was not sampled."""
        if format not in FORMATS or compression not in COMPRESSIONS:
            raise OptionError("format must be one of %s and compression one of %s"
                              % (", ".join(FORMATS), ", ".join(COMPRESSIONS)))
        if not isinstance(dump_level, int) or not 0 <= dump_level <= 31:
            raise OptionError("dump_level must be 0..31, not %r" % (dump_level,))
        return self._h.predict(dump_level, format, "none" if format == "elf" else compression)

    def to_dict(self):
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def mem_usage(src: Union[str, "os.PathLike[str]", int] = "/proc/kcore", *,
              compressions: Sequence[str] = (), sample_target: int = 0,
              vmcoreinfo: Optional[Union[str, bytes]] = None,
              iomem: Optional[str] = None) -> MemUsage:
    """Count src's pages by class (src: /proc/kcore of the running system, as root, or
    any vmcore the copier reads) and compress a sample with each of compressions (all
    available when empty). The "Crash kernel" ranges of iomem (default: /proc/iomem when
    src is on procfs) are left out, as /proc/vmcore will not hold them. Raises
    DumpFormatError naming src (no VMCOREINFO, unreadable)."""
    for c in compressions:
        if c not in COMPRESSIONS or (c != "none" and not native.codec_available(c)):
            raise OptionError("compression %r is not available" % (c,))
    fd, mine, name = _open_src(src)
    try:
        return MemUsage(native.vmcore_mem_usage(fd, codecs=[c for c in compressions],
                                                sample_target=sample_target,
                                                vmcoreinfo=_info_bytes(vmcoreinfo),
                                                iomem=iomem))
    except native.SyscallError as e:
        raise from_native(e, name) from None
    finally:
        if mine:
            os.close(fd)
