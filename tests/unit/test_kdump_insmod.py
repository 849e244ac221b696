"""kdump-insmod, the own-init capture image's module loader (csrc/tools/kdump_insmod.c).

Loading needs a kernel that lets us (the VM scenarios load virtio and ext4 with it);
here: the parameters it would pass (-n), as modprobe gathers them from the kernel
command line, and its refusals.
"""
import os
import subprocess

import pytest

from kexec_py.vmcore.tool import executable

TOOL = executable("kdump-insmod")


def run(*args):
    return subprocess.run([TOOL] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


@pytest.fixture
def cmdline(tmp_path):
    path = tmp_path / "cmdline"
    path.write_text('root=/dev/vda virtio-blk.queue_depth=8 virtio_blk.x="a b" foo=1 '
                    'ext4.y=2 virtio_blk.flag virtio_blkx.z=3 irqpoll\n')
    return str(path)


def test_parameters_come_from_the_arguments_then_the_command_line(cmdline):
    p = run("-n", "-c", cmdline, "/lib/modules/k/kernel/virtio_blk.ko", "p=1")
    assert p.returncode == 0, p.stderr
    # '-' and '_' alike in the module name; a quoted value stays one word; a bare
    # MODULE.PARAM (a bool) passes as PARAM; another module's words do not
    assert p.stdout == 'virtio_blk p=1 queue_depth=8 x="a b" flag\n'
    p = run("-n", "-c", cmdline, "virtio-blk.ko.xz")
    assert p.stdout == 'virtio_blk queue_depth=8 x="a b" flag\n'
    p = run("-n", "-c", cmdline, "/x/ext4.ko")
    assert p.stdout == "ext4 y=2\n"
    # no command line to read: only the arguments
    p = run("-n", "-c", cmdline + ".missing", "/x/ext4.ko", "a=1", "b")
    assert p.returncode == 0 and p.stdout == "ext4 a=1 b\n"


def test_refusals_name_the_file_and_the_reason(tmp_path, cmdline):
    p = run("-c", cmdline, str(tmp_path / "missing.ko"))
    assert p.returncode == 1
    assert p.stderr == "kdump-insmod: %s: No such file or directory\n" % (tmp_path / "missing.ko")
    p = run("")
    assert p.returncode == 1 and "not a module file name" in p.stderr
    p = run("-n", "-c", cmdline, "/x/m.ko", "p=" + "x" * 5000)
    assert p.returncode == 1 and "longer than 4095 bytes" in p.stderr
    # not a module: whatever the kernel (or a sandbox without the syscall) says, it fails
    junk = tmp_path / "junk.ko"
    junk.write_bytes(b"not an ELF module")
    p = run("-c", cmdline, str(junk))
    assert p.returncode == 1 and p.stderr.startswith("kdump-insmod: %s: " % junk)
    for bad in ([], ["-x", "a.ko"], ["-c"]):
        p = run(*bad)
        assert p.returncode == 1 and p.stderr.startswith("usage: kdump-insmod"), bad
    p = run("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: kdump-insmod")
    assert os.access(TOOL, os.X_OK)


def test_hostile_command_lines_do_not_break_the_parser(tmp_path):
    """Unterminated quotes, bare MODULE., NUL bytes and a command line larger than the
    tool reads: parameters are still bounded, and nothing runs past the buffer (the
    sanitizer build runs this too)."""
    path = tmp_path / "cmdline"
    for text, want in ((b'm.a="unterminated m.b=1', 'm a="unterminated m.b=1'),
                       (b"m. m.= m.x", "m = x"),
                       (b"m.a=1\0m.b=2", "m a=1"),
                       (b"\t\n  m.a=1\t\tm.b=2\n", "m a=1 b=2"),
                       (b"", "m ")):
        path.write_bytes(text)
        p = run("-n", "-c", str(path), "/x/m.ko")
        assert p.returncode == 0 and p.stdout == want + "\n", (text, p.stdout)
    # 100 KiB of parameters for the module: more than a module parameter string holds
    path.write_bytes(b"m.p=" + b"x" * 100000)
    p = run("-n", "-c", str(path), "/x/m.ko")
    assert p.returncode == 1 and "longer than 4095 bytes" in p.stderr
    # a command line past the 64 KiB the tool reads: the rest is not looked at
    path.write_bytes(b"y" * 70000 + b" m.late=1")
    p = run("-n", "-c", str(path), "/x/m.ko")
    assert p.returncode == 0 and p.stdout == "m \n"
