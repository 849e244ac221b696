"""kdumpctl in a real kernel: start/status/stop, the capture command line, and the
knowledge base's crashkernel=128M@16M failing for a reason kdumpctl names.

The guest runs kdumpctl from the project's venv with --root pointing at a tree in the
test's output directory that holds /etc/kdump.conf, /etc/sysconfig/kdump, /boot (the
VM kernel and, with force_no_rebuild 1, the harness initramfs as the capture initrd) and
/var/crash; the guest's real /proc, /sys and /dev are bind-mounted into it.
"""
import os
import re
import shlex

from kexec_py.kdump import capture, sysconfig

CAPTURE_APPEND = sysconfig.DEFAULTS["KDUMP_COMMANDLINE_APPEND"]


def q(s):
    return shlex.quote(s)


def make_root(vm, kernel, next_stage, conf="path /var/crash\nforce_no_rebuild 1\n"):
    """The --root tree; the capture kernel runs harness stage next_stage."""
    root = vm.path("root")
    for d in ("etc/sysconfig", "boot", "var/crash", "proc", "sys", "dev", "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, "etc/kdump.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(root, "etc/sysconfig/kdump"), "w") as f:
        f.write('KDUMP_COMMANDLINE_REMOVE="%s kpy.stage"\n'
                % sysconfig.DEFAULTS["KDUMP_COMMANDLINE_REMOVE"])
        f.write('KDUMP_COMMANDLINE_APPEND="%s kpy.stage=%d"\n' % (CAPTURE_APPEND, next_stage))
    os.symlink(kernel.vmlinuz, os.path.join(root, "boot", "vmlinuz-" + kernel.release))
    os.symlink(vm.initrd, os.path.join(root, "boot", "initramfs-%skdump.img" % kernel.release))
    return root


MOUNTS = """
R=%(root)s
for d in proc sys dev; do mount --bind /$d "$R/$d" || exit 1; done
mount -t tmpfs tmpfs "$R/run" || exit 1
k() { kdumpctl --root "$R" "$@"; }
"""


def run_rc(name, cmd):
    """sh lines: run cmd, keep its output in NAME.out and its status in NAME.rc."""
    return "%s > %s.out 2>&1; echo $? > %s.rc\n" % (cmd, name, name)


def test_start_status_stop_and_the_capture_command_line(vm, vm_kernel):
    """Scenario 8b: start loads with exactly the predicted command line; status 0;
    stop unloads, status 3; start again and a crash boots the capture kernel."""
    root = make_root(vm, vm_kernel, next_stage=2)
    body = MOUNTS % {"root": q(root)}
    body += run_rc("status0", "k status")
    body += run_rc("start1", "k start")
    body += "cat /sys/kernel/kexec_crash_loaded > loaded.1\n"
    body += run_rc("start2", "k start")
    body += run_rc("status1", "k status")
    body += run_rc("stop", "k stop")
    body += "cat /sys/kernel/kexec_crash_loaded > loaded.2\n"
    body += run_rc("status2", "k status")
    body += "k show-plan > plan.json || exit 1\n"
    body += "cat /proc/cpuinfo > cpuinfo.1\n"
    body += run_rc("start3", "k start")
    body += "[ \"$(cat /sys/kernel/kexec_crash_loaded)\" = 1 ] || exit 1\n"
    body += "sync\necho c > /proc/sysrq-trigger\nsleep 30\nexit 1\n"
    vm.stage(1, body)
    vm.stage(2, "test -e /proc/vmcore && result vmcore yes")
    vm.boot("crashkernel=160M")

    def rc(name):
        text = vm.read(name + ".rc")
        vm.expect(text is not None, "%s never ran" % name)
        return int(text)

    out = lambda name: vm.read(name + ".out", "")  # noqa: E731
    vm.expect(rc("status0") == 3 and "Kdump is not operational" in out("status0"),
              "status before start: %r" % out("status0"))
    vm.expect(rc("start1") == 0, "kdumpctl start failed: %s" % out("start1"))
    for line in ("kdump: force_no_rebuild is set", "kdump: kexec: loaded kdump kernel",
                 "kdump: Starting kdump: [OK]"):
        vm.expect(line in out("start1"), "%r not in start output:\n%s" % (line, out("start1")))
    vm.expect(vm.read("loaded.1", "").strip() == "1", "kexec_crash_loaded is not 1 after start")
    vm.expect(rc("start2") == 0 and "Kdump already running: [WARNING]" in out("start2"),
              "start when loaded: %s" % out("start2"))
    vm.expect(rc("status1") == 0 and "Kdump is operational" in out("status1"),
              "status after start: %s" % out("status1"))
    vm.expect(rc("stop") == 0 and "Stopping kdump: [OK]" in out("stop"),
              "stop: %s" % out("stop"))
    vm.expect(vm.read("loaded.2", "").strip() == "0", "stop did not unload")
    vm.expect(rc("status2") == 3, "status after stop exited %d" % rc("status2"))
    vm.expect(rc("start3") == 0, "second start failed: %s" % out("start3"))
    vm.expect(vm.read("result.vmcore") == "yes\n", "the capture kernel did not run stage 2")

    # The command line item 4 predicts, written out by hand from the first kernel's.
    first = vm.read("cmdline.1").split()
    inherited = [w for w in first if w.split("=")[0] not in ("crashkernel", "kpy.stage")]
    apicid = re.search(r"^processor\s*:\s*0\n(?:.*\n)*?apicid\s*:\s*(\d+)",
                       vm.read("cpuinfo.1"), re.M).group(1)
    footprint = ["%s=%s" % kv for kv in capture.FOOTPRINT_PARAMS]
    expected = " ".join(inherited + [CAPTURE_APPEND, "kpy.stage=2"] + footprint +
                        ["disable_cpu_apicid=%s" % apicid, "rd.systemd.gpt_auto=no"])
    import json
    plan = json.loads(vm.read("plan.json"))
    vm.expect(plan["cmdline"] == expected, "show-plan cmdline %r != %r"
              % (plan["cmdline"], expected))
    got = vm.read("cmdline.2", "").strip()
    got = re.sub(r"^elfcorehdr=0x[0-9a-f]+ ", "", got)  # kexec_file_load puts it in front
    vm.expect(got == expected, "capture kernel's /proc/cmdline\n%r\n!= predicted\n%r"
              % (got, expected))


def test_knowledge_base_fixed_offset_and_no_reserve_fail_with_the_reason(vm, vm_kernel):
    """crashkernel=128M@16M with nokaslr: the kernel itself sits at 16M, nothing is
    reserved, and start says why (exit 1); then, kexec'd into a kernel with no
    crashkernel=, start fails again and says crashkernel= is missing."""
    root = make_root(vm, vm_kernel, next_stage=9)
    body = MOUNTS % {"root": q(root)}
    body += run_rc("kb", "k start")
    body += run_rc("kbstatus", "k status")
    body += "cat /proc/iomem > iomem.1\ndmesg > dmesg.1\n"
    body += ("kexec -s -l %s --initrd=%s --append=%s || exit 1\nkexec -e\nexit 1\n"
             % (q(vm_kernel.vmlinuz), q(vm.initrd), q(vm.cmdline(2))))
    vm.stage(1, body)
    vm.stage(2, MOUNTS % {"root": q(root)} + run_rc("none", "k start") + "exit 0\n")
    vm.boot("crashkernel=128M@16M nokaslr")
    vm.expect("crashkernel reservation failed" in vm.read("dmesg.1", ""),
              "the guest kernel reserved 128M@16M after all; dmesg:\n%s"
              % "\n".join(l for l in vm.read("dmesg.1", "").splitlines() if "crash" in l))
    kernel_code = [l for l in vm.read("iomem.1", "").splitlines() if "Kernel code" in l]
    vm.expect(kernel_code and kernel_code[0].strip().startswith("01000000-"),
              "the kernel does not sit at 16M: %s" % kernel_code)
    kb = vm.read("kb.out", "")
    vm.expect(vm.read("kb.rc", "").strip() == "1", "start with 128M@16M exited %s"
              % vm.read("kb.rc"))
    for words in ("crashkernel=128M@16M", "Kernel code", "Starting kdump: [FAILED]"):
        vm.expect(words in kb, "%r not in start's output:\n%s" % (words, kb))
    vm.expect(vm.read("kbstatus.rc", "").strip() == "3", "status exited %s"
              % vm.read("kbstatus.rc"))
    none = vm.read("none.out", "")
    vm.expect(vm.read("none.rc", "").strip() == "1", "start without crashkernel= exited %s"
              % vm.read("none.rc"))
    vm.expect("crashkernel=" in none and "Starting kdump: [FAILED]" in none,
              "start without a reserve:\n%s" % none)
    vm.expect("128M@16M" not in none, "the second kernel still had the old parameter")
