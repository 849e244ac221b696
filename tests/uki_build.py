"""Unified kernel images for the tests, made with objcopy on systemd's EFI stub (Debian's
systemd-boot-efi) the way the UAPI group's UKI specification describes."""
import os
import subprocess

STUB = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
CMDLINE = "root=/dev/vda ro console=ttyS0 uki.marker=42"
OSREL = 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'


def build_uki(directory, kernel, name="uki.efi", initrd=b"INITRD" * 1000,
              cmdline=CMDLINE, uname="6.1.0-uki", stub=STUB):
    """objcopy --add-section, with the VMAs systemd's documentation uses."""
    assert os.path.exists(stub), "systemd-boot-efi is missing: tools/install-deps.sh"
    parts = [(".osrel", OSREL.encode(), 0x20000), (".cmdline", cmdline.encode(), 0x30000),
             (".uname", uname.encode(), 0x40000),
             (".linux", kernel, 0x2000000)]
    if initrd is not None:
        parts.append((".initrd", initrd, 0x3000000))
    args = ["objcopy"]
    for sec, data, vma in parts:
        path = os.path.join(str(directory), name + sec)
        with open(path, "wb") as f:
            f.write(data)
        args += ["--add-section", "%s=%s" % (sec, path),
                 "--change-section-vma", "%s=%#x" % (sec, vma)]
    out = os.path.join(str(directory), name)
    subprocess.run(args + [stub, out], check=True)
    return out
