"""kexec-py: kexec and kdump for RHEL-family Linux, a Python package with a C core."""

__version__ = "0.1.0"
