"""The kexec command's real load path, with the syscalls replaced by recorders.

kexec_py.native.kexec_file_load/kexec_load and kexec_py.load.state.has_cap_sys_boot are
monkeypatched, so nothing reaches the host kernel. Then the CLI runs as a subprocess:
once as root through the installed console script, and as uid 65534 (not root).
"""
import errno
import os
import subprocess

import pytest

from kexec_py import native
from kexec_py.errors import SIGNATURE_ERRNOS, SyscallError
from kexec_py.load import state

from .conftest import compress, make_bzimage, make_tree_readable, venv_kexec, write_file

SIGNATURE = sorted(SIGNATURE_ERRNOS)
FALLBACK = [errno.ENOSYS, errno.EINVAL, errno.ENOEXEC, errno.EOPNOTSUPP]


class Syscalls:
    """Records kexec_file_load/kexec_load calls; fails them with the queued errnos."""

    def __init__(self):
        self.file_calls, self.load_calls, self.errors = [], [], []

    def kexec_file_load(self, kernel_fd, initrd_fd, cmdline, flags):
        link = lambda fd: os.readlink("/proc/self/fd/%d" % fd) if fd >= 0 else None  # noqa
        data = os.pread(initrd_fd, 1 << 20, 0) if initrd_fd >= 0 else None
        self.file_calls.append({"kernel": link(kernel_fd), "initrd": link(initrd_fd),
                                "initrd_data": data, "cmdline": cmdline, "flags": flags})
        if self.errors:
            raise SyscallError("kexec_file_load", self.errors.pop(0))

    def kexec_load(self, entry, segments, flags):
        self.load_calls.append((entry, list(segments), flags))
        if self.errors:
            raise SyscallError("kexec_load", self.errors.pop(0))

    @property
    def flags(self):
        return [c["flags"] for c in self.file_calls]


@pytest.fixture
def calls(monkeypatch):
    rec = Syscalls()
    monkeypatch.setattr(native, "kexec_file_load", rec.kexec_file_load)
    monkeypatch.setattr(native, "kexec_load", rec.kexec_load)
    monkeypatch.setattr(state, "has_cap_sys_boot", lambda: True)
    return rec


def load(kexec, root, *args):
    return kexec(*args, "--root", root)


def test_load_passes_files_cmdline_and_flags(kexec, root, calls, kernel_path, initrd_paths):
    r = load(kexec, root, "-l", kernel_path, "--initrd", initrd_paths[0],
             "--append", 'ro x="a b"')
    assert (r.code, r.out, r.err) == (0, "", "")
    assert calls.file_calls == [{
        "kernel": kernel_path, "initrd": initrd_paths[0],
        "initrd_data": open(initrd_paths[0], "rb").read(),
        "cmdline": b'ro x="a b"', "flags": 0}]
    assert calls.load_calls == []


@pytest.mark.parametrize("args,with_initrd,flags", [
    (["-p"], True, native.KEXEC_FILE_ON_CRASH),
    (["-p"], False, native.KEXEC_FILE_ON_CRASH | native.KEXEC_FILE_NO_INITRAMFS),
    (["-l"], False, native.KEXEC_FILE_NO_INITRAMFS),
    (["-l", "-d"], True, native.KEXEC_FILE_DEBUG),
    (["-p", "-d", "-s"], False,
     native.KEXEC_FILE_ON_CRASH | native.KEXEC_FILE_NO_INITRAMFS | native.KEXEC_FILE_DEBUG),
])
def test_flags_passed(kexec, root, calls, kernel_path, initrd_paths, args, with_initrd, flags):
    extra = ["--initrd", initrd_paths[0]] if with_initrd else []
    r = load(kexec, root, *args, kernel_path, *extra)
    assert r.code == 0, r
    assert calls.flags == [flags]


def test_debug_reports_on_stderr_and_passes_the_flag(kexec, root, calls, kernel_path):
    """-d prints each step and hands the kernel KEXEC_FILE_DEBUG; it leaves the
    environment alone (it once set KEXEC_DEBUG variables nothing read)."""
    r = load(kexec, root, "-l", "-d", kernel_path, "--append", "quiet")
    assert r.code == 0 and r.out == ""
    assert "kexec: syscall: kexec_file_load(" in r.err
    assert "KEXEC_FILE_DEBUG" in r.err and "kexec: cmdline: quiet" in r.err
    assert calls.file_calls[0]["flags"] & 0x8
    assert "KEXEC_DEBUG" not in os.environ and "KEXEC_FILE_DEBUG" not in os.environ


def test_compressed_kernel_and_initrds_reach_the_syscall_as_memfds(
        kexec, root, calls, tmp_path, initrd_paths):
    raw = make_bzimage()
    path = write_file(str(tmp_path / "vmlinuz.xz"), compress("xz", raw, tmp_path))
    r = load(kexec, root, "-l", path, *("--initrd=" + p for p in initrd_paths))
    assert r.code == 0, r
    call = calls.file_calls[0]
    assert call["kernel"].startswith("/memfd:kexec-kernel")
    assert call["initrd"].startswith("/memfd:kexec-initrd")
    assert call["initrd_data"] == b"".join(open(p, "rb").read() for p in initrd_paths)


@pytest.mark.parametrize("mode", ["-a", "-s"])
@pytest.mark.parametrize("err", SIGNATURE, ids=[errno.errorcode[e] for e in SIGNATURE])
def test_signature_errors_never_fall_back(kexec, root, calls, kernel_path, mode, err):
    calls.errors = [err]
    r = load(kexec, root, "-l", mode, kernel_path)
    assert r.code == 255
    assert calls.load_calls == [] and len(calls.file_calls) == 1
    assert r.err.count("\n") == 1
    assert "signature check failed (%s" % errno.errorcode[err] in r.err
    assert kernel_path in r.err
    assert "signed" in r.err and "mokutil --import" in r.err


@pytest.mark.parametrize("mode", ["-a", "-s"])
def test_eperm_never_falls_back_and_names_lockdown(kexec, root, calls, kernel_path, mode):
    calls.errors = [errno.EPERM]
    r = load(kexec, root, "-p", mode, kernel_path)
    assert r.code == 255
    assert calls.load_calls == [] and len(calls.file_calls) == 1
    assert "lockdown" in r.err and "unsigned kernel" in r.err
    assert "capture kernel %s" % kernel_path in r.err


def test_enosys_with_file_syscall_only_exits_253(kexec, root, calls, kernel_path):
    calls.errors = [errno.ENOSYS]
    r = load(kexec, root, "-l", "-s", kernel_path)
    assert r.code == 253
    assert r.err == "kexec: kexec_file_load is not available in the running kernel (ENOSYS)\n"
    assert calls.load_calls == []


def test_einval_with_file_syscall_only_does_not_fall_back(kexec, root, calls, kernel_path):
    calls.errors = [errno.EINVAL]
    r = load(kexec, root, "-l", "-s", kernel_path)
    assert r.code == 255
    assert "Invalid argument (EINVAL)" in r.err
    assert len(calls.file_calls) == 1 and calls.load_calls == []


@pytest.mark.parametrize("err", FALLBACK, ids=[errno.errorcode[e] for e in FALLBACK])
def test_auto_mode_fallback_errnos(kexec, root, calls, kernel_path, err):
    """-a: kexec_file_load fails with a fallback errno, our kexec_load loader takes over."""
    calls.errors = [err]
    r = load(kexec, root, "-l", kernel_path, "--append", "root=/dev/vda1")
    assert r.code == 0, r
    assert len(calls.file_calls) == 1
    (entry, segments, flags), = calls.load_calls
    assert flags == native.KEXEC_ARCH_X86_64
    assert len(segments) == 3  # kernel, setup (boot_params + command line), purgatory
    assert any(data.endswith(b"root=/dev/vda1\0") or b"root=/dev/vda1\0" in data
               for data, _, _ in segments)
    assert entry in [mem for _, mem, _ in segments]


def test_kexec_load_only(kexec, root, calls, kernel_path):
    r = load(kexec, root, "-l", "-c", kernel_path)
    assert r.code == 0, r
    assert calls.file_calls == []
    assert len(calls.load_calls) == 1


def test_kexec_load_eperm_says_lockdown_and_use_s(kexec, root, calls, kernel_path):
    calls.errors = [errno.EPERM]
    r = load(kexec, root, "-l", "-c", kernel_path)
    assert r.code == 255
    assert "lockdown" in r.err and "use -s" in r.err
    assert r.err.count("\n") == 1


def test_kexec_load_refuses_an_old_boot_protocol(kexec, root, calls, tmp_path):
    old = write_file(str(tmp_path / "old-bzImage"), make_bzimage(version=0x020A))
    r = load(kexec, root, "-l", "-c", old)
    assert r.code == 255
    assert "cannot be loaded with kexec_load" in r.err and "use -s" in r.err
    assert calls.load_calls == []


def test_einval_with_debug_retries_once_without_debug_flag(kexec, root, calls, kernel_path):
    calls.errors = [errno.EINVAL]
    r = load(kexec, root, "-p", "-d", kernel_path)
    assert r.code == 0, r
    crash = native.KEXEC_FILE_ON_CRASH | native.KEXEC_FILE_NO_INITRAMFS
    assert calls.flags == [crash | native.KEXEC_FILE_DEBUG, crash]
    assert "retrying without it" in r.err


def test_einval_twice_with_debug_gives_up(kexec, root, calls, kernel_path):
    calls.errors = [errno.EINVAL, errno.EINVAL]
    r = load(kexec, root, "-l", "-d", "-s", kernel_path)
    assert r.code == 255
    assert len(calls.file_calls) == 2 and calls.load_calls == []


def test_einval_without_debug_is_not_retried(kexec, root, calls, kernel_path):
    calls.errors = [errno.EINVAL]
    r = load(kexec, root, "-l", "-s", kernel_path)
    assert r.code == 255 and len(calls.file_calls) == 1


def test_enomem_for_crash_kernel_says_reserve_too_small(kexec, root, calls, kernel_path):
    calls.errors = [errno.ENOMEM]
    r = load(kexec, root, "-p", kernel_path)
    assert r.code == 255
    assert "do not fit in the crash reserve" in r.err and "crashkernel=" in r.err


def test_panic_without_crash_reserve_loads_nothing(kexec, root, calls, kernel_path):
    root.no_crash_reserve()
    r = load(kexec, root, "-p", kernel_path)
    assert r.code == 254
    assert calls.file_calls == [] and calls.load_calls == []


@pytest.mark.parametrize("bad", ["missing-kernel", "missing-initrd", "long-cmdline",
                                 "not-a-kernel"])
def test_bad_input_loads_nothing(kexec, root, calls, tmp_path, small_kernel_path, bad):
    kernel, extra = small_kernel_path, []
    if bad == "missing-kernel":
        kernel = str(tmp_path / "gone")
    elif bad == "missing-initrd":
        extra = ["--initrd", str(tmp_path / "gone.img")]
    elif bad == "long-cmdline":
        extra = ["--append", "x" * 200]
    else:
        kernel = write_file(str(tmp_path / "cpio"), b"070701" + b"0" * 300)
    r = load(kexec, root, "-l", kernel, *extra)
    assert r.code == 255
    assert r.err.count("\n") == 1
    assert calls.file_calls == [] and calls.load_calls == []


def test_not_root_loads_nothing(kexec, root, calls, kernel_path, monkeypatch):
    monkeypatch.setattr(state, "has_cap_sys_boot", lambda: False)
    r = load(kexec, root, "-l", kernel_path)
    assert r.code == 255
    assert r.err.startswith("kexec: loading a kernel needs root (CAP_SYS_BOOT)")
    assert "--dry-run" in r.err
    assert calls.file_calls == []


def test_kexec_load_disabled_sysctl(kexec, root, calls, kernel_path):
    root.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    r = load(kexec, root, "-l", kernel_path)
    assert r.code == 255
    assert "kexec_load_disabled=1" in r.err
    assert calls.file_calls == []


@pytest.mark.parametrize("args,flags", [
    (["-u"], native.KEXEC_FILE_UNLOAD),
    (["-p", "-u"], native.KEXEC_FILE_UNLOAD | native.KEXEC_FILE_ON_CRASH),
])
def test_unload(kexec, root, calls, args, flags):
    r = load(kexec, root, *args)
    assert (r.code, r.err) == (0, "")
    assert calls.file_calls == [{"kernel": None, "initrd": None, "initrd_data": None,
                                 "cmdline": None, "flags": flags}]


def test_unload_falls_back_to_kexec_load_on_enosys(kexec, root, calls):
    calls.errors = [errno.ENOSYS]
    r = load(kexec, root, "-p", "-u")
    assert r.code == 0, r
    assert calls.load_calls == [(0, [], native.KEXEC_ARCH_X86_64 | native.KEXEC_ON_CRASH)]


def test_unload_with_file_syscall_only_fails(kexec, root, calls):
    calls.errors = [errno.ENOSYS]
    r = load(kexec, root, "-s", "-u")
    assert r.code == 255
    assert r.err == "kexec: unloading the default kernel failed: Function not implemented\n"
    assert calls.load_calls == []


# as a subprocess

def test_console_script_dry_run(tmp_path, root, kernel_path, initrd_paths):
    r = subprocess.run([venv_kexec(), "-p", kernel_path, "--initrd", initrd_paths[0],
                        "--reuse-cmdline", "--append", "irqpoll", "--root", str(root),
                        "--dry-run"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "flags=KEXEC_FILE_ON_CRASH) [0x2]" in r.stdout
    assert "cmdline: root=UUID=1234-abcd ro console=ttyS0,115200 quiet irqpoll\n" in r.stdout


def test_console_script_usage_error_exit_status():
    r = subprocess.run([venv_kexec(), "-l", "-e"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "cannot be combined" in r.stderr


@pytest.fixture
def world_files(world_root):
    """A kernel and initrd every user can read, in a world-readable root."""
    kernel = world_root.kernel("/boot/vmlinuz-test")
    initrd = world_root.initrd("/boot/initrd-test.img")
    secret = world_root.kernel("/boot/vmlinuz-private")
    make_tree_readable(world_root.path)
    os.chmod(os.path.dirname(world_root.path), 0o755)
    os.chmod(secret, 0o000)  # unreadable for uid 65534, and for a non-root owner too
    return world_root, kernel, initrd, secret


def run_unprivileged(unprivileged, *args):
    argv, env, preexec = unprivileged
    return subprocess.run(argv + list(args), env=env, cwd="/", preexec_fn=preexec,
                          capture_output=True, text=True, timeout=120)


def test_not_root_load_fails_with_one_line(unprivileged, world_files):
    root, kernel, initrd, _ = world_files
    r = run_unprivileged(unprivileged, "-l", kernel, "--initrd", initrd, "--root", root.path)
    assert r.returncode == 255
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("kexec: loading a kernel needs root (CAP_SYS_BOOT)")


@pytest.mark.parametrize("args", [["-u"], ["-p", "-u"]])
def test_not_root_unload_fails(unprivileged, world_files, args):
    root = world_files[0]
    r = run_unprivileged(unprivileged, *args, "--root", root.path)
    assert r.returncode != 0
    assert "needs root" in r.stderr and r.stderr.count("\n") == 1


def test_not_root_dry_run_works(unprivileged, world_files):
    root, kernel, initrd, _ = world_files
    r = run_unprivileged(unprivileged, "-l", kernel, "--initrd", initrd, "--append", "quiet",
                         "--root", root.path, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "syscall: kexec_file_load(" in r.stdout
    assert "kernel: %s " % kernel in r.stdout
    assert "cmdline: quiet\n" in r.stdout


def test_not_root_unreadable_kernel_names_it(unprivileged, world_files):
    root, _, _, secret = world_files
    r = run_unprivileged(unprivileged, "-l", secret, "--root", root.path, "--dry-run")
    assert r.returncode == 255
    assert r.stderr == "kexec: cannot open kernel %s: Permission denied\n" % secret
