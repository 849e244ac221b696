"""`mkdumprd [-f] IMAGE KVER`: build the capture initramfs from the kdump plan."""
import argparse
import os
import sys

from ..errors import KexecError, os_error_message

PROG = "mkdumprd"


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG, description="Build the kdump capture initramfs IMAGE for kernel KVER "
                               "from /etc/kdump.conf and /etc/sysconfig/kdump.")
    p.add_argument("-f", "--force", action="store_true", help="overwrite IMAGE if it exists")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("kver", metavar="KVER")
    p.add_argument("--root", default="/", metavar="DIR",
                   help="read the configuration and write IMAGE under DIR")
    return p


def main(argv=None):
    from .. import rootfs
    from ..kdump import mkdumprd, plan, sysconfig
    a = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if os.path.exists(rootfs.join(a.root, a.image)) and not a.force:
            print("%s: %s exists: use -f to overwrite it" % (PROG, a.image), file=sys.stderr)
            return 1
        sysconf = sysconfig.load(a.root)
        sysconf.values["KDUMP_KERNELVER"] = a.kver
        p = plan.resolve(a.root, sysconf=sysconf)
        mkdumprd.build(p, image=a.image, force=a.force)
    except KexecError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 1
    except OSError as e:
        print("%s: %s" % (PROG, os_error_message(e)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
