"""kdumpctl's verbs against temporary roots: messages, exit statuses, the lock, loads.

The syscalls are replaced by recorders (see test_cli_kexec_load.py); every file kdumpctl
reads or writes lives under the test's root, /proc/sysrq-trigger included.
"""
import io
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from kexec_py import native
from kexec_py.cli import kdumpctl
from kexec_py.errors import SyscallError
from kexec_py.kdump import ctl
from kexec_py.load import state

from .conftest import RELEASE
from .test_kdump_bootedit import KB_GRUB_CONF

CONF = "path /var/crash\ncore_collector makedumpfile -l --message-level 7 -d 31\n"


class Recorder:
    def __init__(self):
        self.calls, self.errors = [], []

    def kexec_file_load(self, kernel_fd, initrd_fd, cmdline, flags):
        self.calls.append({"kernel": os.readlink("/proc/self/fd/%d" % kernel_fd)
                           if kernel_fd >= 0 else None,
                           "initrd": os.readlink("/proc/self/fd/%d" % initrd_fd)
                           if initrd_fd >= 0 else None,
                           "cmdline": cmdline, "flags": flags})
        if self.errors:
            raise SyscallError("kexec_file_load", self.errors.pop(0))

    def kexec_load(self, entry, segments, flags):
        self.calls.append({"kexec_load": True, "flags": flags})
        if self.errors:
            raise SyscallError("kexec_load", self.errors.pop(0))


@pytest.fixture
def sys_calls(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(native, "kexec_file_load", rec.kexec_file_load)
    monkeypatch.setattr(native, "kexec_load", rec.kexec_load)
    monkeypatch.setattr(state, "has_cap_sys_boot", lambda: True)
    monkeypatch.setattr(ctl.os, "sync", lambda: None)
    return rec


@pytest.fixture
def kroot(root):
    """A machine with a reserve, kdump.conf, a kernel, a capture image and /var/crash."""
    root.write("/etc/kdump.conf", CONF)
    root.kernel()
    root.write("/boot/initramfs-%skdump.img" % RELEASE, "capture image")
    root.mkdir("/var/crash")
    root.write("/proc/cpuinfo", "processor\t: 0\napicid\t\t: 0\n")
    # kdump.conf and the kernel older than the image: no rebuild
    for rel in ("/etc/kdump.conf", "/boot/vmlinuz-%s" % RELEASE):
        os.utime(root.p(rel), (1000, 1000))
    return root


def run(root, *args, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    try:
        code = kdumpctl.run(list(args) + ["--root", str(root)], out=out, err=err,
                            stdin=io.StringIO(stdin))
    except SystemExit as e:
        code = e.code
    return code, out.getvalue(), err.getvalue()


def test_no_kdump_conf_every_verb_exits_1(root):
    for verb in ("start", "status", "stop", "show-plan", "estimate"):
        code, out, err = run(root, verb)
        assert code == 1, verb
        assert "Error: No kdump config file found!" in err


def test_unknown_verb_prints_usage_and_exits_1(kroot):
    code, out, err = run(kroot, "frobnicate")
    assert code == 1
    assert out.startswith("kdump: Usage: kdumpctl {start|stop|status|")


def test_help_lists_every_verb_and_the_exit_statuses():
    proc = subprocess.run([sys.executable, "-m", "kexec_py.cli.kdumpctl", "--help"],
                          stdout=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0
    for verb in kdumpctl.VERBS:
        assert verb in proc.stdout
    assert "3 not operational" in proc.stdout


def test_status_exit_codes(kroot):
    code, out, _ = run(kroot, "status")
    assert (code, out.splitlines()[0]) == (3, "kdump: Kdump is not operational")
    kroot.write("/sys/kernel/kexec_crash_loaded", "1\n")
    code, out, _ = run(kroot, "status")
    assert (code, out.splitlines()[0]) == (0, "kdump: Kdump is operational")
    os.unlink(kroot.p("/sys/kernel/kexec_crash_loaded"))
    assert run(kroot, "status")[0] == 3


def test_start_loads_with_the_plan(kroot, sys_calls):
    code, out, err = run(kroot, "start")
    assert code == 0, err
    assert "kdump: kexec: loaded kdump kernel" in out
    assert out.rstrip().endswith("kdump: Starting kdump: [OK]") or \
        "kdump: Starting kdump: [OK]" in out
    (call,) = sys_calls.calls
    assert call["kernel"] == kroot.p("/boot/vmlinuz-%s" % RELEASE)
    assert call["initrd"] == kroot.p("/boot/initramfs-%skdump.img" % RELEASE)
    assert call["flags"] & native.KEXEC_FILE_ON_CRASH
    plan = json.loads(run(kroot, "show-plan")[1])
    assert call["cmdline"] == plan["cmdline"].encode()
    assert b"nr_cpus=1" in call["cmdline"] and b"crashkernel" not in call["cmdline"]


def test_start_when_loaded_warns_and_exits_0(kroot, sys_calls):
    kroot.write("/sys/kernel/kexec_crash_loaded", "1\n")
    code, out, err = run(kroot, "start")
    assert code == 0 and "Kdump already running: [WARNING]" in err
    assert sys_calls.calls == []


def test_start_without_reserve_says_why(kroot, sys_calls):
    kroot.no_crash_reserve()
    kroot.write("/proc/cmdline", "ro quiet\n")
    code, out, err = run(kroot, "start")
    assert code == 1
    assert "crashkernel=" in err
    assert err.rstrip().endswith("kdump: Starting kdump: [FAILED]")
    assert sys_calls.calls == []


def test_start_with_invalid_config_names_file_and_line(kroot, sys_calls):
    kroot.write("/etc/kdump.conf", "path /var/crash\nbogus 1\n")
    code, out, err = run(kroot, "start")
    assert code == 1
    assert "etc/kdump.conf:2: Invalid kdump config option bogus" in err
    code, out, err = run(kroot, "show-plan")
    assert code == 1 and "Invalid kdump config option bogus" in err and out == ""


def test_start_rebuilds_when_needed_and_reports_a_failed_build(kroot, sys_calls, monkeypatch):
    from kexec_py.kdump import mkdumprd
    built = []

    def build(plan, image=None, force=True, out=None):
        built.append(plan.initrd_path)
        kroot.write(plan.initrd_path, "rebuilt image")
    monkeypatch.setattr(mkdumprd, "build", build)
    os.utime(kroot.p("/etc/kdump.conf"), None)   # newer than the image
    code, out, err = run(kroot, "start")
    assert code == 0, err
    assert "Detected change(s) in the following file(s): /etc/kdump.conf" in out
    assert "kdump: Rebuilding /boot/initramfs-%skdump.img" % RELEASE in out
    assert built == ["/boot/initramfs-%skdump.img" % RELEASE]
    assert len(sys_calls.calls) == 1

    def fail(plan, image=None, force=True, out=None):
        raise mkdumprd.MkdumprdError("dracut is not installed")
    monkeypatch.setattr(mkdumprd, "build", fail)
    kroot.write("/sys/kernel/kexec_crash_loaded", "0\n")
    code, out, err = run(kroot, "rebuild")
    assert code == 1
    assert "dracut is not installed" in err and "mkdumprd: failed to make kdump initrd" in err


@pytest.mark.parametrize("err_no,words", [
    (129, "signature check failed"),        # EKEYREJECTED
    (1, "lockdown"),                         # EPERM
])
def test_load_refusals_are_named(kroot, sys_calls, err_no, words):
    sys_calls.errors = [err_no]
    code, out, err = run(kroot, "start")
    assert code == 1
    assert words in err
    assert "kdump: kexec: failed to load kdump kernel" in err


def test_kexec_load_disabled_is_named(kroot, sys_calls):
    kroot.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    code, out, err = run(kroot, "start")
    assert code == 1 and "kexec_load_disabled" in err


def test_secure_boot_forces_kexec_file_load(kroot, sys_calls):
    kroot.write("/etc/sysconfig/kdump", 'KEXEC_ARGS="-c"\n')
    guid = ctl.EFI_GLOBAL
    kroot.write("/sys/firmware/efi/efivars/SecureBoot-%s" % guid, b"\x06\0\0\0\x01")
    kroot.write("/sys/firmware/efi/efivars/SetupMode-%s" % guid, b"\x06\0\0\0\x00")
    code, out, err = run(kroot, "start")
    assert code == 0, err
    assert "Secure Boot is enforced" in out
    assert "kexec_load" not in sys_calls.calls[0]


def test_stop_unloads(kroot, sys_calls):
    kroot.write("/sys/kernel/kexec_crash_loaded", "1\n")
    code, out, err = run(kroot, "stop")
    assert code == 0
    assert "kdump: kexec: unloaded kdump kernel" in out and "Stopping kdump: [OK]" in out
    assert sys_calls.calls[0]["flags"] & native.KEXEC_FILE_UNLOAD


def test_reload_does_not_rebuild(kroot, sys_calls):
    os.utime(kroot.p("/etc/kdump.conf"), None)   # would trigger a rebuild on start
    kroot.write("/sys/kernel/kexec_crash_loaded", "1\n")
    code, out, err = run(kroot, "reload")
    assert code == 0, err
    assert [bool(c["flags"] & native.KEXEC_FILE_UNLOAD) for c in sys_calls.calls] == \
        [True, False]


def test_dry_run_start_prints_the_syscall_and_loads_nothing(kroot, monkeypatch):
    monkeypatch.setattr(state, "has_cap_sys_boot", lambda: False)
    code, out, err = run(kroot, "start", "--dry-run")
    assert code == 0, err
    assert "syscall: kexec_file_load" in out and "KEXEC_FILE_ON_CRASH" in out
    os.utime(kroot.p("/etc/kdump.conf"), None)   # a rebuild is due: only said, not done
    code, out, err = run(kroot, "start", "--dry-run")
    assert code == 0, err
    assert "--dry-run: would rebuild" in out


def test_lock_makes_a_second_instance_wait(kroot):
    path = kroot.p(ctl.LOCK_PATH)
    first = ctl.Kdumpctl(root=str(kroot), out=io.StringIO())
    second_out = io.StringIO()
    second = ctl.Kdumpctl(root=str(kroot), out=second_out)
    order = []
    with first.lock():
        assert os.path.exists(path)

        def other():
            with second.lock():
                order.append("second")
        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"]
    assert "Another app is currently holding the kdump lock; waiting for it to exit..." in \
        second_out.getvalue()


def test_test_verb_records_pending_id_reloads_with_it_and_crashes(kroot, sys_calls):
    code, out, err = run(kroot, "test", "--force")
    assert code == 1 and "Kdump needs be operational before test." in err
    kroot.write("/sys/kernel/kexec_crash_loaded", "1\n")
    code, out, err = run(kroot, "test", stdin="n\n")
    assert code == 0 and "Operation cancelled." in out
    assert not os.path.exists(kroot.p("/proc/sysrq-trigger"))
    code, out, err = run(kroot, "test", "--force", "--dry-run")
    assert code == 0 and "--dry-run: would reload" in out
    assert not os.path.exists(kroot.p("/proc/sysrq-trigger")) and sys_calls.calls == []
    code, out, err = run(kroot, "test", stdin="y\n")
    assert code == 0, err
    assert "DANGER!!! Will perform a kdump test by crashing the system" in out
    assert kroot.read("/proc/sysrq-trigger") == "c"
    status = kroot.read(ctl.STATUS_PATH).split()
    assert status[0] == "pending" and status[1].startswith("kdump_test_id=")
    test_id = status[1].split("=", 1)[1]
    load = [c for c in sys_calls.calls if not c["flags"] & native.KEXEC_FILE_UNLOAD][-1]
    assert ("kdump_test_id=%s" % test_id).encode() in load["cmdline"]
    # After the reboot: no dump yet -> fail; with the capture's record -> success.
    code, out, err = run(kroot, "status")
    assert "Last NOT successful vmcore creation test" in err
    kroot.write(ctl.STATUS_PATH, "pending kdump_test_id=%s\n" % test_id)
    kroot.write("/var/crash/kdump-test-%s/vmcore-creation.status" % test_id, "success\n")
    code, out, err = run(kroot, "status")
    assert "Notice: Last successful vmcore creation test on" in out
    assert kroot.read(ctl.STATUS_PATH).startswith("success ")


def test_status_reports_the_last_dump_and_fallbacks_loudly(kroot):
    code, out, err = run(kroot, "status")
    assert "No vmcore creation test performed!" in err
    record = {"status": "success", "location": "/var/crash/127.0.0.1-2026-12-01-10:00:00",
              "time": "2026-12-01 10:00:00", "pages": 1000, "bytes": 4096000,
              "seconds": 3.5, "dump_level": 31}
    kroot.write(ctl.RESULT_PATH, json.dumps(record))
    code, out, err = run(kroot, "status")
    assert "Last dump: saved /var/crash/127.0.0.1-2026-12-01-10:00:00" in out
    record.update(fallback=True, target="nfs srv:/export")
    kroot.write(ctl.RESULT_PATH, json.dumps(record))
    code, out, err = run(kroot, "status")
    assert "did NOT reach the configured target nfs srv:/export" in err
    record.update(status="failed", message="vmcore-copy: No space left on device")
    kroot.write(ctl.RESULT_PATH, json.dumps(record))
    assert "FAILED: vmcore-copy: No space left on device" in run(kroot, "status")[2]
    record.update(status="incomplete", message="the dump is incomplete (ENOSPC)")
    kroot.write(ctl.RESULT_PATH, json.dumps(record))
    assert ("is INCOMPLETE: the dump is incomplete (ENOSPC). The part that was written is "
            "kept as /var/crash/127.0.0.1-2026-12-01-10:00:00/vmcore-incomplete"
            in run(kroot, "status")[2])
    record.update(status="started")
    kroot.write(ctl.RESULT_PATH, json.dumps(record))
    assert "never finished" in run(kroot, "status")[2]
    kroot.write(ctl.RESULT_PATH, "not json")
    assert "not a valid dump record" in run(kroot, "status")[2]
    kroot.write("/etc/sysconfig/kdump", 'VMCORE_CREATION_NOTIFICATION=""\n')
    assert "No vmcore creation test performed!" not in run(kroot, "status")[2]


def test_propagate(kroot, monkeypatch):
    code, out, err = run(kroot, "propagate")
    assert code == 1 and "No ssh destination defined" in err
    kroot.write("/etc/kdump.conf", "ssh kdump@10.0.2.2\n")
    calls = []

    def fake(argv, **kw):
        calls.append(argv)
        if argv[0] == "ssh-keygen":
            with open(argv[argv.index("-f") + 1], "w") as f:
                f.write("KEY")
        return subprocess.CompletedProcess(argv, 0)
    c = ctl.Kdumpctl(root=str(kroot), out=io.StringIO(), err=io.StringIO())
    assert c.propagate(run=fake) == 0
    assert [a[0] for a in calls] == ["ssh-keygen", "ssh-copy-id"]
    assert "has been added to ~kdump/.ssh/authorized_keys on 10.0.2.2" in c.out.getvalue()
    calls.clear()
    c.propagate(run=fake)
    assert [a[0] for a in calls] == ["ssh-copy-id"]
    assert "Using existing keys..." in c.out.getvalue()


def test_install_hook_resets_only_when_enabled_and_auto(kroot, monkeypatch):
    seen = []
    monkeypatch.setattr(ctl.Kdumpctl, "reset_crashkernel",
                        lambda self, kernel="DEFAULT": seen.append(kernel) or 0)
    verb = "_reset-crashkernel-for-installed-kernel"
    assert run(kroot, verb, "6.2.0")[0] == 0 and seen == []        # not enabled
    os.makedirs(kroot.p("/etc/systemd/system/multi-user.target.wants"))
    os.symlink("/usr/lib/systemd/system/kdump.service",
               kroot.p(ctl.SERVICE_WANTS[0]))
    assert run(kroot, verb, "6.2.0")[0] == 0 and seen == ["/boot/vmlinuz-6.2.0"]
    assert run(kroot, "_reset-crashkernel-for-installed_kernel", "6.2.1")[0] == 0   # RHEL's
    assert seen[-1] == "/boot/vmlinuz-6.2.1"
    seen[1:] = []
    kroot.write("/etc/kdump.conf", CONF + "auto_reset_crashkernel no\n")
    assert run(kroot, verb, "6.3.0")[0] == 0 and seen == ["/boot/vmlinuz-6.2.0"]
    assert run(kroot, verb)[0] == 1


def test_sysv_enabled_counts_too(kroot):
    assert not ctl.service_enabled(str(kroot))
    kroot.mkdir("/etc/rc.d/rc3.d")
    os.symlink("../init.d/kdump", kroot.p("/etc/rc.d/rc3.d/S20kdump"))
    assert ctl.service_enabled(str(kroot))




def test_get_default_crashkernel_prints_the_expression_without_newline(kroot):
    kroot.write("/etc/os-release", 'ID="rhel"\nVERSION_ID="9.4"\n')
    code, out, err = run(kroot, "get-default-crashkernel")
    assert (code, out) == (0, "1G-4G:192M,4G-64G:256M,64G-:512M")
    kroot.write("/etc/os-release", 'ID="rhel"\nVERSION_ID="10.0"\n')
    assert run(kroot, "get-default-crashkernel")[1] == "2G-64G:256M,64G-:512M"


def test_reset_crashkernel_on_the_knowledge_base_grub_conf(kroot):
    kroot.write("/etc/os-release", 'ID="rhel"\nVERSION_ID="9.4"\n')
    kroot.write("/boot/grub/grub.conf", KB_GRUB_CONF)
    code, out, err = run(kroot, "reset-crashkernel", "--kernel=ALL", "--dry-run")
    assert code == 0, err
    assert "-        kernel /vmlinuz-2.6.17-1.2519.4.21.el5 ro root=LABEL=/ rhgb quiet " \
        "crashkernel=128M@16M" in out
    assert "+        kernel /vmlinuz-2.6.17-1.2519.4.21.el5 ro root=LABEL=/ rhgb quiet " \
        "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M" in out
    assert kroot.read("/boot/grub/grub.conf") == KB_GRUB_CONF
    code, out, err = run(kroot, "reset-crashkernel", "--kernel=ALL")
    assert code == 0, err
    assert "Updated crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M" in out
    assert "Please reboot the system" in err
    new = kroot.read("/boot/grub/grub.conf")
    assert new == KB_GRUB_CONF.replace("crashkernel=128M@16M",
                                       "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M")
    assert kroot.read("/boot/grub/grub.conf.kdump-bak") == KB_GRUB_CONF
    code, out, err = run(kroot, "reset-crashkernel", "--kernel=ALL")
    assert code == 0 and "No need to update crashkernel value" in out
    assert kroot.read("/boot/grub/grub.conf") == new


def test_estimate_predicts_the_dump_from_kcore(kroot, tmp_path):
    """`kdumpctl estimate` ends with the size vmcore-copy --mem-usage predicts for the
    configured collector, from the running system's /proc/kcore."""
    import shutil
    from kexec_py import vmcore
    from tests.unit.test_vmcore_levels import build
    src = build().write(str(tmp_path / "vmcore"))
    shutil.copy(src, kroot.p("/proc/kcore"))
    code, out, err = run(kroot, "estimate")
    assert code == 0, err
    want = -(-vmcore.mem_usage(src).predict(31, compression="lzo") // (1 << 20))
    last = out.splitlines()[-1]
    assert last.startswith("Predicted dump size: %dM (dump level 31, kdump-compressed, lzo; "
                           "vmcore-copy --mem-usage /proc/kcore in " % want), last


def test_reset_crashkernel_bad_kernel_is_one_line(kroot):
    kroot.write("/boot/grub/grub.conf", KB_GRUB_CONF)
    code, out, err = run(kroot, "reset-crashkernel", "--kernel=/boot/vmlinuz-nope")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Invalid --kernel" in err


def test_showmem_and_estimate(kroot):
    code, out, err = run(kroot, "showmem")
    assert code == 0 and out == "kdump: Reserved 384MB memory for crash kernel\n"
    kroot.write("/proc/modules", "ext4 1048576 1 - Live 0x0\nvirtio_blk 20480 2 - Live 0x0\n")
    code, out, err = run(kroot, "estimate")
    assert code == 0, err
    lines = out.splitlines()
    assert any(l.startswith("Reserved crashkernel:    384M") for l in lines)
    assert any(l.startswith("Recommended crashkernel: ") for l in lines)
    assert any(l.startswith("Kernel image size:   ") for l in lines)
    assert any(l.startswith("Initramfs size:      ") for l in lines)
    assert lines[-1] == "Predicted dump size: unknown (/proc/kcore does not exist)"
    kroot.no_crash_reserve()
    code, out, err = run(kroot, "showmem")
    assert code == 0 and "No memory reserved for crash kernel" in out
