"""Exceptions of kexec_py.vmcore. All are KexecError subclasses (with an exit status);
the ones about a file name it and, where known, the byte offset."""
from ..errors import FormatError, KexecError

EXIT_FAILED = 1
EXIT_INCOMPLETE = 2


class VmcoreError(KexecError):
    """A copy or read that failed; exit_code follows vmcore-copy's (1)."""

    exit_code = EXIT_FAILED


class OptionError(VmcoreError, ValueError):
    """Options that cannot work together or are not implemented (dump levels 2-31)."""


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
