"""`kdumpctl`: control the kdump service (RHEL kdump-utils' verbs and exit statuses).

Every file it reads or writes is taken under --root DIR (default /), so it can be run
against a temporary tree.
"""
import argparse
import sys

from ..errors import KexecError, os_error_message

PROG = "kdumpctl"
VERBS = ("start", "stop", "status", "restart", "reload", "rebuild", "estimate", "showmem",
         "get-default-crashkernel", "reset-crashkernel", "propagate", "test", "show-plan")
# kernel-install's hook; RHEL spells it with an underscore before "kernel" (osbuild calls
# that name), so both are taken.
HIDDEN = ("_reset-crashkernel-for-installed-kernel", "_reset-crashkernel-for-installed_kernel")
USAGE = "Usage: kdumpctl {%s}" % "|".join(VERBS)

DESCRIPTION = """\
Control the kdump service: load a capture kernel that saves a dump of this machine's
memory when it panics, where /etc/kdump.conf says.

  start                    check the reserve, the config and the target; rebuild the
                           capture initramfs if needed; load the capture kernel
  stop                     unload the capture kernel
  status                   exit 0 when kdump is operational, 3 when it is not; the last
                           dump's result and the last test's
  restart, reload          stop + start; reload: unload and load again without a rebuild
  rebuild                  rebuild the capture initramfs (mkdumprd)
  estimate                 reserved vs recommended crashkernel size, and its parts
  showmem                  the memory reserved for the capture kernel
  get-default-crashkernel  the crashkernel= value this release recommends
  reset-crashkernel        write that value into the boot entries
                           [--kernel=PATH|ALL|DEFAULT] [--dry-run: print the diff]
  propagate                send the ssh key to the ssh dump target
  test                     crash this machine now to check that a dump is saved [--force]
  show-plan                print the resolved capture plan as JSON (kexec-py)"""

EPILOG = """\
exit status: 0 success (start when already running warns and exits 0); 1 failure, an
invalid configuration, no /etc/kdump.conf, or an unknown verb; status: 0 operational,
3 not operational."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print("kdump: %s" % USAGE, file=sys.stderr)
        self.exit(1, "%s: %s\n" % (self.prog, message))


def build_parser():
    p = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("verb", metavar="VERB", help="one of the verbs above")
    p.add_argument("args", nargs="*", metavar="ARG", help=argparse.SUPPRESS)
    p.add_argument("--root", default="/", metavar="DIR",
                   help="read and write /boot, /etc, /proc, /sys, /run and /var under DIR")
    p.add_argument("--kernel", metavar="PATH|ALL|DEFAULT",
                   help="reset-crashkernel: the boot entries to change (default: DEFAULT)")
    p.add_argument("--dry-run", action="store_true",
                   help="reset-crashkernel: print the edits as a diff; start, stop, reload: "
                        "print the load or unload, do nothing")
    p.add_argument("--force", action="store_true", help="test: do not ask for confirmation")
    return p


def run(argv, out=None, err=None, stdin=None):
    out = out or sys.stdout
    err = err or sys.stderr
    a = build_parser().parse_args(argv)
    from ..kdump.ctl import Kdumpctl, run_verb
    if a.verb not in VERBS + HIDDEN:
        print("kdump: %s" % USAGE, file=out)
        return 1
    if a.verb in HIDDEN:
        if len(a.args) != 1:
            print("kdump: usage: kdumpctl %s KVER" % HIDDEN[0], file=err)
            return 1
        a.kver = a.args[0]
        a.verb = HIDDEN[0]
    elif a.verb == "test" and a.args == ["--force"]:
        a.force = True
    elif a.args:
        print("kdump: %s takes no argument %s" % (a.verb, " ".join(a.args)), file=err)
        return 1
    ctl = Kdumpctl(root=a.root, out=out, err=err, dry_run=a.dry_run, stdin=stdin)
    try:
        ctl.require_config()
        return run_verb(ctl, a.verb, a)
    except (KexecError, OSError) as e:
        ctl.error(str(e) if isinstance(e, KexecError) else os_error_message(e))
        if a.verb in ("start", "restart"):
            ctl.error("Starting kdump: [FAILED]")
        elif a.verb == "stop":
            ctl.error("Stopping kdump: [FAILED]")
        return 1


def main(argv=None):
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
