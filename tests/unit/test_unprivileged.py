"""The rough edges a non-root user meets (issue 11, item 4), with real permissions: each
command runs as nobody (setpriv) on a fake root whose files carry the modes the kernel
and distributions give them.

- /proc/iomem shows every address as zero to users without CAP_SYS_ADMIN, and the
  per-CPU crash_notes files are mode 0400: a panic --dry-run says the reserve is
  unreadable without root instead of "not reserved" (254) or blaming CONFIG_CRASH_DUMP.
- An unreadable or missing boot loader file, kdump.conf or sysconfig file gives one line
  naming the file, from every command, never a traceback.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from .conftest import FakeRoot
from .test_kexec_load_plan import machine

BIN = os.path.dirname(os.path.abspath(sys.executable))
SETPRIV = shutil.which("setpriv")
MASKED_IOMEM = ("00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n"
                "  00000000-00000000 : Kernel code\n  00000000-00000000 : Crash kernel\n")


@pytest.fixture
def shared_tmp():
    """A directory nobody can reach (pytest's own tmp_path is root's, mode 0700)."""
    d = tempfile.mkdtemp(prefix="kpy-unpriv.", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_nobody(*argv):
    assert SETPRIV, "setpriv (util-linux) is missing"
    return subprocess.run([SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups"] +
                          [str(a) for a in argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def open_up(root, private=()):
    """Modes as on a real system: everything world-readable but the private files."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    for rel in private:
        os.chmod(os.path.join(root, rel.lstrip("/")), 0o400)


def panic_machine(shared_tmp, masked=True, notes_private=True):
    root = machine(_Path(shared_tmp))
    if masked:
        root.write("/proc/iomem", MASKED_IOMEM)
    else:
        root.write("/proc/iomem", "00100000-7ffdffff : System RAM\n"
                                  "  01000000-01ffffff : Kernel code\n"
                                  "  70000000-7fffffff : Crash kernel\n")
    root.write("/sys/kernel/kexec_crash_size", "268435456\n")
    kernel = root.kernel()
    initrd = root.initrd(data=os.urandom(4096))
    private = ["/sys/devices/system/cpu/cpu0/crash_notes",
               "/sys/devices/system/cpu/cpu1/crash_notes"] if notes_private else []
    open_up(str(root), private)
    return root, kernel, initrd


class _Path(str):
    def __truediv__(self, other):
        return os.path.join(self, other)


@pytest.mark.parametrize("syscall", ["-c", "-s"])
def test_panic_dry_run_as_a_user_says_root_is_needed(shared_tmp, syscall):
    root, kernel, initrd = panic_machine(shared_tmp)
    proc = as_nobody(os.path.join(BIN, "kexec"), syscall, "-p", kernel, "--initrd", initrd,
                     "--append", "x", "--dry-run", "--root", root)
    out = proc.stderr + proc.stdout
    if syscall == "-c":
        # kexec_load needs the reserve's addresses: unreadable, and said so
        assert proc.returncode == 1, (proc.returncode, out)
        assert "unreadable without root" in out, out
    else:
        # kexec_file_load only needs to know there is a reserve: its size is public
        assert proc.returncode == 0, (proc.returncode, out)
    assert "not reserved" not in out and "CONFIG_CRASH_DUMP" not in out, out
    assert "Traceback" not in out, out


def test_crash_notes_unreadable_is_not_blamed_on_the_kernel_config(shared_tmp):
    root, kernel, initrd = panic_machine(shared_tmp, masked=False)
    proc = as_nobody(os.path.join(BIN, "kexec"), "-c", "-p", kernel, "--initrd", initrd,
                     "--append", "x", "--dry-run", "--root", root)
    out = proc.stderr + proc.stdout
    assert proc.returncode == 1, (proc.returncode, out)
    assert "crash_notes: unreadable without root" in out, out
    assert "CONFIG_CRASH_DUMP" not in out


def test_the_same_dry_run_as_root_goes_through(shared_tmp):
    root, kernel, initrd = panic_machine(shared_tmp, masked=False, notes_private=False)
    proc = subprocess.run([os.path.join(BIN, "kexec"), "-c", "-p", kernel, "--initrd",
                           initrd, "--append", "x", "--dry-run", "--root", str(root)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stdout


GRUB2 = 'menuentry "Linux" {\n  linux /vmlinuz root=/dev/sda1\n  initrd /initrd.img\n}\n'
GRUB_LEGACY = "default=0\ntitle Linux\n  root (hd0,0)\n  kernel /vmlinuz ro root=/dev/sda1\n"


@pytest.mark.parametrize("path,text", [
    ("/boot/grub2/grub.cfg", GRUB2),
    ("/boot/grub/grub.cfg", GRUB2),
    ("/boot/loader/entries/linux.conf", "title Linux\nlinux /vmlinuz\noptions root=/dev/sda1\n"),
    ("/boot/grub/grub.conf", GRUB_LEGACY),
])
@pytest.mark.parametrize("verb", [["--list-entries"], ["-l", "--default", "--dry-run"]])
def test_an_unreadable_boot_loader_file_is_named(shared_tmp, path, text, verb):
    root = FakeRoot(_Path(shared_tmp) / "root")
    root.write(path, text)
    open_up(str(root))
    os.chmod(os.path.join(str(root), path.lstrip("/")), 0o600)
    proc = as_nobody(os.path.join(BIN, "kexec"), *verb, "--root", root)
    out = proc.stderr + proc.stdout
    assert "Traceback" not in out, out
    assert proc.returncode == 1 and path in out and "Permission denied" in out, out
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("cmd", [["kdumpctl", "estimate"], ["kdumpctl", "show-plan"],
                                 ["mkdumprd", "-f", "/tmp/kpy-unpriv.img", "6.1"]])
@pytest.mark.parametrize("state", ["unreadable", "missing"])
def test_kdump_commands_name_an_unreadable_or_missing_config(shared_tmp, cmd, state):
    root = FakeRoot(_Path(shared_tmp) / "root").standard()
    root.write("/etc/kdump.conf", "path /var/crash\ncore_collector makedumpfile -l -d 31\n")
    root.write("/etc/sysconfig/kdump", 'KDUMP_COMMANDLINE_APPEND="irqpoll"\n')
    open_up(str(root))
    conf = os.path.join(str(root), "etc/kdump.conf")
    if state == "unreadable":
        os.chmod(conf, 0o600)
    else:
        os.unlink(conf)
    argv = [os.path.join(BIN, cmd[0])] + cmd[1:] + ["--root", str(root)]
    proc = as_nobody(*argv)
    out = proc.stderr + proc.stdout
    assert "Traceback" not in out, out
    assert proc.returncode != 0 and "kdump.conf" in out, (proc.returncode, out)
    if state == "unreadable":
        assert "Permission denied" in out, out
    else:
        assert "No kdump config file found" in out or "not found" in out, out
