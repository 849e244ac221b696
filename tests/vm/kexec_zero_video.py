"""kexec with boot_params.screen_info zeroed: the video test's control (what early
kexec-tools handed over). Test-only: product code has no switch for it.

    python3 -m tests.vm.kexec_zero_video -c -l KERNEL --initrd=... --append=...
"""
import sys

from kexec_py.cli.kexec import main
from kexec_py.load import video


def zeroed(*args, **kwargs):
    return bytes(video.SCREEN_INFO_SIZE), "zeroed by the test (a garbled console)"


if __name__ == "__main__":
    video.screen_info = zeroed
    sys.exit(main(sys.argv[1:]))
