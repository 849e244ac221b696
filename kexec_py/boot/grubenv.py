"""GRUB's environment block (grubenv): `key=value` lines padded with '#' to 1 KiB."""
from .. import rootfs

GRUBENV_PATHS = (
    "/boot/grub2/grubenv",
    "/boot/grub/grubenv",
    "/boot/efi/EFI/redhat/grubenv",
    "/boot/efi/EFI/centos/grubenv",
    "/boot/efi/EFI/fedora/grubenv",
)


def parse_grubenv(text):
    env = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if eq:
            env[key] = value
    return env


def read_grubenv(root):
    """(path, variables) of the first grubenv found, or (None, {})."""
    for path in GRUBENV_PATHS:
        text = rootfs.read_text(root, path)
        if text is not None:
            return path, parse_grubenv(text)
    return None, {}


def expand_vars(text, env):
    """Expand $name and ${name} as GRUB does; unknown variables become empty."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "{":
            end = text.find("}", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            out.append(env.get(text[i + 2:end], ""))
            i = end + 1
            continue
        j = i + 1
        while j < n and (text[j].isalnum() or text[j] == "_"):
            j += 1
        if j == i + 1:
            out.append(c)
            i += 1
            continue
        out.append(env.get(text[i + 1:j], ""))
        i = j
    return "".join(out).strip()
