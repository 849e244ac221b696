"""Boot entries: read what the boot loader would boot, and pick one.

Sources, in the order they are tried: BLS snippets (/boot/loader/entries), GRUB 2
(grub.cfg), GRUB legacy (grub.conf / menu.lst), and finally the running kernel's files in
/boot. See select.discover().
"""
from .entry import BootEntry  # noqa: F401
from .select import BootConfig, discover, find_entry  # noqa: F401
