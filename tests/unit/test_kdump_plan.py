"""The capture command line, the resolved plan, the rebuild decision and target checks."""
import json
import os
import subprocess

import pytest

from kexec_py.errors import KexecError
from kexec_py.kdump import capture, config, plan, rebuild, sysconfig, target

from .conftest import RELEASE

CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
apicid\t\t: 4
initial apicid\t: 4

processor\t: 1
apicid\t\t: 6
"""


def sysconf(**values):
    s = sysconfig.Sysconfig(path="/etc/sysconfig/kdump")
    s.values.update(values)
    return s


def watchdog(root, name="watchdog0", modalias="pci:v00008086d000025ABsv00001AF4sd00001100bc08sc80i00"):
    root.write("/sys/class/watchdog/%s/device/modalias" % name, modalias + "\n")
    root.write("/lib/modules/%s/modules.alias" % RELEASE,
               "alias pci:v00008086d000025ABsv*sd*bc*sc*i* i6300esb\n"
               "alias platform:hpwdt hpwdt\n")


# capture command line

def test_rhel_rules_remove_append_apicid_watchdog(root):
    root.write("/proc/cmdline", 'BOOT_IMAGE=(hd0,gpt2)/vmlinuz root=/dev/vda2 ro '
               'crashkernel=1G-4G:192M,4G-:256M quiet hugepages=10 rd.lvm.lv=rhel/root '
               'panic_on_warn=1 empty= console=ttyS0,115200 dyndbg="file a.c +p" slub_debug\n')
    root.write("/proc/cpuinfo", CPUINFO)
    watchdog(root)
    s = sysconf(KDUMP_COMMANDLINE_REMOVE="hugepages quiet slub_debug",
                KDUMP_COMMANDLINE_APPEND="irqpoll nr_cpus=1 reset_devices")
    line = capture.capture_cmdline(s, str(root), RELEASE)
    assert line == ('BOOT_IMAGE=(hd0,gpt2)/vmlinuz ro console=ttyS0,115200 '
                    'dyndbg="file a.c +p" irqpoll nr_cpus=1 reset_devices '
                    'initcall_blacklist=tracer_init_tracefs cgroup.memory=nokmem '
                    'disable_cpu_apicid=4 i6300esb.pretimeout=0 rd.systemd.gpt_auto=no')


def test_kdump_commandline_replaces_proc_cmdline_and_remove_is_for_it_only(root):
    s = sysconf(KDUMP_COMMANDLINE="root=/dev/sda quiet loglevel=7",
                KDUMP_COMMANDLINE_REMOVE="quiet",
                KDUMP_COMMANDLINE_APPEND="quiet nr_cpus=1", KDUMP_COMMANDLINE_EXTRA="")
    line = capture.capture_cmdline(s, str(root), RELEASE)
    # quiet is removed from the inherited part, but APPEND may bring it back
    assert line == ("loglevel=7 quiet nr_cpus=1 initcall_blacklist=tracer_init_tracefs "
                    "cgroup.memory=nokmem rd.systemd.gpt_auto=no")


def test_test_id_hpwdt_and_no_cpuinfo(root):
    root.write("/proc/cmdline", "ro\n")
    watchdog(root, modalias="platform:hpwdt")
    line = capture.capture_cmdline(sysconf(KDUMP_COMMANDLINE_APPEND=""), str(root), RELEASE,
                                   test_id="1700000000-000000001")
    assert line == ("ro initcall_blacklist=tracer_init_tracefs cgroup.memory=nokmem "
                    "kdump_test_id=1700000000-000000001 hpwdt.pretimeout=0 "
                    "hpwdt.kdumptimeout=0 rd.systemd.gpt_auto=no")


def test_default_sysconfig_line(root):
    line = capture.capture_cmdline(sysconfig.Sysconfig(path="x"), str(root), RELEASE)
    words = line.split()
    assert "crashkernel=256M" not in line and "quiet" not in words
    assert "root=UUID=1234-abcd" not in line
    assert words[:3] == ["BOOT_IMAGE=/vmlinuz-%s" % RELEASE, "ro", "console=ttyS0,115200"]
    assert "nr_cpus=1" in words and words[-1] == "rd.systemd.gpt_auto=no"


def test_footprint_parameters_yield_to_the_users(root):
    """initcall_blacklist= and cgroup.memory= are added unless the command line has them
    (the user's value stands) or KDUMP_COMMANDLINE_REMOVE names them."""
    root.write("/proc/cmdline", "ro initcall_blacklist=foo\n")
    line = capture.capture_cmdline(sysconf(KDUMP_COMMANDLINE_APPEND="cgroup.memory=nosocket"),
                                   str(root), RELEASE)
    assert line == "ro initcall_blacklist=foo cgroup.memory=nosocket rd.systemd.gpt_auto=no"
    line = capture.capture_cmdline(sysconf(KDUMP_COMMANDLINE_REMOVE="initcall_blacklist "
                                           "cgroup.memory", KDUMP_COMMANDLINE_APPEND=""),
                                   str(root), RELEASE)
    assert line == "ro rd.systemd.gpt_auto=no"


def test_boot_cpu_apicid_is_processor_0s():
    assert capture.boot_cpu_apicid("/nonexistent") is None


# the plan

def conf(root, text="", sys_text=None):
    root.write("/etc/kdump.conf", text)
    if sys_text is not None:
        root.write("/etc/sysconfig/kdump", sys_text)


def test_plan_resolves_kernel_initrd_cmdline_and_is_json(root):
    conf(root, "path /var/crash\ncore_collector makedumpfile -l --message-level 7 -d 31\n"
               "extra_bins /bin/true\nkdump_post /usr/local/bin/post\n"
               "failure_action shell\n", 'KEXEC_ARGS="-c -d"\n')
    root.write("/etc/kdump/post.d/10-a", "#!/bin/sh\n", mode=0o755)
    root.write("/etc/kdump/post.d/README", "not executable\n")
    p = plan.resolve(str(root))
    d = json.loads(p.to_json())
    assert d["kernel"] == {"version": RELEASE, "path": "/boot/vmlinuz-%s" % RELEASE}
    assert d["initrd"] == "/boot/initramfs-%skdump.img" % RELEASE
    assert d["target"]["kind"] == "rootfs" and d["path"] == "/var/crash"
    assert d["collector"]["program"] == "vmcore-copy"
    assert d["collector"]["dump_level"] == 31
    assert d["failure_action"] == "shell" and d["final_action"] == "reboot"
    assert d["hooks"]["post"] == {"script": "/usr/local/bin/post",
                                  "dir": ["/etc/kdump/post.d/10-a"]}
    assert d["kexec"] == {"mode": "load", "debug": True}
    assert d["cmdline"] == p.cmdline and "nr_cpus=1" in d["cmdline"]
    assert d["extra_bins"] == ["/bin/true"]


def test_plan_for_ssh_adds_F_to_the_default_collector(root):
    conf(root, "ssh kdump@10.0.2.2\n")
    p = plan.resolve(str(root))
    assert p.collector.flattened
    assert p.as_dict()["sshkey"] == "/root/.ssh/kdump_id_rsa"


def test_kver_from_sysconfig_and_rhel5_initrd_name(root):
    conf(root, "", 'KDUMP_KERNELVER="2.6.18-419.el5"\n')
    root.write("/boot/initrd-2.6.18-419.el5.img", "x")
    p = plan.resolve(str(root))
    assert p.kernel_path == "/boot/vmlinuz-2.6.18-419.el5"
    assert p.initrd_path == "/boot/initrd-2.6.18-419.el5kdump.img"


def test_read_only_boot_puts_the_image_in_var_lib_kdump(root, monkeypatch):
    conf(root, "")
    real = os.access
    monkeypatch.setattr(plan.os, "access", lambda p, m: False if p.endswith("/boot")
                        else real(p, m))
    assert plan.resolve(str(root)).initrd_path == \
        "/var/lib/kdump/initramfs-%skdump.img" % RELEASE


def test_kexec_args_unknown_option_warns():
    mode, debug, warnings = plan.kexec_args("-s --noefi")
    assert mode == "file" and not debug and "--noefi" in warnings[0]


# rebuild decision

@pytest.fixture
def built(root):
    """A plan whose image exists and is newer than every input."""
    conf(root, "")
    root.kernel()
    root.write("/etc/fstab", "/dev/vda / ext4 defaults 0 1\n")
    root.write("/lib/modules/%s/modules.dep" % RELEASE,
               "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko\n"
               "kernel/drivers/net/e1000.ko:\n")
    for rel in ("/etc/kdump.conf", "/etc/fstab", "/boot/vmlinuz-%s" % RELEASE,
                "/lib/modules/%s/modules.dep" % RELEASE):
        os.utime(root.p(rel), (1000, 1000))
    image = root.write("/boot/initramfs-%skdump.img" % RELEASE, "image")
    os.utime(image, (2000, 2000))
    return root


def decide(root):
    return rebuild.decide(plan.resolve(str(root)))


def test_up_to_date_image_is_kept(built):
    d = decide(built)
    assert not d and "up to date" in d.reason


def test_missing_image(built):
    os.unlink(built.p("/boot/initramfs-%skdump.img" % RELEASE))
    d = decide(built)
    assert d and d.reason == "No kdump initial ramdisk found."


@pytest.mark.parametrize("rel", ["/etc/kdump.conf", "/etc/fstab", "/boot/vmlinuz-%s" % RELEASE,
                                 "/lib/modules/%s/modules.dep" % RELEASE])
def test_newer_input_rebuilds(built, rel):
    os.utime(built.p(rel), (3000, 3000))
    d = decide(built)
    assert d and rel in d.reason
    assert d.reason.startswith("Detected change(s) in the following file(s): ")


def test_hooks_extra_bins_modules_and_symlink_targets(built):
    built.write("/usr/local/bin/tool", "#!/bin/sh\n", mode=0o755)
    os.utime(built.p("/usr/local/bin/tool"), (1000, 1000))
    built.write("/opt/real-pre", "#!/bin/sh\n", mode=0o755)
    os.utime(built.p("/opt/real-pre"), (1000, 1000))
    os.symlink(built.p("/opt/real-pre"), built.p("/usr/local/bin/pre"))
    os.utime(built.p("/usr/local/bin/pre"), (1000, 1000), follow_symlinks=False)
    conf(built, "extra_bins tool\nkdump_pre /usr/local/bin/pre\nextra_modules e1000\n")
    os.utime(built.p("/etc/kdump.conf"), (1000, 1000))
    built.write("/lib/modules/%s/kernel/drivers/net/e1000.ko" % RELEASE, "ko")
    os.utime(built.p("/lib/modules/%s/kernel/drivers/net/e1000.ko" % RELEASE), (1000, 1000))
    assert not decide(built)
    os.utime(built.p("/opt/real-pre"), (3000, 3000))          # the link's target changed
    assert "/usr/local/bin/pre" in decide(built).reason
    os.utime(built.p("/opt/real-pre"), (1000, 1000))
    os.utime(built.p("/lib/modules/%s/kernel/drivers/net/e1000.ko" % RELEASE), (3000, 3000))
    assert "e1000.ko" in decide(built).reason
    built.write("/etc/kdump/pre.d/01-x", "#!/bin/sh\n", mode=0o755)
    assert "/etc/kdump/pre.d/01-x" in decide(built).reason


def test_force_rebuild_and_force_no_rebuild(built):
    conf(built, "force_rebuild 1\n")
    os.utime(built.p("/etc/kdump.conf"), (1000, 1000))
    assert decide(built).reason.startswith("Force rebuild")
    conf(built, "force_no_rebuild 1\n")
    os.unlink(built.p("/boot/initramfs-%skdump.img" % RELEASE))
    assert not decide(built)


def test_target_change_against_the_manifest(built):
    image = built.p("/boot/initramfs-%skdump.img" % RELEASE)
    with open(rebuild.manifest_path(image), "w") as f:
        json.dump({"target": {"kind": "rootfs", "fstype": "", "spec": "", "mount_point": ""},
                   "modules": ["ext4"]}, f)
    assert not decide(built)
    conf(built, "ext4 LABEL=dumps\n")
    os.utime(built.p("/etc/kdump.conf"), (1000, 1000))
    d = decide(built)
    assert d and "Detected change in File System" in d.reason and "LABEL=dumps" in d.reason


def test_watchdog_missing_from_the_image(built):
    image = built.p("/boot/initramfs-%skdump.img" % RELEASE)
    with open(rebuild.manifest_path(image), "w") as f:
        json.dump({"target": {"kind": "rootfs"}, "modules": ["ext4"]}, f)
    watchdog(built)
    os.utime(built.p("/lib/modules/%s/modules.alias" % RELEASE), (1000, 1000))
    d = decide(built)
    assert d and "i6300esb" in d.reason


# target pre-flight

def local_plan(root, text):
    conf(root, text)
    return plan.resolve(str(root))


def test_rootfs_path_must_exist_and_be_writable(root):
    p = local_plan(root, "path /var/crash\n")
    with pytest.raises(KexecError, match="Dump path /var/crash does not exist."):
        target.preflight(p)
    root.mkdir("/var/crash")
    check = target.preflight(p)
    assert check.save_dir == "/var/crash" and check.mount_point == "/"


def test_label_target_mounted(root):
    root.write("/dev/vdb1", "")
    os.makedirs(root.p("/dev/disk/by-label"))
    os.symlink("../../vdb1", root.p("/dev/disk/by-label/dumps"))
    root.write("/proc/mounts", "/dev/vdb1 /srv/dump\\040x ext4 rw 0 0\n")
    root.mkdir("/srv/dump x/var/crash")
    p = local_plan(root, "ext4 LABEL=dumps\n")
    check = target.preflight(p)
    assert check.mount_point == "/srv/dump x"
    assert check.save_dir == "/srv/dump x/var/crash"
    assert check.device == root.p("/dev/vdb1")


def test_target_neither_mounted_nor_in_fstab(root):
    root.write("/dev/vdb1", "")
    p = local_plan(root, "xfs /dev/vdb1\n")
    with pytest.raises(KexecError, match="neither mounted nor in /etc/fstab"):
        target.preflight(p)
    root.write("/etc/fstab", "# comment\n/dev/vdb1 /dump xfs defaults 0 0\n")
    check = target.preflight(p)
    assert check.mount_point == "/dump" and "not mounted now" in check.warnings[0]
    p = local_plan(root, "ext4 UUID=nope\n")
    with pytest.raises(KexecError, match="not found: no device has that UUID"):
        target.preflight(p)
    # in fstab (nofail) with an empty mount point directory, but no device has the label:
    # the dump could not be saved, so the service does not start
    root.write("/etc/fstab", "LABEL=gone /mnt/kdump ext4 defaults,nofail 0 2\n")
    root.mkdir("/mnt/kdump/var/crash")
    with pytest.raises(KexecError, match="LABEL=gone is not found: no device has that LABEL"):
        target.preflight(local_plan(root, "ext4 LABEL=gone\n"))


def test_free_space_warning(root, monkeypatch):
    root.mkdir("/var/crash")
    root.write("/proc/meminfo", "MemTotal:       %d kB\n" % (1 << 40 >> 10))
    check = target.preflight(local_plan(root, ""))
    assert any("less than the 1048576 MiB of RAM" in w for w in check.warnings)


def test_free_space_is_checked_against_the_predicted_dump_size(root, monkeypatch, tmp_path):
    """Short of RAM, the free space is compared with what vmcore-copy --mem-usage predicts
    from /proc/kcore (here a synthetic kernel's memory) for the configured collector."""
    import shutil
    from collections import namedtuple
    from kexec_py import vmcore
    from tests.unit.test_vmcore_levels import build
    src = build().write(str(tmp_path / "vmcore"))
    root.mkdir("/proc")
    shutil.copy(src, root.p("/proc/kcore"))
    root.mkdir("/var/crash")
    root.write("/proc/meminfo", "MemTotal:       %d kB\n" % (1 << 40 >> 10))
    p = local_plan(root, "core_collector makedumpfile -l --message-level 7 -d 31\n")
    assert target.preflight(p).warnings == []          # 1 TiB of RAM, a 2 MiB dump
    want = vmcore.mem_usage(src).predict(31, compression="lzo")
    Fs = namedtuple("Fs", "f_bavail f_frsize")
    monkeypatch.setattr(target.os, "statvfs", lambda path: Fs(1, 1 << 20))
    warnings = target.preflight(p).warnings
    assert warnings == ["Dump path /var/crash has 1 MiB free, less than the %d MiB predicted "
                        "for the dump (dump level 31, kdump-compressed, lzo): it may not fit"
                        % -(-want >> 20)]
    p = local_plan(root, "core_collector cp\n")          # the whole ELF /proc/vmcore
    assert "(dump level 0, ELF)" in target.preflight(p).warnings[0]
    os.unlink(root.p("/proc/kcore"))
    assert "its size is not predicted: /proc/kcore does not exist" in \
        target.preflight(p).warnings[0]


def test_ssh_checks(root):
    p = local_plan(root, "ssh kdump@10.0.2.2\npath /dumps\n")
    with pytest.raises(KexecError, match="kdumpctl propagate"):
        target.preflight(p)
    root.write("/root/.ssh/kdump_id_rsa", "KEY")
    calls = []

    def ssh(argv, **kw):
        calls.append(argv)
        if len(calls) < 3:
            return subprocess.CompletedProcess(argv, 255, "", "connect: Network unreachable")
        return subprocess.CompletedProcess(argv, 0, "", "")
    check = target.check_ssh(str(root), p.target, "/dumps", p.config.sshkey,
                             retry_seconds=5, run=ssh)
    assert len(calls) == 3 and check.save_dir == "kdump@10.0.2.2:/dumps"
    assert "BatchMode=yes" in calls[0] and "StrictHostKeyChecking=yes" in calls[0]
    assert calls[0][-4:] == ["kdump@10.0.2.2", "mkdir", "-p", "/dumps"]

    def denied(argv, **kw):
        return subprocess.CompletedProcess(argv, 255, "", "Permission denied (publickey).")
    with pytest.raises(KexecError, match='you probably need to run "kdumpctl propagate"'):
        target.check_ssh(str(root), p.target, "/dumps", p.config.sshkey, 5, denied)

    def down(argv, **kw):
        return subprocess.CompletedProcess(argv, 255, "", "No route to host")
    with pytest.raises(KexecError, match="ipaddr is not ready yet"):
        target.check_ssh(str(root), p.target, "/dumps", p.config.sshkey, 0.2, down)


def test_raw_target(root):
    p = local_plan(root, "raw /dev/vdc\ncore_collector makedumpfile -F -l -d 31\n")
    with pytest.raises(KexecError, match="raw partition /dev/vdc not found"):
        target.preflight(p)
    root.write("/dev/vdc", b"\0" * 1024)
    assert target.preflight(p).device == root.p("/dev/vdc")


def test_nfs_unmounted_is_a_warning(root):
    check = target.preflight(local_plan(root, "nfs srv:/export\n"))
    assert "not mounted here" in check.warnings[0]


def test_config_path_in_plan_errors(root):
    conf(root, "core_collector makedumpfile --split\n")
    with pytest.raises(KexecError, match=r"kdump.conf:1: core_collector"):
        plan.resolve(str(root))
    with pytest.raises(KexecError, match="not found"):
        config.load(str(root) + "/nowhere")
