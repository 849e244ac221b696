"""VMCOREINFO: the KEY=VALUE text the kernel leaves in a vmcore's notes.

    info = parse(text)                 # {'OSRELEASE': '6.1.0-...', 'PAGESIZE': '4096', ...}
    symbol(info, 'init_uts_ns')        # int address, or None
    number(info, 'phys_base')          # int, or None

Translating kernel virtual addresses is the C library's job (Dump.vtop, read_virt);
tests/x86_oracle.py holds an independent Python walk the tests judge it with.
"""
from typing import Dict, Optional


def parse(text) -> Dict[str, str]:
    """KEY=VALUE lines into a dict (bytes or str; the last value of a key wins)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).split(b"\0", 1)[0].decode("ascii", "replace")
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            out[key] = value
    return out


def symbol(info: Dict[str, str], name: str) -> Optional[int]:
    """SYMBOL(name) as an int (hexadecimal in the note)."""
    value = info.get("SYMBOL(%s)" % name)
    return int(value, 16) if value else None


def number(info: Dict[str, str], name: str) -> Optional[int]:
    """NUMBER(name) as an int (decimal, possibly negative)."""
    value = info.get("NUMBER(%s)" % name)
    return int(value, 0) if value else None


def size(info: Dict[str, str], name: str) -> Optional[int]:
    value = info.get("SIZE(%s)" % name)
    return int(value) if value else None


def offset(info: Dict[str, str], member: str) -> Optional[int]:
    value = info.get("OFFSET(%s)" % member)
    return int(value) if value else None
