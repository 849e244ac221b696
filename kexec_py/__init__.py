"""kexec-py: kexec and kdump for RHEL-family Linux, a Python package with a C core."""

try:
    from ._version import __version__      # written at build time from kexec-tools.spec
except ImportError:                        # a source tree that was never built
    __version__ = "unknown"
