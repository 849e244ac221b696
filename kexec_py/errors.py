"""Exception hierarchy.

native.py raises SyscallError (an OSError carrying errno and the syscall's name); the
layers above turn those into KexecError subclasses whose message tells the user what to
do. Parsers raise FormatError naming the file and line or offset. A KexecError carries
the exit status the kexec-tools peer uses for the same failure.
"""
import errno as _errno
import os

# kexec-tools' exit statuses
EXIT_OK = 0
EXIT_USAGE = 1          # usage errors and fatal conditions
EXIT_LOAD_FAILED = 255  # the load syscall failed
EXIT_NO_CRASH_RESERVE = 254
EXIT_FILE_LOAD_UNAVAILABLE = 253


class SyscallError(OSError):
    """A system call failed: errno plus the call's name."""

    def __init__(self, syscall, err):
        super().__init__(err, os.strerror(err))
        self.syscall = syscall

    def __str__(self):
        return "%s failed: %s" % (self.syscall, self.strerror)


class KexecError(Exception):
    """A failure with a message for the user and the peer's exit status."""

    exit_code = EXIT_LOAD_FAILED

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(KexecError):
    exit_code = EXIT_USAGE


class FormatError(KexecError):
    """A file that does not parse: the message names the file and the line or offset."""

    exit_code = EXIT_USAGE

    def __init__(self, path, message, line=None, offset=None):
        where = str(path)
        if line is not None:
            where += ":%d" % line
        elif offset is not None:
            where += " at offset %#x" % offset
        super().__init__("%s: %s" % (where, message))
        self.path = path
        self.line = line
        self.offset = offset


class ImageError(KexecError):
    """A kernel or initrd that cannot be used: missing, unreadable, not a kernel."""

    exit_code = EXIT_LOAD_FAILED


class EntryNotFound(KexecError):
    exit_code = EXIT_USAGE


class NoCrashReserve(KexecError):
    """A panic load on a kernel booted without crashkernel= (kexec-tools exits 254)."""

    exit_code = EXIT_NO_CRASH_RESERVE

    def __init__(self):
        super().__init__("Memory for crashkernel is not reserved: add crashkernel= to the "
                         "kernel command line (e.g. crashkernel=256M) and reboot")


class ReserveUnreadable(KexecError):
    """The crash reserve exists but its addresses are hidden: /proc/iomem reads as zeros
    to users without CAP_SYS_ADMIN, and crash_notes is mode 0400."""

    exit_code = EXIT_USAGE

    def __init__(self, what):
        super().__init__("%s: unreadable without root; run as root (a panic load reads the "
                         "reserve's addresses even with --dry-run)" % what)


class LoadError(KexecError):
    """The kernel refused a load; carries the errno when there was one."""

    def __init__(self, message, errno=None, exit_code=None):
        super().__init__(message, exit_code)
        self.errno = errno


# kexec_file_load errors that mean "the kernel rejected this image's signature"
SIGNATURE_ERRNOS = frozenset(
    getattr(_errno, name) for name in
    ("EKEYREJECTED", "ENOKEY", "EBADMSG", "ELIBBAD", "ENOPKG", "EMSGSIZE"))

# kexec_file_load errors after which kexec_load may be tried (kexec-tools' -a rule)
FALLBACK_ERRNOS = frozenset((_errno.ENOSYS, _errno.EINVAL, _errno.ENOEXEC, _errno.EOPNOTSUPP))


def os_error_message(e):
    """One line for an OSError that reached a command's top level: the file and why
    (an unreadable grub.cfg, a kdump.conf that vanished), never a traceback."""
    if getattr(e, "filename", None):
        what = "cannot read %s" % e.filename
        if getattr(e, "filename2", None):
            what += " (%s)" % e.filename2
        return "%s: %s" % (what, e.strerror or e)
    return str(e)
