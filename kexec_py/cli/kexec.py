"""`kexec`: load a kernel and boot it, option- and exit-code-compatible with kexec-tools.

Beyond kexec-tools it picks kernels from the boot loader's entries (--default, --entry,
--list-entries) and shows what it would do without doing it (--dry-run).
"""
import sys

from .. import rootfs
from ..cmdline import CommandLine, for_reuse
from ..errors import EXIT_OK, EXIT_USAGE, KexecError, UsageError, os_error_message
from ..load import state
from ..load.loader import LoadSpec, Loader

# Start-up matters for `kexec -l` (issue 12): what only some paths need - the boot entry
# parsers, json, the kexec_load builders and purgatory, argparse - is imported where it
# is used.

PROG = "kexec"

# The parsed command line without argparse: each option string's attribute and kind
# (flag: True; "const:X": that value; "value": the next word or =VALUE; "append": the
# same, collected). tests/unit/test_cli_kexec_fastparse.py checks these tables against
# kexec_args.build_parser() and the results against argparse's on generated argvs.
DEFAULTS = {"kernel": None, "load": False, "load_panic": False, "unload": False,
            "exec": False, "force": False, "status": False, "print_ckr_size": False,
            "list_entries": False, "mode": "auto", "initrd": None, "append": None,
            "reuse_cmdline": False, "default": False, "entry": None, "root": "/",
            "dry_run": False, "json": False, "debug": False, "no_ifdown": False,
            "no_sync": False, "no_checks": False, "console_serial": False,
            "reuse_video_type": False}
OPTIONS = {
    "-l": ("load", True), "--load": ("load", True),
    "-p": ("load_panic", True), "--load-panic": ("load_panic", True),
    "-u": ("unload", True), "--unload": ("unload", True),
    "-e": ("exec", True), "--exec": ("exec", True),
    "-f": ("force", True), "--force": ("force", True),
    "-S": ("status", True), "--status": ("status", True),
    "--print-ckr-size": ("print_ckr_size", True), "--list-entries": ("list_entries", True),
    "-s": ("mode", "const:file"), "--kexec-file-syscall": ("mode", "const:file"),
    "-c": ("mode", "const:load"), "--kexec-syscall": ("mode", "const:load"),
    "-a": ("mode", "const:auto"), "--kexec-syscall-auto": ("mode", "const:auto"),
    "--initrd": ("initrd", "append"), "--ramdisk": ("initrd", "append"),
    "--append": ("append", "value"), "--command-line": ("append", "value"),
    "--reuse-cmdline": ("reuse_cmdline", True), "--default": ("default", True),
    "--entry": ("entry", "value"), "--root": ("root", "value"),
    "--dry-run": ("dry_run", True), "--json": ("json", True),
    "-d": ("debug", True), "--debug": ("debug", True),
    "-x": ("no_ifdown", True), "--no-ifdown": ("no_ifdown", True),
    "-y": ("no_sync", True), "--no-sync": ("no_sync", True),
    "-i": ("no_checks", True), "--no-checks": ("no_checks", True),
    "--console-serial": ("console_serial", True),
    "--reuse-video-type": ("reuse_video_type", True),
}


class Args:
    """A parsed command line: the attributes argparse's Namespace would have."""

    def __init__(self, values):
        self.__dict__.update(values)


def fast_parse(argv):
    """Args for a command line made only of the exact option strings above, their values
    and at most one KERNEL; None for anything else (help, version, abbreviations,
    combined short options, "--", a value that looks like an option, an error), which
    argparse then parses and reports exactly as before."""
    values = dict(DEFAULTS)
    i, n = 0, len(argv)
    while i < n:
        word = argv[i]
        i += 1
        if not word.startswith("-"):
            if not word or values["kernel"] is not None:
                return None
            values["kernel"] = word
            continue
        name, eq, attached = word.partition("=")
        long_eq = bool(eq) and name.startswith("--")   # --option=VALUE
        spec = OPTIONS.get(name if long_eq else word)
        if spec is None:
            return None
        dest, kind = spec
        if kind is True or kind[:6] == "const:":
            if long_eq:
                return None                      # argparse: "ignored explicit argument"
            values[dest] = True if kind is True else kind[6:]
            continue
        if long_eq:
            value = attached
        elif i < n and not argv[i].startswith("-"):
            value = argv[i]
            i += 1
        else:
            return None                          # missing, or looks like an option
        if kind == "append":
            values[dest] = (values[dest] or []) + [value]
        else:
            values[dest] = value
    return Args(values)


def parse_args(argv):
    a = fast_parse(argv)
    if a is None:
        from .kexec_args import build_parser
        a = build_parser().parse_args(argv)
    return a


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
    a = parse_args(argv)
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
