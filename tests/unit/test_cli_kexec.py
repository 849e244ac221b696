"""The kexec command in process: --dry-run, boot entries, status, usage and bad input.

conftest's no_host_side_effects makes any real syscall, reboot or `shutdown -r now` fail
the test; everything reads under a temporary --root.
"""
import json
import os

import pytest

from kexec_py.load import loader

from .conftest import CRASH_RESERVE, RELEASE, make_bzimage, write_file

CMDLINE = 'root=/dev/vda1 ro kpy.test="a b c" console=ttyS0,115200'
RUNNING_REUSED = "root=UUID=1234-abcd ro crashkernel=256M console=ttyS0,115200 quiet"


def dry(kexec, root, *args):
    return kexec(*args, "--root", root, "--dry-run")


def line(result, prefix):
    """The one output line that starts with prefix."""
    found = [x for x in result.lines if x.startswith(prefix)]
    assert len(found) == 1, (prefix, result)
    return found[0]


# --dry-run of each action

def test_dry_run_load(kexec, root, kernel_path, initrd_paths):
    r = dry(kexec, root, "-l", kernel_path, "--initrd=" + initrd_paths[0], "--append", CMDLINE)
    assert r.code == 0, r
    assert r.err == ""
    assert r.lines[0] == "kexec --dry-run: nothing is loaded"
    assert line(r, "syscall: ") == (
        "syscall: kexec_file_load(kernel_fd, initrd_fd=fd, cmdline_len=%d, cmdline, "
        "flags=0) [0x0]" % (len(CMDLINE) + 1))
    assert line(r, "kernel: ").startswith(
        "kernel: %s (bzImage, boot protocol 2.15, " % kernel_path)
    assert RELEASE in line(r, "kernel: ")
    assert line(r, "initrd: ").startswith("initrd: %s (" % initrd_paths[0])
    assert line(r, "image: ") == "image: default (for kexec -e)"
    assert line(r, "cmdline: ") == "cmdline: " + CMDLINE
    assert "shutdown" not in r.out


def test_dry_run_panic_load_without_initrd(kexec, root, kernel_path):
    r = dry(kexec, root, "-p", kernel_path, "--append=irqpoll nr_cpus=1")
    assert r.code == 0, r
    assert "flags=KEXEC_FILE_ON_CRASH|KEXEC_FILE_NO_INITRAMFS) [0x6]" in line(r, "syscall: ")
    assert "initrd_fd=-1" in line(r, "syscall: ")
    assert line(r, "initrd: ") == "initrd: none"
    assert line(r, "image: ").startswith("image: crash")
    assert line(r, "cmdline: ") == "cmdline: irqpoll nr_cpus=1"


def test_dry_run_debug_flag(kexec, root, kernel_path, initrd_paths):
    r = dry(kexec, root, "-p", "-d", kernel_path, "--initrd", initrd_paths[0])
    assert r.code == 0, r
    assert "flags=KEXEC_FILE_ON_CRASH|KEXEC_FILE_DEBUG) [0xa]" in line(r, "syscall: ")


def test_dry_run_several_initrds_listed_in_order(kexec, root, kernel_path, initrd_paths):
    args = ["--initrd=" + p for p in reversed(initrd_paths)]
    r = dry(kexec, root, "-l", kernel_path, *args)
    assert r.code == 0, r
    listed = [x.split()[1] for x in r.lines if x.startswith("initrd: /")]
    assert listed == list(reversed(initrd_paths))
    assert "the 3 files above concatenated into a memfd" in r.out


@pytest.mark.parametrize("args,expected", [
    (["-u"], "flags=KEXEC_FILE_UNLOAD) [0x1]"),
    (["-p", "-u"], "flags=KEXEC_FILE_UNLOAD|KEXEC_FILE_ON_CRASH) [0x3]"),
    (["-u", "-s"], "flags=KEXEC_FILE_UNLOAD) [0x1]"),
])
def test_dry_run_unload(kexec, root, args, expected):
    r = dry(kexec, root, *args)
    assert r.code == 0, r
    assert r.lines[0] == "kexec --dry-run: nothing is unloaded"
    assert line(r, "syscall: ") == "syscall: kexec_file_load(-1, -1, 0, NULL, %s" % expected
    assert ("fallback: kexec_load" in r.out) == ("-s" not in args)


def test_dry_run_unload_with_kexec_load_only(kexec, root):
    r = dry(kexec, root, "-c", "-p", "-u")
    assert r.code == 0, r
    assert line(r, "syscall: ") == ("syscall: kexec_load(0, 0, NULL, flags=KEXEC_ON_CRASH|"
                                    "KEXEC_ARCH_X86_64) [0x3e0001]")
    assert line(r, "image: ") == "image: crash"


def test_dry_run_exec(kexec, root):
    root.mkdir("/sys/class/net/lo")
    root.mkdir("/sys/class/net/eth0")
    r = dry(kexec, root, "-e")
    assert r.code == 0, r
    assert r.lines == ["kexec --dry-run: nothing is executed", "then: sync",
                       "then: bring down network interfaces (eth0)",
                       "then: reboot(LINUX_REBOOT_CMD_KEXEC)"]


def test_dry_run_exec_without_sync_or_ifdown(kexec, root):
    r = dry(kexec, root, "-e", "-x", "-y")
    assert r.code == 0, r
    assert r.lines == ["kexec --dry-run: nothing is executed",
                       "then: reboot(LINUX_REBOOT_CMD_KEXEC)"]


def test_dry_run_force_loads_then_executes(kexec, root, kernel_path):
    r = dry(kexec, root, "-f", kernel_path, "--append", "quiet")
    assert r.code == 0, r
    assert "syscall: kexec_file_load(" in r.out
    assert r.out.index("nothing is loaded") < r.out.index("nothing is executed")
    assert r.lines[-1] == "then: reboot(LINUX_REBOOT_CMD_KEXEC)"
    assert "shutdown" not in r.out


def test_dry_run_no_action_loads_then_shutdown(kexec, root, kernel_path, initrd_paths):
    r = dry(kexec, root, kernel_path, "--initrd", initrd_paths[1], "--append", CMDLINE)
    assert r.code == 0, r
    assert line(r, "image: ") == "image: default (for kexec -e)"
    assert line(r, "cmdline: ") == "cmdline: " + CMDLINE
    assert r.lines[-1] == "then: shutdown -r now"


def test_dry_run_compressed_kernel_says_so(kexec, root, tmp_path):
    import gzip
    path = write_file(str(tmp_path / "vmlinuz.gz"), gzip.compress(make_bzimage()))
    r = dry(kexec, root, "-l", path)
    assert r.code == 0, r
    assert "(bzImage (gzip, decompressed into a memfd)" in line(r, "kernel: ")


# command lines

def test_append_and_command_line_last_one_wins(kexec, root, kernel_path):
    r = dry(kexec, root, "-l", kernel_path, "--append=first", "--command-line=second",
            "--append", "third one")
    assert line(r, "cmdline: ") == "cmdline: third one"
    r = dry(kexec, root, "-l", kernel_path, "--append=first", "--command-line=second")
    assert line(r, "cmdline: ") == "cmdline: second"


def test_no_append_means_empty_command_line(kexec, root, kernel_path):
    r = dry(kexec, root, "-l", kernel_path)
    assert r.lines[r.lines.index("cmdline: ")] == "cmdline: "
    assert "cmdline_len=1," in line(r, "syscall: ")


def test_reuse_cmdline_reads_proc_cmdline_under_root(kexec, root, kernel_path):
    r = dry(kexec, root, "-l", kernel_path, "--reuse-cmdline")
    assert line(r, "cmdline: ") == "cmdline: " + RUNNING_REUSED


def test_reuse_cmdline_with_panic_drops_crashkernel(kexec, root, kernel_path):
    r = dry(kexec, root, "-p", kernel_path, "--reuse-cmdline", "--append", "irqpoll")
    assert line(r, "cmdline: ") == ("cmdline: root=UUID=1234-abcd ro console=ttyS0,115200 "
                                    "quiet irqpoll")


def test_reuse_cmdline_then_append(kexec, root, kernel_path):
    r = dry(kexec, root, "-l", kernel_path, "--append", "a=1", "--reuse-cmdline",
            "--command-line", 'x="y z"')
    assert line(r, "cmdline: ") == 'cmdline: %s x="y z"' % RUNNING_REUSED


def test_cmdline_at_the_limit_is_accepted(kexec, root, small_kernel_path):
    limit = 64 - loader.ELFCOREHDR_ROOM - 1
    r = dry(kexec, root, "-l", small_kernel_path, "--append", "x" * limit)
    assert r.code == 0, r
    assert line(r, "cmdline length: ") == "cmdline length: %d bytes (limit %d)" % (limit, limit)


@pytest.mark.parametrize("action", ["-l", "-p"])
def test_cmdline_longer_than_kernel_accepts(kexec, root, small_kernel_path, action):
    limit = 64 - loader.ELFCOREHDR_ROOM - 1
    r = dry(kexec, root, action, small_kernel_path, "--append", "x" * (limit + 1))
    assert r.code == 255
    assert r.out == ""
    assert r.err.count("\n") == 1
    assert r.err == ("kexec: command line is %d bytes; kexec_file_load takes at most %d for %s "
                     "(setup header cmdline_size 64)\n" % (limit + 1, limit, small_kernel_path))


# boot entries

@pytest.fixture
def bls_root(root):
    for ver, opts in (("6.5.0-1", "root=/dev/vda1 ro quiet"), ("6.4.0-1", "root=/dev/vda1 ro")):
        root.kernel("/boot/vmlinuz-%s" % ver)
        root.initrd("/boot/initramfs-%s.img" % ver)
        root.bls("mid-" + ver, """
            title Linux %(v)s
            version %(v)s
            linux /vmlinuz-%(v)s
            initrd /initramfs-%(v)s.img
            options %(o)s
            """ % {"v": ver, "o": opts})
    root.grubenv(saved_entry="mid-6.4.0-1")
    return root


def test_load_default_entry(kexec, bls_root):
    r = dry(kexec, bls_root, "-l", "--default")
    assert r.code == 0, r
    assert line(r, "kernel: ").startswith("kernel: %s " % bls_root.p("/boot/vmlinuz-6.4.0-1"))
    assert line(r, "initrd: ").startswith("initrd: %s " %
                                          bls_root.p("/boot/initramfs-6.4.0-1.img"))
    assert line(r, "cmdline: ") == "cmdline: root=/dev/vda1 ro"


@pytest.mark.parametrize("spec", ["mid-6.5.0-1", "0", "6.5.0-1", "Linux 6.5.0-1"])
def test_load_entry_by_id_index_version_title(kexec, bls_root, spec):
    r = dry(kexec, bls_root, "-l", "--entry", spec, "--append", "extra=1")
    assert r.code == 0, r
    assert line(r, "kernel: ").startswith("kernel: %s " % bls_root.p("/boot/vmlinuz-6.5.0-1"))
    assert line(r, "cmdline: ") == "cmdline: root=/dev/vda1 ro quiet extra=1"


def test_entry_with_initrd_override_and_reuse_cmdline(kexec, bls_root, initrd_paths):
    r = dry(kexec, bls_root, "-l", "--entry", "6.5.0-1", "--initrd", initrd_paths[2],
            "--reuse-cmdline")
    assert r.code == 0, r
    assert line(r, "initrd: ").startswith("initrd: %s " % initrd_paths[2])
    assert line(r, "cmdline: ") == "cmdline: " + RUNNING_REUSED


def test_entry_that_does_not_exist(kexec, bls_root):
    r = dry(kexec, bls_root, "-l", "--entry", "no-such-entry")
    assert r.code == 1
    assert r.out == ""
    assert r.err.startswith("kexec: no boot entry matches 'no-such-entry' in ")
    assert r.err.count("\n") == 1


def test_default_entry_whose_kernel_is_missing(kexec, bls_root):
    os.unlink(bls_root.p("/boot/vmlinuz-6.4.0-1"))
    r = dry(kexec, bls_root, "-l", "--default")
    assert r.code == 255
    assert r.err == "kexec: cannot open kernel %s: No such file or directory\n" % \
        bls_root.p("/boot/vmlinuz-6.4.0-1")


def test_default_falls_back_to_running_kernel(kexec, root):
    root.kernel("/boot/vmlinuz-%s" % RELEASE)
    root.initrd("/boot/initrd.img-%s" % RELEASE)
    r = dry(kexec, root, "-l", "--default")
    assert r.code == 0, r
    assert line(r, "initrd: ").startswith("initrd: %s " % root.p("/boot/initrd.img-" + RELEASE))
    assert line(r, "cmdline: ") == "cmdline: " + RUNNING_REUSED


def test_list_entries_table(kexec, bls_root):
    r = kexec("--list-entries", "--root", bls_root)
    assert r.code == 0, r
    assert r.lines[0] == "source: bls (%s)" % bls_root.p("/boot/loader/entries")
    assert r.lines[1].split() == ["INDEX", "DEFAULT", "ID", "VERSION", "KERNEL", "INITRD"]
    rows = [x.split() for x in r.lines if x[:1].isdigit()]
    assert rows == [
        ["0", "mid-6.5.0-1", "6.5.0-1", bls_root.p("/boot/vmlinuz-6.5.0-1"),
         bls_root.p("/boot/initramfs-6.5.0-1.img")],
        ["1", "*", "mid-6.4.0-1", "6.4.0-1", bls_root.p("/boot/vmlinuz-6.4.0-1"),
         bls_root.p("/boot/initramfs-6.4.0-1.img")]]
    assert "    title: Linux 6.5.0-1" in r.lines
    assert "    options: root=/dev/vda1 ro quiet" in r.lines


def test_list_entries_json(kexec, bls_root):
    r = kexec("--list-entries", "--json", "--root", bls_root)
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["source"] == "bls" and data["default"] == 1
    assert [e["id"] for e in data["entries"]] == ["mid-6.5.0-1", "mid-6.4.0-1"]
    assert [e["default"] for e in data["entries"]] == [False, True]
    e = data["entries"][1]
    assert e["kernel"] == bls_root.p("/boot/vmlinuz-6.4.0-1")
    assert e["initrds"] == [bls_root.p("/boot/initramfs-6.4.0-1.img")]
    assert e["options"] == "root=/dev/vda1 ro" and e["version"] == "6.4.0-1"


# status and the crash reserve

@pytest.mark.parametrize("loaded,crash_loaded,args,code", [
    (0, 0, ["-S"], 0), (0, 1, ["-S"], 1), (1, 0, ["-S"], 0),
    (0, 1, ["-l", "-S"], 0), (1, 0, ["-l", "-S"], 1), (0, 1, ["-p", "-S"], 1),
])
def test_status(kexec, fake_root, loaded, crash_loaded, args, code):
    fake_root.standard(loaded=loaded, crash_loaded=crash_loaded)
    r = kexec(*args, "--root", fake_root)
    assert (r.code, r.out, r.err) == (code, "", "")


def test_print_ckr_size_sums_crash_kernel_ranges(kexec, root):
    r = kexec("--print-ckr-size", "--root", root)
    assert (r.code, r.out) == (0, "%d\n" % CRASH_RESERVE)


def test_print_ckr_size_as_non_root_falls_back_to_sysfs(kexec, root):
    root.write("/proc/iomem", "00000000-00000000 : System RAM\n"
                              "  00000000-00000000 : Crash kernel\n")
    root.write("/sys/kernel/kexec_crash_size", "268435456\n")
    assert kexec("--print-ckr-size", "--root", root).out == "268435456\n"


def test_print_ckr_size_without_reserve(kexec, root):
    root.no_crash_reserve()
    assert kexec("--print-ckr-size", "--root", root).out == "0\n"


def test_panic_load_without_crash_reserve_exits_254(kexec, root, kernel_path):
    root.no_crash_reserve()
    r = dry(kexec, root, "-p", kernel_path)
    assert r.code == 254
    assert r.out == ""
    assert r.err.startswith("kexec: Memory for crashkernel is not reserved")
    assert "crashkernel=" in r.err and r.err.count("\n") == 1


# bad input

def test_missing_kernel(kexec, root, tmp_path):
    path = str(tmp_path / "vmlinuz-nope")
    r = dry(kexec, root, "-l", path)
    assert (r.code, r.out) == (255, "")
    assert r.err == "kexec: cannot open kernel %s: No such file or directory\n" % path


def test_missing_initrd(kexec, root, kernel_path, tmp_path):
    path = str(tmp_path / "initrd-nope.img")
    r = dry(kexec, root, "-l", kernel_path, "--initrd", path)
    assert r.code == 255
    assert r.err == "kexec: cannot open initrd %s: No such file or directory\n" % path


def test_file_that_is_no_kernel(kexec, root, tmp_path):
    path = write_file(str(tmp_path / "vmlinux"), b"\x7fELF\x02\x01\x01" + b"\0" * 64)
    r = dry(kexec, root, "-l", path)
    assert r.code == 255
    assert r.err.startswith("kexec: %s is not a kernel image: an ELF file" % path)


@pytest.mark.parametrize("args,needle", [
    (["-l", "-e"], "cannot be combined"),
    (["-l", "--default", "KERNEL"], "not both"),
    (["-l", "--default", "--entry", "0"], "not both"),
    (["--json"], "--json goes with --list-entries"),
    (["-S", "KERNEL"], "a kernel is only taken by"),
    (["-l"], "no kernel given"),
    (["-p"], "no kernel given"),
])
def test_usage_errors_exit_1(kexec, root, kernel_path, args, needle):
    args = [kernel_path if a == "KERNEL" else a for a in args]
    r = dry(kexec, root, *args)
    assert r.code == 1, r
    assert r.out == ""
    assert needle in r.err and r.err.startswith("kexec: ")


def test_unknown_option_exits_1(kexec):
    r = kexec("--no-such-option")
    assert r.code == 1
    assert "usage: kexec" in r.err and "unrecognized arguments" in r.err


def test_exec_with_nothing_loaded(kexec, root):
    r = kexec("-e", "--root", root)
    assert (r.code, r.out) == (1, "")
    assert r.err == "kexec: Nothing has been loaded!\n"


def test_help_mentions_every_option(kexec):
    r = kexec("--help")
    assert r.code == 0
    for opt in ("-l", "--load", "-p", "--load-panic", "-u", "--unload", "-e", "--exec",
                "-f", "--force", "-S", "--status", "-s", "--kexec-file-syscall", "-c",
                "--kexec-syscall", "-a", "--kexec-syscall-auto", "--initrd", "--ramdisk",
                "--append", "--command-line", "--reuse-cmdline", "-d", "--debug", "-x",
                "--no-ifdown", "-y", "--no-sync", "--print-ckr-size", "-v", "--version",
                "-h", "--help", "--dry-run", "--default", "--entry", "--list-entries",
                "--json", "--root"):
        assert (" %s " % opt in r.out or " %s," % opt in r.out or " %s\n" % opt in r.out
                or " %s=" % opt in r.out), opt
    assert "shutdown -r now" in r.out
    assert "254" in r.out and "253" in r.out


def test_version(kexec):
    from kexec_py import __version__
    r = kexec("-v")
    assert r.code == 0
    assert r.out == "kexec-py %s (kexec-tools compatible)\n" % __version__


def test_panic_load_of_an_entry_drops_its_crashkernel(kexec, root, kernel_path):
    root.bls("with-ck", """
        title Linux
        version 6.9.0
        linux /vmlinuz-6.9.0
        options root=/dev/vda1 crashkernel=256M ro
        """)
    root.write("/boot/vmlinuz-6.9.0", open(kernel_path, "rb").read())
    r = dry(kexec, root, "-p", "--entry", "with-ck", "--append", "nr_cpus=1")
    assert r.code == 0, r
    assert line(r, "cmdline: ") == "cmdline: root=/dev/vda1 ro nr_cpus=1"
    r = dry(kexec, root, "-l", "--entry", "with-ck")
    assert line(r, "cmdline: ") == "cmdline: root=/dev/vda1 crashkernel=256M ro"
