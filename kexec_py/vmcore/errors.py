"""Exceptions of kexec_py.vmcore. All are KexecError subclasses (with an exit status);
the ones about a file name it and, where known, the byte offset."""
import errno as _errno

from ..errors import FormatError, KexecError

EXIT_FAILED = 1
EXIT_INCOMPLETE = 2


class VmcoreError(KexecError):
    """A copy or read that failed; exit_code follows vmcore-copy's (1)."""

    exit_code = EXIT_FAILED


class OptionError(VmcoreError, ValueError):
    """Options that cannot work together, a codec this build lacks, or a dump level the
    vmcore cannot support (its VMCOREINFO lacks what the level needs)."""


class DumpFormatError(FormatError, VmcoreError):
    """The input is not a usable vmcore / dump: names the file and offset."""

    exit_code = EXIT_FAILED


class DumpWriteError(VmcoreError):
    """Writing the dump failed (not for lack of space): names the file and offset."""

    def __init__(self, path, message, offset=None, errno=None, stats=None):
        where = str(path) + (" at offset %#x" % offset if offset is not None else "")
        super().__init__("%s: %s" % (where, message))
        self.path = path
        self.offset = offset
        self.errno = errno
        self.stats = stats


class IncompleteDumpError(VmcoreError):
    """The dump was closed early - out of space, size limit, cancelled or an input error
    part way - and is marked incomplete. Every page it lists is valid; .stats tells how
    many made it (a CopyStats)."""

    exit_code = EXIT_INCOMPLETE

    def __init__(self, path, message, stats, errno=None):
        super().__init__("%s: %s" % (path, message))
        self.path = path
        self.stats = stats
        self.errno = errno


class PageNotInDump(VmcoreError, LookupError):
    """The frame is not in the dump (a hole, or a page the dump level left out)."""

    def __init__(self, path, pfn, message="page frame %#x is not in the dump"):
        super().__init__("%s: %s" % (path, message % pfn))
        self.path = path
        self.pfn = pfn


class PageLostError(PageNotInDump):
    """The frame was to be in the dump but the dump ended before it (incomplete dump)."""

    def __init__(self, path, pfn):
        super().__init__(path, pfn, "page frame %#x was lost: the dump is incomplete")


class CorruptPageError(DumpFormatError):
    """A page's stored data does not decode to a page."""


def from_native(err, src, dst=None, stats=None, copying=False):
    """The one mapping from a C library failure (native.SyscallError with .message,
    .offset, .errno and, for a copy, .stats) to this module's exceptions:

    - the output failed (stats say err_in_output): DumpWriteError naming dst;
    - ENOTSUP while copying (a dump level the vmcore cannot support; the message names
      the key): OptionError;
    - anything else: DumpFormatError naming src. The C messages that already say
      "offset ..." are not given the offset a second time; .offset is set either way.
    """
    message = getattr(err, "message", None) or err.strerror
    offset = getattr(err, "offset", None)
    raw = getattr(err, "stats", None)
    if raw and raw.get("err_in_output"):
        return DumpWriteError(dst, message, offset=offset, errno=err.errno, stats=stats)
    if copying and err.errno == _errno.ENOTSUP:
        return OptionError("%s: %s" % (src, message))
    exc = DumpFormatError(src, message,
                          offset=None if offset is None or "offset" in message else offset)
    exc.offset = offset
    return exc
