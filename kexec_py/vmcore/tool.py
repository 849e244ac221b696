"""The `vmcore-copy` and `vmcore-dmesg` console scripts: exec the C executable shipped in kexec_py/libexec.

The executable is what the capture initramfs runs (no Python there); on a full system
this entry point just puts it on PATH with the same options and exit statuses.
"""
import os
import sys

LIBEXEC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "libexec")


def executable(name="vmcore-copy"):
    """Path of a C executable built into the package."""
    return os.path.join(LIBEXEC, name)


def main(argv=None, name="vmcore-copy"):
    argv = sys.argv[1:] if argv is None else argv
    path = executable(name)
    if not os.access(path, os.X_OK):
        sys.stderr.write("%s: %s is missing: rebuild the package\n" % (name, path))
        return 1
    os.execv(path, [name] + list(argv))
    return 1  # not reached


def dmesg_main(argv=None):
    """The `vmcore-dmesg` console script."""
    return main(argv, "vmcore-dmesg")


if __name__ == "__main__":
    sys.exit(main())
