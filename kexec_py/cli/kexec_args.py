"""kexec's argparse parser: --help, --version, errors, and every command line the fast
path in kexec.py leaves to it (abbreviations, combined short options, -- and the like).

Kept out of kexec.py because argparse (with re, enum and gettext) is most of a `kexec -l`
start-up (issue 12); kexec.py imports this module only when it needs it.
"""
import argparse
import os
import sys

from .. import __version__
from ..errors import EXIT_USAGE
from .kexec import PROG

DESCRIPTION = """\
Load a Linux kernel and boot straight into it without going through the firmware, or load
a capture kernel that boots when the running kernel panics (kdump).

  kexec -l KERNEL --initrd=FILE --append="root=... ro"   load a kernel, then: kexec -e
  kexec -l --default                                      load the boot loader's default entry
  kexec -p KERNEL --initrd=FILE --append="..."            load a capture kernel
  kexec KERNEL ...                                        load, then shutdown -r now

Loading, unloading and executing need root (CAP_SYS_BOOT); --dry-run, -S,
--list-entries and --print-ckr-size do not."""

EPILOG = """\
command line: with KERNEL the command line is --reuse-cmdline's text (if given) followed by
--append; with --default/--entry it is the entry's own options (or the running command line
with --reuse-cmdline) followed by --append.

exit status: 0 success; 1 usage error, "Nothing has been loaded!" for -e, or a boot entry
that does not exist; -S: 1 when the image is loaded, 0 when not; 253 kexec_file_load is not
available and -s forbids falling back; 254 no crash kernel reserve (crashkernel=) for -p;
255 the load failed (missing or invalid kernel or initrd, command line too long, the
kernel refused it, not root)."""


class _Parser(argparse.ArgumentParser):
    """argparse that exits with kexec-tools' usage status (1) instead of 2."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, "%s: %s\n" % (self.prog, message))


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter with the terminal width found without importing shutil
    (which pulls in the compression modules): argparse makes one per add_argument."""

    def __init__(self, prog, **kw):
        if kw.get("width") is None:
            try:
                width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
            except (ValueError, OSError):
                width = 80
            kw["width"] = max(width - 2, 11)
        super().__init__(prog, **kw)


def build_parser():
    p = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                formatter_class=_Formatter)
    p.add_argument("kernel", nargs="?", metavar="KERNEL",
                   help="kernel image: bzImage, or one compressed whole with gzip, zstd or xz")
    act = p.add_argument_group("actions")
    act.add_argument("-l", "--load", action="store_true",
                     help="load KERNEL (or a boot entry) for a later kexec -e")
    act.add_argument("-p", "--load-panic", action="store_true",
                     help="load KERNEL as the capture kernel booted on a panic (needs "
                          "crashkernel= memory)")
    act.add_argument("-u", "--unload", action="store_true",
                     help="unload the loaded kernel (with -p: the capture kernel)")
    act.add_argument("-e", "--exec", action="store_true",
                     help="boot the loaded kernel now (no clean shutdown)")
    act.add_argument("-f", "--force", action="store_true",
                     help="load KERNEL and boot it at once, without shutdown -r")
    act.add_argument("-S", "--status", action="store_true",
                     help="exit 1 if the capture kernel (with -l: the kexec kernel) is "
                          "loaded, 0 if not")
    act.add_argument("--print-ckr-size", action="store_true",
                     help="print the size of the crash kernel reserve in bytes")
    act.add_argument("--list-entries", action="store_true",
                     help="list the boot loader's entries (BLS, GRUB 2, GRUB legacy) and exit")
    sysc = p.add_argument_group("syscall choice (last one wins)")
    sysc.add_argument("-s", "--kexec-file-syscall", dest="mode", action="store_const",
                      const="file", help="use kexec_file_load only")
    sysc.add_argument("-c", "--kexec-syscall", dest="mode", action="store_const",
                      const="load", help="use kexec_load only, with kexec-py's own x86_64 "
                                         "bzImage loader and purgatory")
    sysc.add_argument("-a", "--kexec-syscall-auto", dest="mode", action="store_const",
                      const="auto", help="kexec_file_load, falling back to kexec_load on "
                                         "ENOSYS, EINVAL, ENOEXEC or EOPNOTSUPP (default)")
    img = p.add_argument_group("image")
    img.add_argument("--initrd", "--ramdisk", dest="initrd", action="append", metavar="FILE",
                     help="initial ramdisk; repeat it to concatenate several")
    img.add_argument("--append", "--command-line", dest="append", metavar="STRING",
                     help="kernel command line (the last one given wins)")
    img.add_argument("--reuse-cmdline", action="store_true",
                     help="start from the running command line, without BOOT_IMAGE= (and "
                          "with -p without crashkernel=)")
    img.add_argument("--default", action="store_true",
                     help="load the boot loader's default entry: its kernel, initrds and "
                          "options")
    img.add_argument("--entry", metavar="ID|INDEX|VERSION",
                     help="load this boot entry (see --list-entries)")
    img.add_argument("--root", default="/", metavar="DIR",
                     help="read /boot, /etc, /proc and /sys under DIR (default /)")
    other = p.add_argument_group("other")
    other.add_argument("--dry-run", action="store_true",
                       help="print the syscall, its flags, the files and the final command "
                            "line; load or execute nothing (works without root)")
    other.add_argument("--json", action="store_true", help="with --list-entries: print JSON")
    other.add_argument("-d", "--debug", action="store_true",
                       help="print what is done; pass KEXEC_FILE_DEBUG to the kernel")
    other.add_argument("-x", "--no-ifdown", action="store_true",
                       help="do not bring network interfaces down before booting")
    other.add_argument("-y", "--no-sync", action="store_true",
                       help="do not sync file systems before booting")
    other.add_argument("-i", "--no-checks", action="store_true",
                       help="skip purgatory's SHA-256 check of the loaded segments "
                            "(kexec_load only)")
    other.add_argument("--console-serial", action="store_true",
                       help="purgatory reports its checks on the serial port COM1 (0x3f8) "
                            "(kexec_load only)")
    other.add_argument("--reuse-video-type", action="store_true",
                       help="when /dev/fb0's driver is neither VESA VGA nor EFI VGA, hand "
                            "the boot-time video type over with /dev/fb0's mode instead of "
                            "none (kexec_load only; --dry-run shows the rule applied)")
    other.add_argument("-v", "--version", action="version",
                       version="kexec-py %s (kexec-tools compatible)" % __version__)
    p.set_defaults(mode="auto")
    return p
