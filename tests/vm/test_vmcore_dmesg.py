"""vmcore-dmesg on a real crash: a guest logs a marker (with bytes that need escaping)
through /dev/kmsg, loads a capture kernel and crashes. The capture kernel runs our
vmcore-dmesg and Debian's on /proc/vmcore, saves a plain copy of it and our
kdump-compressed -d 31 dump of it. On the host: our output equals Debian's line for line
on /proc/vmcore and on the saved ELF vmcore, and our output on the kdump-compressed dump
(which Debian's vmcore-dmesg cannot read) is the same text."""
import os
import secrets
import shlex
import subprocess

from kexec_py import vmcore

PEER = "/usr/sbin/vmcore-dmesg"
DUMP_LEVEL = 31


def q(s):
    return shlex.quote(str(s))


def test_vmcore_dmesg_matches_kexec_tools(vm, vm_kernel):
    assert os.access(PEER, os.X_OK), "kexec-tools' vmcore-dmesg is missing: make test installs it"
    marker = "kpy-dmesg-%s" % secrets.token_hex(8)
    cmdline = vm.cmdline(2, "irqpoll nr_cpus=1 reset_devices")
    vm.stage(1, r"""
printf '%(marker)s bell\007 tab\t high\351 end\n' > /dev/kmsg
kexec -s -p %(kernel)s --initrd=%(initrd)s --append=%(cmdline)s || { echo load failed; exit 1; }
sync
echo c > /proc/sysrq-trigger
""" % {"marker": marker, "kernel": q(vm_kernel.vmlinuz), "initrd": q(vm.initrd),
       "cmdline": q(cmdline)})
    vm.stage(2, """
%(ours)s /proc/vmcore > "$OUT/ours.proc"; result ours $?
%(peer)s /proc/vmcore > "$OUT/peer.proc"; result peer $?
%(copy)s -l -d %(level)d --message-level 0 /proc/vmcore "$OUT/dump.kdump"; result copy $?
cp /proc/vmcore "$OUT/vmcore.raw"; result raw $?
""" % {"ours": q(vmcore.executable("vmcore-dmesg")), "peer": PEER,
       "copy": q(vmcore.executable()), "level": DUMP_LEVEL})
    vm.boot(extra_cmdline="crashkernel=160M")
    for name in ("ours", "peer", "copy", "raw"):
        vm.expect(vm.read("result." + name, "").strip() == "0",
                  "capture kernel: %s exited %r" % (name, vm.read("result." + name)))
    peer_proc = vm.read("peer.proc")
    assert vm.read("ours.proc") == peer_proc
    lines = [ln for ln in peer_proc.splitlines() if marker in ln]
    assert len(lines) == 1 and lines[0].endswith(
        "%s bell\\x07 tab\t high\\xe9 end" % marker), lines
    assert "sysrq: Trigger a crash" in peer_proc
    raw, dump = vm.path("vmcore.raw"), vm.path("dump.kdump")
    peer_raw = subprocess.run([PEER, raw], stdout=subprocess.PIPE, check=True).stdout.decode()
    ours_raw = subprocess.run([vmcore.executable("vmcore-dmesg"), raw], stdout=subprocess.PIPE,
                              check=True).stdout.decode()
    assert ours_raw == peer_raw == peer_proc
    assert vmcore.dmesg(raw) == peer_raw
    with vmcore.open(dump) as d:
        assert d.dump_level == DUMP_LEVEL and d.format == "kdump"
        assert d.dmesg() == peer_raw
    ours_dump = subprocess.run([vmcore.executable("vmcore-dmesg"), dump],
                               stdout=subprocess.PIPE, check=True).stdout.decode()
    assert ours_dump == peer_raw
    os.unlink(raw)
