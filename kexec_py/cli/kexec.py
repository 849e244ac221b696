"""`kexec`: load a kernel and boot it, option- and exit-code-compatible with kexec-tools.

Beyond kexec-tools it picks kernels from the boot loader's entries (--default, --entry,
--list-entries) and shows what it would do without doing it (--dry-run).
"""
import argparse
import os
import sys

from .. import __version__, rootfs
from ..cmdline import CommandLine, for_reuse
from ..errors import EXIT_OK, EXIT_USAGE, KexecError, UsageError, os_error_message
from ..load import state
from ..load.loader import LoadSpec, Loader

# Start-up matters for `kexec -l` (issue 12): what only some paths need - the boot entry
# parsers, json, the kexec_load builders and purgatory - is imported where it is used.

PROG = "kexec"

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


def _check_args(a):
    actions = [n for n in ("load", "load_panic", "unload", "exec", "force", "status",
                           "print_ckr_size", "list_entries") if getattr(a, n)]
    if len(actions) > 1 and not _allowed_pair(a):
        raise UsageError("options %s cannot be combined"
                         % ", ".join("--" + n.replace("_", "-") for n in actions))
    if a.kernel and (a.default or a.entry is not None):
        raise UsageError("give either KERNEL or --default/--entry, not both")
    if a.default and a.entry is not None:
        raise UsageError("give either --default or --entry, not both")
    if a.json and not a.list_entries:
        raise UsageError("--json goes with --list-entries")
    takes_image = a.load or a.load_panic or a.force or not actions
    if (a.kernel or a.default or a.entry is not None) and not takes_image:
        raise UsageError("a kernel is only taken by -l, -p, -f or the default action")


def _allowed_pair(a):
    """kexec-tools' combinations: -p -u, -l -S, -p -S, -l -u."""
    if a.unload:
        return not (a.exec or a.force or a.status)
    if a.status:
        return not (a.exec or a.force)
    return False


def _image_from_args(a):
    """(kernel, initrds, command line, whether the command line was given) from KERNEL
    or a boot entry; a UKI loaded with no command line given uses its own."""
    panic = a.load_panic
    from_entry = a.default or a.entry is not None
    if from_entry:
        from ..boot import discover, find_entry
        config = discover(a.root)
        entry = config.default if a.default else find_entry(config, a.entry)
        kernel, initrds, base = entry.kernel_path, tuple(entry.initrd_paths), entry.options
    elif a.kernel:
        kernel, initrds, base = a.kernel, (), ""
    else:
        raise UsageError("no kernel given: name a KERNEL, or use --default or --entry")
    if a.initrd:
        initrds = tuple(a.initrd)
    cmdline = CommandLine(base)
    if panic and from_entry:
        cmdline.remove("crashkernel")  # a capture kernel reserves nothing of its own
    if a.reuse_cmdline:
        cmdline = for_reuse(rootfs.read_text(a.root, "/proc/cmdline") or "", panic)
    if a.append:
        cmdline.append(a.append)
    return kernel, initrds, str(cmdline), bool(from_entry or a.reuse_cmdline or
                                               a.append is not None)


def _list_entries(a, out):
    import json
    from ..boot import discover
    config = discover(a.root)
    if a.json:
        json.dump({"source": config.source, "config": config.config,
                   "default": config.default_index,
                   "entries": [e.as_dict(e.index == config.default_index)
                               for e in config.entries]}, out, indent=2)
        out.write("\n")
        return
    out.write("source: %s (%s)\n" % (config.source, config.config))
    rows = [("INDEX", "DEFAULT", "ID", "VERSION", "KERNEL", "INITRD")]
    for e in config.entries:
        rows.append((str(e.index), "*" if e.index == config.default_index else "", e.id,
                     e.version or "-", e.kernel_path, " ".join(e.initrd_paths) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
        if n:
            e = config.entries[n - 1]
            out.write("    title: %s\n    options: %s\n" % (e.title, e.options or "-"))


def run(argv, out=None, err=None):
    # Looked up at call time: a default of sys.stdout would pin the stream of import time.
    out = out or sys.stdout
    err = err or sys.stderr
    a = build_parser().parse_args(argv)
    _check_args(a)
    loader = Loader(root=a.root, dry_run=a.dry_run, debug=a.debug, out=out, err=err)
    if a.list_entries:
        _list_entries(a, out)
        return EXIT_OK
    if a.print_ckr_size:
        out.write("%d\n" % state.crash_reserve_size(a.root))
        return EXIT_OK
    if a.status:
        return 1 if state.image_loaded(a.root, panic=not a.load) else 0
    if a.unload:
        loader.unload(panic=a.load_panic, mode=a.mode)
        return EXIT_OK
    if a.exec:
        loader.execute(sync=not a.no_sync, ifdown=not a.no_ifdown)
        return EXIT_OK
    kernel, initrds, cmdline, cmdline_given = _image_from_args(a)
    serial_port = 0
    if a.console_serial:
        from ..load.purgatory import SERIAL_COM1
        serial_port = SERIAL_COM1
    loader.load(LoadSpec(kernel=kernel, initrds=initrds, cmdline=cmdline,
                         cmdline_given=cmdline_given,
                         panic=a.load_panic, mode=a.mode, debug=a.debug, root=a.root,
                         serial_port=serial_port,
                         no_checks=a.no_checks, reuse_video_type=a.reuse_video_type))
    if a.force:
        loader.execute(sync=not a.no_sync, ifdown=not a.no_ifdown)
    elif not (a.load or a.load_panic):
        loader.shutdown_reboot()
    return EXIT_OK


def main(argv=None):
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except KexecError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print("%s: %s" % (PROG, os_error_message(e)), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
