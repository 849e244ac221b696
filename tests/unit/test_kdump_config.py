"""kdump.conf, /etc/sysconfig/kdump and core_collector: RHEL's semantics and messages."""
import json
import os

import pytest

from kexec_py.errors import FormatError, KexecError
from kexec_py.kdump import collector, config, sysconfig

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "packaging")


def parse(text, root="/nonexistent-root"):
    return config.parse(text, "/etc/kdump.conf", root)


def error_of(text, root="/nonexistent-root"):
    with pytest.raises(FormatError) as e:
        parse(text, root)
    assert e.value.exit_code == 1
    return str(e.value)


# kdump.conf

def test_empty_config_means_rootfs_default_path_and_collector():
    cfg = parse("# nothing but comments\n\n   \n")
    assert cfg.target.kind == "rootfs"
    assert cfg.dump_path == "/var/crash"
    assert cfg.core_collector == "makedumpfile -l --message-level 7 -d 31"
    assert cfg.failure_action == "reboot" and cfg.final_action == "reboot"
    assert cfg.auto_reset_crashkernel
    assert cfg.sshkey == "/root/.ssh/kdump_id_rsa"


def test_trailing_comment_and_quotes_are_stripped():
    cfg = parse('path "/var/crash/x"   # where dumps go\n'
                'core_collector "makedumpfile -c -d 17"\n'
                'kdump_post /bin/post.sh#no space before hash\n')
    assert cfg.dump_path == "/var/crash/x"
    assert cfg.core_collector == "makedumpfile -c -d 17"
    assert cfg.get("kdump_post") == "/bin/post.sh"


def test_only_one_pair_of_outer_quotes_is_removed():
    cfg = parse('dracut_args "--omit-drivers "a b""\n')
    assert cfg.get("dracut_args") == '--omit-drivers "a b"'


@pytest.mark.parametrize("line,kind,fstype,spec", [
    ("ext4 LABEL=kdump", "fs", "ext4", "LABEL=kdump"),
    ("xfs UUID=0f0c-11", "fs", "xfs", "UUID=0f0c-11"),
    ("ext2 /dev/vdb1", "fs", "ext2", "/dev/vdb1"),
    ("btrfs /dev/sdc", "fs", "btrfs", "/dev/sdc"),
    ("minix /dev/sdd", "fs", "minix", "/dev/sdd"),
    ("virtiofs myfs", "fs", "virtiofs", "myfs"),
    ("nfs server:/export/dumps", "nfs", "nfs", "server:/export/dumps"),
    ("ssh root@10.0.2.2", "ssh", "", "root@10.0.2.2"),
    ("raw /dev/vdc", "raw", "", "/dev/vdc"),
])
def test_every_target_form(line, kind, fstype, spec):
    cfg = parse(line + "\n")
    assert (cfg.target.kind, cfg.target.fstype, cfg.target.spec) == (kind, fstype, spec)
    assert cfg.target.line == 1


def test_dracut_args_mount_is_a_target():
    cfg = parse('dracut_args --mount "/dev/vdb1 /mnt/dump ext4 defaults,noatime"\n')
    t = cfg.target
    assert (t.kind, t.spec, t.mount_point, t.fstype, t.mount_options) == (
        "fs", "/dev/vdb1", "/mnt/dump", "ext4", "defaults,noatime")
    assert t.from_dracut_mount


def test_dracut_args_mount_nfs():
    cfg = parse("dracut_args --mount \"srv:/e /mnt nfs4 rw\"\n")
    assert cfg.target.kind == "nfs" and cfg.target.fstype == "nfs4"


@pytest.mark.parametrize("text,message", [
    ("ext4 /dev/vdb\nnfs s:/e\n", "/etc/kdump.conf:2: More than one dump targets specified"),
    ("ssh a@b\ndracut_args --mount \"/dev/x /m ext4\"\n",
     "/etc/kdump.conf:2: More than one dump targets specified"),
    ("path /a\npath /b\n", "/etc/kdump.conf:2: Duplicated kdump config value of option path"),
    ("path\n", "/etc/kdump.conf:1: Invalid kdump config value for option 'path'"),
    ("path   # only a comment\n", "/etc/kdump.conf:1: Invalid kdump config value for option 'path'"),
    ("ext4\n", "/etc/kdump.conf:1: Invalid kdump config value for option 'ext4'"),
    ("bogus 1\n", "/etc/kdump.conf:1: Invalid kdump config option bogus"),
    ("\n\nnet 10.0.0.1:/x\n", "/etc/kdump.conf:3: Deprecated kdump config option: net. Refer to "
                              "kdump.conf manpage for alternatives."),
    ("link_delay 10\n", "Deprecated kdump config option: link_delay"),
    ("disk_timeout 10\n", "Deprecated kdump config option: disk_timeout"),
    ("options ext4 x\n", "Deprecated kdump config option: options"),
    ("debug_mem_level 1\n", "Deprecated kdump config option: debug_mem_level"),
    ("blacklist x\n", "Deprecated kdump config option: blacklist"),
    ("failure_action explode\n", "Usage kdump.conf: failure_action "
                                 "{reboot|halt|poweroff|shell|dump_to_rootfs}"),
    ("final_action shell\n", "Usage kdump.conf: final_action {reboot|halt|poweroff}"),
    ("force_rebuild 2\n", "Error: force_rebuild value is invalid"),
    ("force_no_rebuild yes\n", "Error: force_no_rebuild value is invalid"),
    ("force_rebuild 1\nforce_no_rebuild 1\n",
     "/etc/kdump.conf:2: Error: force_rebuild and force_no_rebuild are enabled simultaneously"),
    ("ssh 10.0.2.2\n", "/etc/kdump.conf:1: Please verify that /etc/kdump.conf contains "
                       "'ssh <user>@<host>' and that it is properly formatted."),
    ("nfs server-without-export\n", "use HOST:/EXPORT"),
    ("path var/crash\n", "it must be an absolute path"),
    ("auto_reset_crashkernel maybe\n", "auto_reset_crashkernel"),
    ('dracut_args --mount "/dev/a /a ext4" --mount "/dev/b /b ext4"\n',
     'Multiple mount targets specified in one "dracut_args".'),
    ('dracut_args --mount "/dev/a"\n', "--mount needs"),
    ("default reboot\nfailure_action halt\n",
     "Duplicated kdump config value of option failure_action"),
])
def test_errors_use_rhel_wording_with_file_and_line(text, message):
    assert message in error_of(text)


def test_default_is_failure_action_with_a_warning():
    cfg = parse("default shell\n")
    assert cfg.failure_action == "shell"
    assert any("Option 'default' was renamed 'failure_action'" in w for w in cfg.warnings)


def test_missing_sshkey_falls_back_with_a_warning(tmp_path):
    cfg = parse("ssh u@h\nsshkey /root/.ssh/mine\n", root=str(tmp_path))
    assert cfg.sshkey == config.DEFAULT_SSHKEY
    assert any("'/root/.ssh/mine' doesn't exist, using default value "
               "'/root/.ssh/kdump_id_rsa'" in w for w in cfg.warnings)
    (tmp_path / "root" / ".ssh").mkdir(parents=True)
    (tmp_path / "root" / ".ssh" / "mine").write_text("key")
    assert parse("ssh u@h\nsshkey /root/.ssh/mine\n", root=str(tmp_path)).sshkey == \
        "/root/.ssh/mine"


def test_fence_kdump_nodes_cannot_name_this_host(tmp_path):
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/hostname").write_text("node1\n")
    assert "Option fence_kdump_nodes cannot contain node1" in error_of(
        "fence_kdump_nodes node2 node1\n", root=str(tmp_path))
    assert parse("fence_kdump_nodes node2 node3\n", root=str(tmp_path)).words(
        "fence_kdump_nodes") == ["node2", "node3"]


def test_every_plain_key_is_accepted():
    text = "\n".join("%s %s" % (k, v) for k, v in (
        ("path", "/d"), ("core_collector", "makedumpfile -l -d 1"), ("kdump_post", "/p"),
        ("kdump_pre", "/q"), ("kdump_emergency", "/e"), ("extra_bins", "/bin/a /bin/b"),
        ("extra_modules", "e1000 ext4"), ("failure_action", "dump_to_rootfs"),
        ("final_action", "poweroff"), ("force_rebuild", "1"), ("force_no_rebuild", "0"),
        ("fence_kdump_args", "-p 7410"), ("fence_kdump_nodes", "peer"),
        ("auto_reset_crashkernel", "no"), ("dracut_args", "--omit plymouth")))
    cfg = parse(text + "\n")
    assert cfg.words("extra_bins") == ["/bin/a", "/bin/b"]
    assert cfg.flag("force_rebuild") and not cfg.flag("force_no_rebuild")
    assert not cfg.auto_reset_crashkernel
    assert cfg.final_action == "poweroff" and cfg.failure_action == "dump_to_rootfs"


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(KexecError, match="not found"):
        config.load(str(tmp_path))
    (tmp_path / "etc/kdump.conf").mkdir(parents=True)   # a directory: cannot be read
    with pytest.raises(KexecError, match="cannot read .*kdump.conf"):
        config.load(str(tmp_path))


def test_shipped_kdump_conf_parses_to_the_defaults():
    path = os.path.join(SHIPPED, "kdump.conf")
    if not os.path.exists(path):
        pytest.fail("packaging/kdump.conf is missing")
    with open(path) as f:
        cfg = config.parse(f.read(), path, "/nonexistent")
    assert cfg.dump_path == "/var/crash"
    assert cfg.core_collector == "makedumpfile -l --message-level 7 -d 31"
    assert cfg.auto_reset_crashkernel and cfg.target.kind == "rootfs"
    assert sorted(k for k in cfg.values) == ["auto_reset_crashkernel", "core_collector",
                                             "path"]


# sysconfig

def test_sysconfig_defaults_when_missing(tmp_path):
    s = sysconfig.load(str(tmp_path))
    assert not s.present
    assert s["KEXEC_ARGS"] == "-s"
    assert "nr_cpus=1" in s["KDUMP_COMMANDLINE_APPEND"]
    assert s["KDUMP_COMMANDLINE_REMOVE"].split()[0] == "hugepages"


def test_sysconfig_quotes_export_and_comments():
    s = sysconfig.parse('# c\nKDUMP_KERNELVER="6.1.0-9"\nexport KEXEC_ARGS=-c\n'
                        "KDUMP_COMMANDLINE_APPEND='irqpoll nr_cpus=1'  # trailing\n"
                        'KDUMP_COMMANDLINE=""\n', "/etc/sysconfig/kdump")
    assert s["KDUMP_KERNELVER"] == "6.1.0-9"
    assert s["KEXEC_ARGS"] == "-c"
    assert s["KDUMP_COMMANDLINE_APPEND"] == "irqpoll nr_cpus=1"
    assert s["KDUMP_COMMANDLINE"] == ""
    assert s["KDUMP_IMG"] == "vmlinuz"     # defaults stay for keys not set


@pytest.mark.parametrize("text,message", [
    ('KDUMP_COMMANDLINE="unterminated\n', ":1: syntax error"),
    ("\nrm -rf /\n", ":2: syntax error: expected KEY=value"),
    ("KEXEC_ARGS=-s -d\n", "must be quoted"),
    ('KDUMP_COMMANDLINE="$(cat /proc/cmdline)"\n', "command substitution"),
    ('KDUMP_COMMANDLINE="$OTHER"\n', "variable expansion"),
    ("KDUMP_STDLOGLVL=9\n", "log level from 0 to 4"),
])
def test_sysconfig_syntax_errors_name_file_and_line(text, message):
    with pytest.raises(FormatError) as e:
        sysconfig.parse(text, "/etc/sysconfig/kdump")
    assert str(e.value).startswith("/etc/sysconfig/kdump:")
    assert message in str(e.value)


def test_shipped_sysconfig_matches_the_defaults():
    path = os.path.join(SHIPPED, "kdump.sysconfig")
    if not os.path.exists(path):
        pytest.fail("packaging/kdump.sysconfig is missing")
    with open(path) as f:
        s = sysconfig.parse(f.read(), path)
    for key in ("KDUMP_COMMANDLINE_REMOVE", "KDUMP_COMMANDLINE_APPEND", "KEXEC_ARGS",
                "KDUMP_IMG"):
        assert s[key] == sysconfig.DEFAULTS[key], key


# core_collector

def test_makedumpfile_collector_runs_vmcore_copy_with_the_same_options():
    c = collector.parse("makedumpfile -l --message-level 7 -d 31")
    assert c.program == "vmcore-copy"
    assert c.argv == ["-l", "--message-level", "7", "-d", "31"]
    assert (c.dump_level, c.codec, c.flattened) == (31, "lzo", False)
    c = collector.parse("makedumpfile -F -c --message-level=1 -d 1 --num-threads=2",
                        network_or_raw=True)
    assert c.flattened and c.codec == "zlib" and c.dump_level == 1


def test_real_makedumpfile_by_path_is_kept():
    c = collector.parse("/usr/sbin/makedumpfile -l --split -d 31")
    assert c.program == "/usr/sbin/makedumpfile"
    assert c.argv == ["-l", "--split", "-d", "31"]


def test_unsupported_makedumpfile_option_fails_now_not_at_crash_time():
    with pytest.raises(KexecError, match="option --split is not supported.*real makedumpfile"):
        collector.parse("makedumpfile -l --split -d 31", "kdump.conf:3")
    with pytest.raises(KexecError, match="option -x is not supported"):
        collector.parse("makedumpfile -x vmlinux -d 31")


def test_tuning_options_are_dropped_with_a_warning():
    c = collector.parse("makedumpfile -l --cyclic-buffer 1024 -D -d 31")
    assert c.argv == ["-l", "-d", "31"]
    assert len(c.warnings) == 2


def test_collector_checks():
    with pytest.raises(KexecError, match="must use -F"):
        collector.parse("makedumpfile -l -d 31", network_or_raw=True)
    with pytest.raises(KexecError, match="dump level"):
        collector.parse("makedumpfile -d 32")
    with pytest.raises(KexecError, match="not files"):
        collector.parse("makedumpfile -l /proc/vmcore out")
    with pytest.raises(KexecError, match="is not supported: use makedumpfile"):
        collector.parse("gzip -c")
    assert collector.parse("cp --sparse=always").program == "cp"
    assert collector.parse("scp").program == "scp"
    json.dumps(collector.parse("makedumpfile -z -d 31").as_dict())
