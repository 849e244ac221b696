"""The capture script (packaging/dracut/99kexec-py-kdump/kdump-capture.sh) run on the host
against a synthetic vmcore, with the plan mkdumprd renders.

Nothing is mounted and nothing reboots: KDUMP_NO_MOUNT leaves mount points as plain
directories (or a fake `mount` on PATH decides), KDUMP_ACTION_LOG records the final or
failure action instead of running it, and the C tools are the package's own build. The
script runs under dash (Debian's /bin/sh) and under busybox sh when it is installed.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from kexec_py import vmcore
from kexec_py.kdump import mkdumprd, plan as planmod
from tests import vmcore_synth
from tests.vmcore_synth import Synth

from .conftest import RELEASE

SCRIPT = os.path.join(mkdumprd.SOURCE_MODULE_DIR, "kdump-capture.sh")
SHELLS = [s for s in ("/bin/sh", "/bin/busybox") if os.path.exists(s)]
STAMP_DIR = re.compile(r"^127\.0\.0\.1-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$")


@pytest.fixture(autouse=True)
def host_untouched():
    """The script must write only under the test's directories."""
    before = os.path.exists("/var/lib/kdump/last-dump.json")
    yield
    assert os.path.exists("/var/lib/kdump/last-dump.json") == before, \
        "the capture script wrote the host's /var/lib/kdump"


@pytest.fixture(scope="module")
def vmcore_file(tmp_path_factory):
    s = Synth.standard()
    vmcore_synth.lockless_log(s, [(1000000 * i, b"line %d sysrq triggered crash" % i, 2)
                                  for i in range(5)])
    return s.write(str(tmp_path_factory.mktemp("vmcore") / "vmcore"))


class Capture:
    """A run of the capture script: its directories, plan and environment."""

    def __init__(self, tmp_path, root, shell="/bin/sh"):
        self.tmp = tmp_path
        self.root = root
        self.shell = shell
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for name in ("vmcore-copy", "vmcore-dmesg"):
            os.symlink(vmcore.executable(name), str(self.bin / name))
        self.base = tmp_path / "kdumproot"
        self.actions = tmp_path / "actions"
        self.calls = tmp_path / "calls"
        self.env = {"PATH": "%s:/usr/sbin:/usr/bin:/sbin:/bin" % self.bin,
                    "KDUMP_PLAN": str(tmp_path / "plan.env"),
                    "KDUMP_CMDLINE_FILE": str(tmp_path / "cmdline"),
                    "KDUMP_KMSG": "/dev/null", "KDUMP_MOUNT_BASE": str(self.base),
                    "KDUMP_ACTION_LOG": str(self.actions), "KDUMP_DEVICE_WAIT": "0",
                    "LC_ALL": "C"}
        (tmp_path / "cmdline").write_text("elfcorehdr=0x1000 nr_cpus=1\n")
        self.fake("dmesg", "echo capture kernel log")

    def fake(self, name, body):
        path = self.bin / name
        path.write_text("#!/bin/sh\n%s\n" % body)
        path.chmod(0o755)

    def hook(self, name, body=""):
        path = self.root.write("/hooks/" + name, "#!/bin/sh\necho %s \"$@\" >> %s\n%s\n"
                               % (name, self.calls, body), mode=0o755)
        return path

    def write_plan(self, conf, rootmount=("/dev/kpy-root", "ext4", "defaults")):
        if "core_collector" not in conf:   # -d 31 needs a mem_map the synthetic dump lacks
            conf += "core_collector makedumpfile -l --message-level 7 -d 1\n"
        self.root.write("/etc/kdump.conf", conf)
        p = planmod.resolve(str(self.root))
        env = mkdumprd.plan_env(p, mkdumprd.capture_mount(p) if p.target.kind != "rootfs"
                                else {"spec": rootmount[0], "fstype": rootmount[1],
                                      "options": rootmount[2], "host": ""}, rootmount)
        (self.tmp / "plan.env").write_text(env)
        return p

    def run(self, vmcore_path, **extra):
        env = dict(self.env, KDUMP_VMCORE=str(vmcore_path), **extra)
        argv = [self.shell, "sh", SCRIPT] if self.shell.endswith("busybox") \
            else [self.shell, SCRIPT]
        return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=120)

    def action(self):
        return self.actions.read_text().split() if self.actions.exists() else []

    def dump_dirs(self, path="/var/crash", base=None):
        top = (base or self.base) / path.lstrip("/")
        return sorted(top.iterdir()) if top.exists() else []


@pytest.fixture(params=SHELLS)
def cap(request, tmp_path, root):
    return Capture(tmp_path, root, request.param)


def test_rootfs_dump_saved_with_dmesg_record_and_final_action(cap, vmcore_file):
    cap.write_plan("path /var/crash\ncore_collector makedumpfile -l --message-level 7 -d 1\n"
                   "final_action poweroff\n", rootmount=("/dev/kpy-root", "ext4", "defaults"))
    proc = cap.run(vmcore_file, KDUMP_NO_MOUNT="1")
    assert proc.returncode == 0, proc.stderr
    (d,) = cap.dump_dirs()
    assert STAMP_DIR.match(d.name), d.name
    names = sorted(p.name for p in d.iterdir())
    assert names == ["kdump-result.json", "kexec-dmesg.log", "vmcore", "vmcore-dmesg.txt"]
    assert "line 4 sysrq triggered crash" in (d / "vmcore-dmesg.txt").read_text()
    verify = subprocess.run([vmcore.executable(), "--verify", str(d / "vmcore")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert verify.returncode == 0, verify.stdout
    rec = json.loads((d / "kdump-result.json").read_text())
    assert rec["status"] == "success" and rec["dump_level"] == 1
    assert rec["location"] == "/var/crash/" + d.name
    assert rec["pages"] > 0 and rec["bytes"] == os.path.getsize(str(d / "vmcore"))
    assert rec["stats"]["incomplete"] is False and not rec["fallback"]
    last = json.loads((cap.base / "var/lib/kdump/last-dump.json").read_text())
    assert last == rec
    assert cap.action() == ["poweroff"]


def test_hooks_run_in_order_with_the_status(cap, vmcore_file):
    pre = cap.hook("pre")
    post = cap.hook("post")
    cap.root.write("/etc/kdump/pre.d/10-a", "#!/bin/sh\necho pre.d-a >> %s\n" % cap.calls,
                   mode=0o755)
    cap.root.write("/etc/kdump/post.d/10-b", "#!/bin/sh\necho post.d-b \"$@\" >> %s\n"
                   % cap.calls, mode=0o755)
    cap.write_plan("kdump_pre %s\nkdump_post %s\n" % (pre, post))
    # the plan names hooks by their paths on the machine; here that is under the root
    text = (cap.tmp / "plan.env").read_text().replace("/etc/kdump/", "%s/etc/kdump/"
                                                      % cap.root)
    (cap.tmp / "plan.env").write_text(text)
    proc = cap.run(vmcore_file, KDUMP_NO_MOUNT="1")
    assert proc.returncode == 0, proc.stderr
    assert cap.calls.read_text().split("\n")[:4] == ["pre", "pre.d-a", "post.d-b 0", "post 0"]
    assert cap.action() == ["reboot"]


def test_failing_kdump_pre_runs_final_action_and_saves_nothing(cap, vmcore_file):
    pre = cap.hook("pre", "exit 3")
    cap.write_plan("kdump_pre %s\nfinal_action halt\n" % pre)
    proc = cap.run(vmcore_file, KDUMP_NO_MOUNT="1")
    assert cap.action() == ["halt"]
    assert cap.dump_dirs() == []
    assert "kdump_pre" in proc.stderr


def test_test_id_names_the_directory_and_writes_the_status(cap, vmcore_file):
    cap.write_plan("")
    (cap.tmp / "cmdline").write_text("nr_cpus=1 kdump_test_id=1700000000-000000042\n")
    assert cap.run(vmcore_file, KDUMP_NO_MOUNT="1").returncode == 0
    (d,) = cap.dump_dirs()
    assert d.name == "kdump-test-1700000000-000000042"
    assert (d / "vmcore-creation.status").read_text().strip() == "success"
    assert json.loads((d / "kdump-result.json").read_text())["test_id"] == \
        "1700000000-000000042"


def test_incomplete_dump_stays_incomplete_and_says_so(cap, vmcore_file):
    cap.write_plan("core_collector makedumpfile -l -d 1 -L 256K\nfailure_action poweroff\n")
    cap.run(vmcore_file, KDUMP_NO_MOUNT="1")
    (d,) = cap.dump_dirs()
    names = sorted(p.name for p in d.iterdir())
    assert "vmcore" not in names and "vmcore-incomplete" in names
    rec = json.loads((d / "kdump-result.json").read_text())
    assert rec["status"] == "incomplete" and "incomplete" in rec["message"]
    assert "stopped early: )" not in rec["message"], rec["message"]   # the collector's words
    assert not (d / ".collector.log").exists()
    assert cap.action() == ["poweroff"]


def test_collector_failure_runs_emergency_hooks_then_failure_action(cap, vmcore_file, tmp_path):
    emergency = cap.hook("emergency")
    cap.write_plan("kdump_emergency %s\nfailure_action halt\n" % emergency)
    bad = tmp_path / "not-a-vmcore"
    bad.write_bytes(b"this is not an ELF file" * 100)
    cap.run(bad, KDUMP_NO_MOUNT="1")
    assert cap.calls.read_text().split() == ["emergency"]
    assert cap.action() == ["halt"]
    (d,) = cap.dump_dirs()
    assert not (d / "vmcore").exists() and not (d / "vmcore-incomplete").exists()
    rec = json.loads((d / "kdump-result.json").read_text())
    assert rec["status"] == "failed" and "vmcore-copy exited 1" in rec["message"]
    last = json.loads((cap.base / "var/lib/kdump/last-dump.json").read_text())
    assert last["status"] == "failed"


def test_missing_target_falls_back_to_the_root_fs_and_says_so(tmp_path, root, vmcore_file):
    # the target device never appears; the root "device" is a file, "mounted" by a fake
    # mount on PATH (dash only: busybox sh runs its own mount applet whatever PATH says)
    cap = Capture(tmp_path, root, "/bin/sh")
    rootdev = tmp_path / "rootdev"
    rootdev.write_text("")
    # like mount(8), a second mount of the same mount point fails
    mounted = tmp_path / "mounted"
    cap.fake("mount", 'for a; do last=$a; done\n'
             'grep -qxF "$last" %s 2>/dev/null && { echo "already mounted" >&2; exit 32; }\n'
             'echo "$last" >> %s' % (mounted, mounted))
    cap.write_plan("ext4 /dev/kpy-missing-disk\nfailure_action dump_to_rootfs\n",
                   rootmount=(str(rootdev), "ext4", "defaults"))
    proc = cap.run(vmcore_file)
    assert "did not appear" in proc.stderr
    rootfs = tmp_path / "kdumproot-rootfs"
    (d,) = cap.dump_dirs(base=rootfs)
    assert (d / "vmcore").exists()
    rec = json.loads((rootfs / "var/lib/kdump/last-dump.json").read_text())
    assert rec["status"] == "success" and rec["fallback"] is True
    assert rec["target"] == "ext4 /dev/kpy-missing-disk"
    assert "cannot be mounted either" not in proc.stderr
    assert mounted.read_text().split() == [str(rootfs)]
    assert cap.action() == ["reboot"]


def test_record_says_started_while_the_collector_runs(cap, vmcore_file, tmp_path):
    # a capture that dies half-way must leave a record that is not a finished dump
    seen = tmp_path / "seen.json"
    os.unlink(str(cap.bin / "vmcore-copy"))
    cap.fake("vmcore-copy", 'for a; do out=$a; done\ncat "$(dirname "$out")/kdump-result.json" '
             '"%s/var/lib/kdump/last-dump.json" > %s\nexec %s "$@"'
             % (cap.base, seen, vmcore.executable()))
    cap.write_plan("")
    proc = cap.run(vmcore_file, KDUMP_NO_MOUNT="1")
    assert proc.returncode == 0, proc.stderr
    during = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [r["status"] for r in during] == ["started", "started"]
    assert "did not finish" in during[0]["message"]
    (d,) = cap.dump_dirs()
    assert json.loads((d / "kdump-result.json").read_text())["status"] == "success"


def test_rd_timeout_on_the_capture_command_line_bounds_the_device_wait(tmp_path, root,
                                                                      vmcore_file):
    cap = Capture(tmp_path, root, "/bin/sh")
    del cap.env["KDUMP_DEVICE_WAIT"]
    (tmp_path / "cmdline").write_text("elfcorehdr=0x1000 rd.timeout=1 nr_cpus=1\n")
    cap.write_plan("ext4 /dev/kpy-missing-disk\nfailure_action poweroff\n")
    proc = cap.run(vmcore_file)
    assert "device /dev/kpy-missing-disk did not appear in 1s" in proc.stderr
    assert cap.action() == ["poweroff"]


def test_no_vmcore_is_not_a_capture_kernel(cap, tmp_path):
    cap.write_plan("")
    proc = cap.run(tmp_path / "none")
    assert proc.returncode == 0 and "not a capture kernel" in proc.stderr
    assert cap.action() == []


def test_plan_env_is_shell_and_strips_F_for_local_targets(root):
    root.write("/etc/kdump.conf", "core_collector makedumpfile -F -l -d 31\n"
                                  "extra_bins /bin/true\n")
    p = planmod.resolve(str(root))
    env = mkdumprd.plan_env(p, {"spec": "UUID=ab cd", "fstype": "ext4", "options": "defaults",
                                "host": ""}, ("UUID=ab cd", "ext4", "defaults"))
    out = subprocess.run(["sh", "-c", '. "$0"; echo "$KDUMP_COLLECTOR_OPTS|$KDUMP_ROOT_SPEC|'
                          '$KDUMP_TARGET_KIND|$KDUMP_KERNEL_VERSION"', "/dev/stdin"],
                         input=env, stdout=subprocess.PIPE, universal_newlines=True)
    assert out.stdout.strip() == "-l -d 31|UUID=ab cd|rootfs|%s" % RELEASE


def test_the_dracut_module_mentions_no_interpreter_but_sh():
    for name in os.listdir(mkdumprd.SOURCE_MODULE_DIR):
        with open(os.path.join(mkdumprd.SOURCE_MODULE_DIR, name)) as f:
            text = f.read()
        assert "python" not in text.lower(), name
        if name.endswith((".service", ".target")):
            assert "ExecStart=" not in text or "ExecStart=/bin/sh /sbin/kdump-capture" in text
            continue
        first = text.split("\n", 1)[0]
        assert first in ("#!/bin/sh", "#!/bin/bash"), (name, first)


@pytest.mark.skipif(not shutil.which("dash") and not os.path.exists("/bin/dash"),
                    reason="dash is Debian's /bin/sh; RHEL's is bash")
def test_script_parses_under_dash():
    assert subprocess.run(["dash", "-n", SCRIPT]).returncode == 0


def fake_ssh(cap):
    """An ssh that runs the remote command here (the plan's path is under tmp_path) and
    logs its options; dash only, as for the fake mount."""
    cap.fake("ssh", 'for a; do last=$a; done\necho "$*" >> %s\nexec sh -c "$last"'
             % (cap.tmp / "ssh.log"))
    cap.fake("ip", "exit 1")    # no route lookup here: the plan's address is used


def test_ssh_target_streams_the_flattened_dump(tmp_path, root, vmcore_file):
    cap = Capture(tmp_path, root, "/bin/sh")
    fake_ssh(cap)
    remote = tmp_path / "remote"
    root.write("/root/.ssh/kdump_id_rsa", "KEY")
    cap.write_plan("ssh kdump@10.0.2.2\npath %s\n"
                   "core_collector makedumpfile -F -l --message-level 7 -d 1\n" % remote)
    env = (cap.tmp / "plan.env").read_text() + "KDUMP_NET_ADDR=10.0.2.15/24\n"
    (cap.tmp / "plan.env").write_text(env)
    proc = cap.run(vmcore_file)
    assert proc.returncode == 0, proc.stderr
    (d,) = sorted(remote.iterdir())
    assert re.match(r"^10\.0\.2\.15-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$", d.name), d.name
    names = sorted(p.name for p in d.iterdir())
    assert names == ["kdump-result.json", "kexec-dmesg.log", "vmcore-dmesg.txt", "vmcore.flat"]
    rebuilt = tmp_path / "rebuilt"
    with open(str(d / "vmcore.flat"), "rb") as f:
        subprocess.run([vmcore.executable(), "-R", str(rebuilt)], stdin=f, check=True)
    assert subprocess.run([vmcore.executable(), "--verify", str(rebuilt)],
                          stdout=subprocess.DEVNULL).returncode == 0
    rec = json.loads((d / "kdump-result.json").read_text())
    assert rec["status"] == "success" and rec["pages"] > 0
    assert rec["location"] == str(d)
    log = (cap.tmp / "ssh.log").read_text()
    assert "BatchMode=yes" in log and "StrictHostKeyChecking=yes" in log
    assert "-i /root/.ssh/kdump_id_rsa" in log
    assert cap.action() == ["reboot"]


def test_raw_target_writes_the_stream_over_the_device(tmp_path, root, vmcore_file):
    cap = Capture(tmp_path, root, "/bin/sh")
    device = tmp_path / "rawdev"
    device.write_bytes(b"\xff" * 4096)
    root.mkdir("/var/crash")
    cap.write_plan("raw %s\ncore_collector makedumpfile -F -l -d 1\n" % device)
    proc = cap.run(vmcore_file, KDUMP_NO_MOUNT="1")
    assert proc.returncode == 0, proc.stderr
    assert device.read_bytes()[:16] == b"makedumpfile\0\0\0\0"
    assert cap.action() == ["reboot"]
    # The next `kdumpctl start` in the first kernel: the same bytes as /dev/vdc in a root
    root.write("/dev/vdc", device.read_bytes())
    root.write("/etc/kdump.conf", "raw /dev/vdc\ncore_collector makedumpfile -F -l -d 1\n")
    from kexec_py.kdump import ctl
    import io
    k = ctl.Kdumpctl(root=str(root), out=io.StringIO(), err=io.StringIO())
    k.recover_raw(planmod.resolve(str(root)))
    (d,) = sorted(os.listdir(root.p("/var/crash")))
    assert re.match(r"^\d{4}-\d\d-\d\d-\d\d:\d\d$", d), d
    saved = root.p("/var/crash/%s/vmcore" % d)
    assert subprocess.run([vmcore.executable(), "--verify", saved],
                          stdout=subprocess.DEVNULL).returncode == 0
    assert "Dump saved to /var/crash/%s/vmcore" % d in k.out.getvalue()
    with open(root.p("/dev/vdc"), "rb") as f:
        assert f.read(4096) == b"\0" * 4096          # recovered once only
    k.recover_raw(planmod.resolve(str(root)))
    assert len(os.listdir(root.p("/var/crash"))) == 1
