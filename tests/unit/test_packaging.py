"""What packaging/ ships: kdump.conf, the sysconfig, the systemd unit, the SysV init
script, the kernel-install hooks and the udev throttler.

The scripts run against temporary roots with a fake kdumpctl that records its arguments;
nothing here touches the host's /etc, /boot or systemd.
"""
import fcntl
import os
import re
import shutil
import subprocess
import textwrap

import pytest

from kexec_py.kdump import collector, config, sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGING = os.path.join(os.path.dirname(os.path.dirname(HERE)), "packaging")
# The init script and hooks are POSIX sh: run them with dash where it exists (it is
# what /bin/sh is on Debian, and it has no bash extensions).
SH = shutil.which("dash") or "/bin/sh"


def _read(name):
    with open(os.path.join(PACKAGING, name)) as f:
        return f.read()


# --- kdump.conf ---------------------------------------------------------------------

def test_kdump_conf_active_lines_are_the_shipped_defaults():
    text = _read("kdump.conf")
    active = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert active == ["auto_reset_crashkernel yes", "path /var/crash",
                      "core_collector makedumpfile -l --message-level 7 -d 31"]
    cfg = config.parse(text, "/etc/kdump.conf", root="/nonexistent")
    assert cfg.dump_path == config.DEFAULT_PATH
    assert cfg.core_collector == config.DEFAULT_COLLECTOR
    assert cfg.auto_reset_crashkernel
    assert cfg.warnings == []


def test_kdump_conf_documents_every_key_and_hook_directory():
    comments = "\n".join(line for line in _read("kdump.conf").splitlines()
                         if line.startswith("#"))
    for key in config.PLAIN_KEYS + ("raw", "nfs", "ssh", "<fstype>"):
        assert re.search(r"^# %s(?=\s|$)" % re.escape(key), comments, re.M), key
    for fstype in config.FS_TARGETS:
        assert fstype in comments, fstype
    for directory in config.HOOK_DIRS.values():
        assert directory in comments
    for word in ("LABEL=", "UUID=", "--mount", "-F", "vmcore-copy"):
        assert word in comments, word


def _examples():
    """The commented example lines at the end of kdump.conf: `#key value`."""
    text = _read("kdump.conf")
    tail = text[text.index("# Examples"):]
    return [line[1:] for line in tail.splitlines() if re.match(r"#[a-z]", line)]


@pytest.mark.parametrize("example", _examples())
def test_each_kdump_conf_example_is_valid_when_uncommented(example, tmp_path):
    key = example.split()[0]
    base = {"auto_reset_crashkernel": "yes", "path": "/var/crash",
            "core_collector": "makedumpfile -l --message-level 7 -d 31"}
    base.pop(key, None)
    text = "".join("%s %s\n" % kv for kv in base.items()) + example + "\n"
    cfg = config.parse(text, "/etc/kdump.conf", root=str(tmp_path))
    if key == "core_collector":
        flat = "-F" in cfg.core_collector
        collector.parse(cfg.core_collector, network_or_raw=flat)


def test_kdump_conf_examples_cover_the_targets():
    keys = {e.split()[0] for e in _examples()}
    assert {"raw", "nfs", "ssh", "sshkey", "xfs", "ext4", "virtiofs"} <= keys
    assert set(config.PLAIN_KEYS) <= keys | {"path", "auto_reset_crashkernel"}


# --- /etc/sysconfig/kdump -------------------------------------------------------------

def test_sysconfig_holds_the_x86_64_defaults():
    cfg = sysconfig.parse(_read("kdump.sysconfig"), "/etc/sysconfig/kdump")
    for key in ("KDUMP_KERNELVER", "KDUMP_COMMANDLINE", "KDUMP_COMMANDLINE_REMOVE",
                "KDUMP_COMMANDLINE_APPEND", "KEXEC_ARGS", "KDUMP_BOOTDIR", "KDUMP_IMG",
                "KDUMP_IMG_EXT", "VMCORE_CREATION_NOTIFICATION"):
        assert key in cfg.lines, "%s is not set in the shipped file" % key
    assert cfg.values == sysconfig.DEFAULTS
    assert cfg["KEXEC_ARGS"] == "-s"
    assert cfg["KDUMP_COMMANDLINE_REMOVE"].split()[-1] == "cma"
    assert "nr_cpus=1" in cfg["KDUMP_COMMANDLINE_APPEND"].split()
    text = _read("kdump.sysconfig")
    for key in sysconfig.LOG_LEVEL_KEYS:
        assert re.search(r"^#%s=[0-4]$" % key, text, re.M), key


# --- kdump.service --------------------------------------------------------------------

def _unit(text):
    sections, current = {}, None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_kdump_service_shape():
    unit = _unit(_read("kdump.service"))
    svc = unit["Service"]
    assert svc["Type"] == ["oneshot"] and svc["RemainAfterExit"] == ["yes"]
    assert svc["ExecStart"] == ["/usr/bin/kdumpctl start"]
    assert svc["ExecStop"] == ["/usr/bin/kdumpctl stop"]
    assert svc["ExecReload"] == ["/usr/bin/kdumpctl reload"]
    assert "crashkernel=" in svc["ExecCondition"][0]
    assert "/proc/cmdline" in svc["ExecCondition"][0]
    after = unit["Unit"]["After"][0].split()
    assert "network-online.target" in after and "remote-fs.target" in after
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_kdump_service_exec_condition_reads_crashkernel_from_the_command_line(tmp_path):
    cond = _unit(_read("kdump.service"))["Service"]["ExecCondition"][0]
    script = cond.split("-c ", 1)[1].strip("'")
    for cmdline, expected in (("ro quiet crashkernel=256M", 0), ("ro quiet", 1),
                              ("ro nocrashkernel", 1)):
        fake = tmp_path / "cmdline"
        fake.write_text(cmdline + "\n")
        rc = subprocess.call([SH, "-c", script.replace("/proc/cmdline", str(fake))])
        assert rc == expected, cmdline


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is missing")
def test_kdump_service_passes_systemd_analyze_verify(tmp_path):
    # verify checks that each Exec*= program exists: give it a root holding the two the
    # unit names (--root makes it look them up there, not on this host).
    root = tmp_path / "root"
    for prog in ("usr/bin/kdumpctl", "bin/sh"):
        os.makedirs(root / os.path.dirname(prog), exist_ok=True)
        shutil.copy("/bin/true", root / prog)
    unitdir = root / "usr/lib/systemd/system"
    os.makedirs(unitdir)
    shutil.copy(os.path.join(PACKAGING, "kdump.service"), unitdir / "kdump.service")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=%s" % root,
                           str(unitdir / "kdump.service")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    # verify exits 0 on some problems it only warns about ("Unknown key ..."): any
    # output at all is a failure.
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout


# --- the SysV init script -------------------------------------------------------------

FAKE_KDUMPCTL = """\
#!/bin/sh
# Records its arguments; exits with the status named in $FAKE_RC_<verb> (default 0).
echo "$*" >> "$FAKE_LOG"
for last; do :; done
eval "rc=\\${FAKE_RC_$(echo "$last" | tr -c 'a-z0-9\\n' _):-0}"
exit $rc
"""


class InitScript:
    def __init__(self, tmp_path):
        self.root = tmp_path / "root"
        os.makedirs(self.root)
        self.log = tmp_path / "kdumpctl.log"
        self.kdumpctl = tmp_path / "kdumpctl"
        self.kdumpctl.write_text(FAKE_KDUMPCTL)
        self.kdumpctl.chmod(0o755)
        self.lock = self.root / "var/lock/subsys/kdump"

    def run(self, *args, rc=None):
        env = {"PATH": os.environ["PATH"], "KDUMPCTL": str(self.kdumpctl),
               "KDUMP_ROOT": str(self.root), "FAKE_LOG": str(self.log)}
        for verb, code in (rc or {}).items():
            env["FAKE_RC_" + verb] = str(code)
        return subprocess.run([SH, os.path.join(PACKAGING, "kdump.init")] + list(args),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)

    def calls(self):
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        self.log.unlink()
        prefix = "--root %s " % self.root
        assert all(line.startswith(prefix) for line in lines), lines
        return [line[len(prefix):] for line in lines]


@pytest.fixture
def init(tmp_path):
    return InitScript(tmp_path)


def test_init_script_header_for_chkconfig_and_lsb():
    text = _read("kdump.init")
    assert text.startswith("#!/bin/sh\n")
    assert "\n# chkconfig: - 20 80\n" in text
    header = text[text.index("### BEGIN INIT INFO"):text.index("### END INIT INFO")]
    for field in ("Provides: kdump", "Required-Start:", "Required-Stop:",
                  "Short-Description:", "Description:"):
        assert "# " + field in header, field
    assert os.access(os.path.join(PACKAGING, "kdump.init"), os.X_OK)


def test_init_start_runs_kdumpctl_and_takes_the_lock(init):
    proc = init.run("start")
    assert proc.returncode == 0, proc.stderr
    assert init.calls() == ["start"]
    assert init.lock.exists()
    assert "Starting kdump:" in proc.stdout


def test_init_start_failure_passes_the_status_and_takes_no_lock(init):
    proc = init.run("start", rc={"start": 1})
    assert proc.returncode == 1
    assert not init.lock.exists()
    assert "failed" in proc.stdout


def test_init_stop_releases_the_lock(init):
    init.run("start")
    init.calls()
    proc = init.run("stop")
    assert proc.returncode == 0
    assert init.calls() == ["stop"]
    assert not init.lock.exists()


@pytest.mark.parametrize("kdumpctl_rc,expected", [(0, 0), (3, 3), (1, 3)])
def test_init_status_is_0_or_3(init, kdumpctl_rc, expected):
    proc = init.run("status", rc={"status": kdumpctl_rc})
    assert proc.returncode == expected
    assert init.calls() == ["status"]


def test_init_restart_stops_then_starts(init):
    proc = init.run("restart")
    assert proc.returncode == 0
    assert init.calls() == ["stop", "start"]
    assert init.lock.exists()
    assert init.run("restart", rc={"start": 1}).returncode == 1


@pytest.mark.parametrize("verb", ["condrestart", "try-restart"])
def test_init_condrestart_restarts_only_when_loaded(init, verb):
    proc = init.run(verb, rc={"status": 3})
    assert proc.returncode == 0
    assert init.calls() == ["status"]
    proc = init.run(verb, rc={"status": 0})
    assert proc.returncode == 0
    assert init.calls() == ["status", "stop", "start"]


def test_init_reload_and_force_reload(init):
    assert init.run("reload").returncode == 0
    assert init.calls() == ["reload"]
    assert init.run("reload", rc={"reload": 1}).returncode == 1
    init.calls()
    assert init.run("force-reload").returncode == 0
    assert init.calls() == ["stop", "start"]


@pytest.mark.parametrize("args", [["frobnicate"], []])
def test_init_unknown_verb_prints_usage_and_exits_2(init, args):
    proc = init.run(*args)
    assert proc.returncode == 2
    assert "Usage:" in proc.stderr and "condrestart" in proc.stderr
    assert init.calls() == []


def test_init_uses_the_functions_library_only_when_present(init):
    proc = init.run("start")
    assert "[" not in proc.stdout          # plain output without the library
    functions = init.root / "etc/rc.d/init.d/functions"
    os.makedirs(functions.parent)
    functions.write_text(textwrap.dedent("""\
        success() { printf '[  OK  ]'; }
        failure() { printf '[FAILED]'; }
        """))
    assert "Starting kdump:[  OK  ]" in init.run("start").stdout
    assert "[FAILED]" in init.run("stop", rc={"stop": 1}).stdout


def test_init_without_kdump_root_calls_plain_kdumpctl(tmp_path):
    log = tmp_path / "log"
    fake = tmp_path / "kdumpctl"
    fake.write_text(FAKE_KDUMPCTL)
    fake.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "KDUMPCTL": str(fake), "FAKE_LOG": str(log)}
    proc = subprocess.run([SH, os.path.join(PACKAGING, "kdump.init"), "status"], env=env,
                          stdout=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0
    assert log.read_text() == "status\n"


# --- kernel-install hooks -------------------------------------------------------------

def _hook(name, *args, env=None):
    full_env = {"PATH": os.environ["PATH"]}
    full_env.update(env or {})
    return subprocess.run([SH, os.path.join(PACKAGING, name)] + list(args), env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


def _kdump_images(root, kver):
    paths = [root / "boot" / ("initramfs-%skdump.img" % kver),
             root / "var/lib/kdump" / ("initramfs-%skdump.img" % kver)]
    for p in paths:
        os.makedirs(p.parent, exist_ok=True)
        p.write_bytes(b"cpio")
    return paths


def test_60_kdump_remove_deletes_the_kernels_capture_initramfs(tmp_path):
    root = tmp_path / "root"
    gone = _kdump_images(root, "6.1.0-1.x86_64")
    kept = _kdump_images(root, "6.1.0-2.x86_64")
    normal = root / "boot/initramfs-6.1.0-1.x86_64.img"
    normal.write_bytes(b"cpio")
    proc = _hook("60-kdump.install", "remove", "6.1.0-1.x86_64", "/boot/entry",
                 env={"KDUMP_ROOT": str(root)})
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in gone)
    assert all(p.exists() for p in kept) and normal.exists()


def test_60_kdump_add_and_missing_images_do_nothing(tmp_path):
    root = tmp_path / "root"
    images = _kdump_images(root, "6.1.0-1.x86_64")
    assert _hook("60-kdump.install", "add", "6.1.0-1.x86_64", "/boot/entry",
                 "/boot/vmlinuz-6.1.0-1.x86_64", env={"KDUMP_ROOT": str(root)}).returncode == 0
    assert all(p.exists() for p in images)
    assert _hook("60-kdump.install", "remove", "9.9.9", "/boot/entry",
                 env={"KDUMP_ROOT": str(root)}).returncode == 0


def test_60_kdump_keeps_the_image_while_another_entry_type_uses_the_kernel(tmp_path):
    root = tmp_path / "root"
    images = _kdump_images(root, "6.1.0-1.x86_64")
    os.makedirs(root / "usr/lib/modules/6.1.0-1.x86_64/kernel")
    env = {"KDUMP_ROOT": str(root), "KERNEL_INSTALL_BOOT_ENTRY_TYPE": "type2"}
    assert _hook("60-kdump.install", "remove", "6.1.0-1.x86_64", "/boot/entry",
                 env=env).returncode == 0
    assert all(p.exists() for p in images)


def test_92_crashkernel_add_asks_kdumpctl_and_never_fails(tmp_path):
    log = tmp_path / "log"
    fake = tmp_path / "kdumpctl"
    fake.write_text(FAKE_KDUMPCTL)
    fake.chmod(0o755)
    env = {"KDUMPCTL": str(fake), "FAKE_LOG": str(log)}
    proc = _hook("92-crashkernel.install", "add", "6.1.0-1.x86_64", "/boot/entry",
                 "/boot/vmlinuz-6.1.0-1.x86_64", env=env)
    assert proc.returncode == 0
    assert log.read_text() == "_reset-crashkernel-for-installed-kernel 6.1.0-1.x86_64\n"
    env["FAKE_RC_6_1_0_1_x86_64"] = "1"    # kdumpctl fails: the install goes on
    assert _hook("92-crashkernel.install", "add", "6.1.0-1.x86_64", env=env).returncode == 0
    log.unlink()
    assert _hook("92-crashkernel.install", "remove", "6.1.0-1.x86_64",
                 env=env).returncode == 0
    assert not log.exists()
    env["KDUMPCTL"] = str(tmp_path / "missing")
    assert _hook("92-crashkernel.install", "add", "6.1.0-1.x86_64", env=env).returncode == 0


def test_hooks_and_scripts_are_executable_posix_sh():
    for name in ("60-kdump.install", "92-crashkernel.install", "kdump.init",
                 "kdump-udev-throttler"):
        path = os.path.join(PACKAGING, name)
        assert os.access(path, os.X_OK), name
        with open(path) as f:
            assert f.readline() == "#!/bin/sh\n", name
        assert subprocess.call([SH, "-n", path]) == 0, name


# --- udev rule and throttler ----------------------------------------------------------

def test_udev_rule_reloads_through_the_throttler_on_cpu_and_memory_hotplug():
    rules = _read("98-kexec.rules")
    for match in ('SUBSYSTEM=="cpu", ACTION=="add"', 'SUBSYSTEM=="cpu", ACTION=="remove"',
                  'SUBSYSTEM=="memory", ACTION=="online"',
                  'SUBSYSTEM=="memory", ACTION=="offline"',
                  'ATTRS{crash_hotplug}=="1"'):
        assert match in rules, match
    run = [line for line in rules.splitlines() if line.startswith("RUN+=")]
    assert len(run) == 1
    assert "is-active kdump.service" in run[0]
    assert "/usr/lib/udev/kdump-udev-throttler" in run[0]


@pytest.mark.skipif(not shutil.which("flock"), reason="flock (util-linux) is missing")
def test_throttler_turns_a_burst_into_one_reload(tmp_path):
    log = tmp_path / "log"
    fake = tmp_path / "kdumpctl"
    fake.write_text(FAKE_KDUMPCTL)
    fake.chmod(0o755)
    bindir = tmp_path / "bin"
    os.makedirs(bindir)
    (bindir / "udevadm").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "udevadm").chmod(0o755)
    env = {"PATH": "%s:%s" % (bindir, os.environ["PATH"]), "KDUMPCTL": str(fake),
           "FAKE_LOG": str(log), "KDUMP_THROTTLE_LOCK": str(tmp_path / "lock")}
    script = os.path.join(PACKAGING, "kdump-udev-throttler")
    # While an earlier instance holds the lock (this test, here), later events leave the
    # reload to it and exit at once.
    with open(tmp_path / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        others = [subprocess.run([SH, script], env=env, timeout=5).returncode
                  for _ in range(3)]
    assert others == [0, 0, 0]
    assert not log.exists()
    # The instance that gets the lock waits for the burst to settle, then reloads once.
    assert subprocess.run([SH, script], env=env, timeout=10).returncode == 0
    assert log.read_text() == "reload\n"
