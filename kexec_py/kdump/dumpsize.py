"""The size of the dump the configured core_collector would write now, predicted from the
running system's /proc/kcore (vmcore-copy --mem-usage's counts and sampled compression):
shown by `kdumpctl estimate`, and used by `kdumpctl start`'s free-space check where the
target has less room than the machine has RAM."""
import os
from dataclasses import dataclass

from .. import rootfs
from ..errors import KexecError

KCORE = "/proc/kcore"


@dataclass(frozen=True)
class Prediction:
    bytes: int = None      # None: unknown, see why
    what: str = ""         # "dump level 31, lzo, kdump-compressed"
    why: str = ""
    seconds: float = 0.0

    def line(self):
        if self.bytes is None:
            return "Predicted dump size: unknown (%s)" % self.why
        return "Predicted dump size: %dM (%s; vmcore-copy --mem-usage %s in %.1f s)" % (
            -(-self.bytes // (1 << 20)), self.what, KCORE, self.seconds)


def options(col):
    """(dump level, format, compression) of the dump the collector writes."""
    if not col.is_makedumpfile_like:       # cp, cat, scp: the whole ELF /proc/vmcore
        return 0, "elf", "none"
    fmt = "elf" if col.elf else "kdump"
    return col.dump_level or 0, fmt, "none" if fmt == "elf" else col.codec


def predict(root, col, source=None):
    """A Prediction for the collector on the machine under root."""
    from .. import vmcore
    level, fmt, codec = options(col)
    what = "dump level %d, %s" % (level, "ELF" if fmt == "elf" else
                                  "kdump-compressed" + ("" if codec == "none" else
                                                        ", " + codec))
    path = source or rootfs.join(root, KCORE)
    if not os.path.exists(path):
        return Prediction(what=what, why="%s does not exist" % KCORE)
    iomem = rootfs.join(root, "/proc/iomem")
    try:
        u = vmcore.mem_usage(path, compressions=(codec,),
                             iomem=iomem if os.path.exists(iomem) else None)
    except (KexecError, OSError) as e:
        why = str(e)
        if isinstance(e, PermissionError):
            why = "%s can be read by root only" % KCORE
        return Prediction(what=what, why=why)
    return Prediction(bytes=u.predict(level, format=fmt, compression=codec), what=what,
                      seconds=u.seconds)
