"""kexec with a wrong SHA-256 digest stored for purgatory: purgatory must refuse to boot
the new kernel (the VM test's scenario c). Test-only: product code has no switch for it.

    python3 -m tests.vm.kexec_corrupt_digest -c -l KERNEL --initrd=... --append=...
"""
import sys

from kexec_py.load import purgatory


def corrupt():
    """Make every digest purgatory is given wrong in its first byte."""
    good = purgatory.PurgatoryParams.digest

    def bad(self):
        d = good(self)
        return bytes([d[0] ^ 0xFF]) + d[1:]
    purgatory.PurgatoryParams.digest = bad
    return good


if __name__ == "__main__":
    corrupt()
    from kexec_py.cli.kexec import main
    sys.exit(main(sys.argv[1:]))
