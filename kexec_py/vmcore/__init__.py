"""Saving and reading crash dumps: the Python API over the C copier (csrc/vmcore/).

Copy /proc/vmcore (or any ELF vmcore) into a dump::

    from kexec_py import vmcore
    stats = vmcore.copy("/proc/vmcore", "/var/crash/vmcore", compression="lzo",
                        dump_level=1, threads=2,
                        progress=lambda done, total, out: print(done * 100 // total))
    print(stats.pages_written, stats.file_size)

Read physical memory back from an ELF, kdump-compressed or flattened dump::

    with vmcore.open("/var/crash/vmcore") as d:
        d.release, d.format, d.vmcoreinfo["PAGESIZE"]
        page = d.read_page(0x1000)
        data = d.read(0x1000000, 64)
        d.verify()

The kernel log, as vmcore-dmesg prints it::

    print(vmcore.dmesg("/var/crash/vmcore"), end="")

What each dump level would keep of the running system, and the predicted size
(makedumpfile --mem-usage; root)::

    u = vmcore.mem_usage("/proc/kcore", compressions=("lzo",))
    u.free, u.user, u.predict(31, compression="lzo")

Rebuild a flattened stream (vmcore-copy -F ... | ssh host vmcore-copy -R FILE)::

    vmcore.rearrange(sys.stdin.buffer, "vmcore")

Errors are kexec_py.vmcore.errors classes; each names the file and, where it can, the
byte offset. The `vmcore-copy` executable does the same from the shell (and in the
capture initramfs, without Python).
"""
from .copy import COMPRESSIONS, FORMATS, CopyStats, copy, rearrange
from .dump import Dump, VerifyStats, dmesg, open
from .errors import (CorruptPageError, DumpFormatError, DumpWriteError,
                     IncompleteDumpError, OptionError, PageLostError, PageNotInDump,
                     VmcoreError)
from .tool import executable
from .usage import MemUsage, mem_usage

__all__ = ["copy", "rearrange", "open", "dmesg", "mem_usage", "MemUsage", "Dump", "CopyStats", "VerifyStats", "FORMATS",
           "COMPRESSIONS", "executable", "VmcoreError", "OptionError", "DumpFormatError",
           "DumpWriteError", "IncompleteDumpError", "PageNotInDump", "PageLostError",
           "CorruptPageError"]
