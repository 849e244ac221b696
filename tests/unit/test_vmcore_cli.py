"""vmcore-copy as a shell user and the capture initramfs see it: options, messages,
exit statuses, progress output, --json and --verify; bad input and destinations."""
import json
import os
import pty
import struct
import subprocess

import pytest

from kexec_py import native, vmcore
from tests import vmcore_testlib as T


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return T.standard_vmcore(tmp_path_factory.mktemp("cli-src"))


def test_help_and_version():
    out = T.run("--help", check=0).stdout.decode()
    for opt in ("-c, -l, -z, -p", "-E", "-F", "-R DUMPFILE", "-d LEVEL", "--num-threads",
                "-L SIZE", "--message-level", "--verify", "--json"):
        assert opt in out
    assert T.run("-v", check=0).stdout.startswith(b"vmcore-copy")


@pytest.mark.parametrize("args", [[], ["onlyone"], ["-d", "32", "a", "b"], ["-d", "x", "a", "b"],
                                  ["-l", "-c", "a", "b"], ["--bogus", "a", "b"],
                                  ["--num-threads", "-1", "a", "b"], ["-L", "12Q", "a", "b"],
                                  ["-F", "a", "b"], ["-R", "x", "extra"]])
def test_usage_errors_exit_1(args):
    proc = T.run(*args)
    assert proc.returncode == 1 and b"Usage:" in proc.stderr


@pytest.mark.parametrize("level", [2, 4, 8, 16, 17, 31])
def test_dump_levels_name_the_vmcoreinfo_key_they_miss(source, tmp_path, level):
    # the standard synthetic vmcore has no SPARSEMEM facts: levels 2-31 cannot classify
    proc = T.run("-d", level, source[1], tmp_path / "d")
    assert proc.returncode == 1
    assert b"dump level %d needs SYMBOL(mem_section) in VMCOREINFO" % level in proc.stderr
    assert not (tmp_path / "d").exists()
    proc = T.run("-E", "-d", level, source[1], tmp_path / "d")
    assert proc.returncode == 1
    assert b"dump level %d needs SYMBOL(mem_section) in VMCOREINFO" % level in proc.stderr
    assert not (tmp_path / "d").exists()


def test_not_an_elf_file(tmp_path):
    bad = tmp_path / "notelf"
    bad.write_bytes(b"hello world" * 100)
    proc = T.run(bad, tmp_path / "d")
    assert proc.returncode == 1
    assert b"notelf" in proc.stderr and b"not an ELF file" in proc.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("keep", [100, 64 + 56 * 2, 8192, 3 << 20])
def test_truncated_vmcore(source, tmp_path, keep):
    data = open(source[1], "rb").read()[:keep]
    cut = tmp_path / "cut.vmcore"
    cut.write_bytes(data)
    proc = T.run("-l", cut, tmp_path / "d")
    assert proc.returncode == 1, proc.stderr
    assert b"truncated" in proc.stderr or b"shorter than an ELF header" in proc.stderr
    assert not (tmp_path / "d").exists()
    with pytest.raises(vmcore.DumpFormatError) as info:
        vmcore.copy(cut, tmp_path / "py")
    assert str(cut) in str(info.value)
    if keep > 64 + 56 * 8:
        assert info.value.offset == keep and ("%#x" % keep) in str(info.value)


def test_elf32_and_big_endian_are_refused_clearly(source, tmp_path):
    data = bytearray(open(source[1], "rb").read(1 << 16))
    for patch, text in (((4, 1), b"only 64-bit"), ((5, 2), b"big-endian")):
        bad = bytearray(data)
        bad[patch[0]] = patch[1]
        path = tmp_path / "bad"
        path.write_bytes(bytes(bad))
        proc = T.run(path, tmp_path / "d")
        assert proc.returncode == 1 and text in proc.stderr


def test_not_a_core_file(source, tmp_path):
    data = bytearray(open(source[1], "rb").read(1 << 16))
    struct.pack_into("<H", data, 16, 2)       # ET_EXEC
    (tmp_path / "exe").write_bytes(bytes(data))
    proc = T.run(tmp_path / "exe", tmp_path / "d")
    assert proc.returncode == 1 and b"not an ELF core file" in proc.stderr


def test_missing_input(tmp_path):
    proc = T.run(tmp_path / "nope", tmp_path / "d")
    assert proc.returncode == 1 and b"cannot open" in proc.stderr


def test_unwritable_destinations(source, tmp_path):
    _, src = source
    proc = T.run(src, tmp_path / "no" / "such" / "dir" / "d")
    assert proc.returncode == 1 and b"cannot create" in proc.stderr
    proc = T.run(src, "/proc/version")
    assert proc.returncode == 1
    ro = tmp_path / "ro"
    ro.mkdir()
    script = "mount -t tmpfs -o ro tmpfs %s && %s %s %s/d" % (ro, T.executable(), src, ro)
    ns = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    proc = subprocess.run(ns + ["sh", "-c", script], stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"Read-only file system" in proc.stderr


def test_existing_destination_needs_f(source, tmp_path):
    _, src = source
    out = tmp_path / "d"
    out.write_bytes(b"keep me")
    proc = T.run(src, out)
    assert proc.returncode == 1 and b"already exists" in proc.stderr
    assert out.read_bytes() == b"keep me"
    T.run("-f", "--message-level", "0", src, out, check=0)
    with vmcore.open(out) as d:
        assert not d.incomplete


def test_new_dumps_are_private(source, tmp_path):
    T.run("--message-level", "0", source[1], tmp_path / "d", check=0)
    assert os.stat(tmp_path / "d").st_mode & 0o777 == 0o600


def test_json_stats(source, tmp_path):
    synth, src = source
    proc = T.run("-l", "-d", "1", "--json", "--message-level", "0", src, tmp_path / "d",
                 check=0)
    st = json.loads(proc.stdout)
    frames = len(synth.frames())
    assert st["pages_in"] == frames == st["pages_written"]
    assert st["pages_zero"] == len(synth.zero_frames())
    assert st["pages_excluded"] == st["pages_lost"] == 0
    assert st["bytes_out"] > 0 and st["file_size"] == os.path.getsize(tmp_path / "d")
    assert st["seconds"] >= 0 and st["incomplete"] is False and st["exit_status"] == 0
    assert (st["format"], st["compression"], st["dump_level"]) == ("kdump", "lzo", 1)
    elf = json.loads(T.run("-E", "-d", "1", "--json", "--message-level", "0", src,
                           tmp_path / "e", check=0).stdout)
    assert elf["pages_excluded"] > 0
    assert elf["pages_written"] + elf["pages_excluded"] == frames


def test_json_goes_to_stderr_with_a_flattened_stream(source):
    proc = T.run("-F", "--json", "--message-level", "0", source[1], check=0)
    assert proc.stdout[:12] == b"makedumpfile"
    assert json.loads(proc.stderr)["pages_in"] > 0


def test_progress_every_10_percent_when_not_a_terminal(source, tmp_path):
    proc = T.run("-l", source[1], tmp_path / "d", check=0)
    lines = [s for s in proc.stderr.decode().splitlines() if s.startswith("Copying")]
    percents = [int(s.split()[1].rstrip("%")) for s in lines]
    assert percents == sorted(set(percents)) and percents[-1] == 100
    assert 5 <= len(percents) <= 11
    assert "\r" not in proc.stderr.decode()
    assert b"the dump is saved to" in proc.stderr


def test_progress_is_one_updating_line_on_a_terminal(source, tmp_path):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(T.executable(), ["vmcore-copy", "-z", source[1], str(tmp_path / "d")])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = out.decode()
    assert "\r" in text and "100.0%" in text and "MiB/s" in text and "left" in text
    assert text.count("\n") <= 3


def test_message_level_0_is_silent(source, tmp_path):
    proc = T.run("-l", "--message-level", "0", source[1], tmp_path / "d", check=0)
    assert proc.stderr == b"" and proc.stdout == b""
    bad = T.run("--message-level", "0", "-d", "31", source[1], tmp_path / "e")
    assert bad.returncode == 1 and bad.stderr == b""


def test_report_level_16(source, tmp_path):
    proc = T.run("--message-level", "16", source[1], tmp_path / "d", check=0)
    assert b"pages:" in proc.stderr and b"Copying" not in proc.stderr


def test_verify_reports_and_catches_corruption(source, tmp_path):
    synth, src = source
    out = tmp_path / "d"
    T.run("-l", "-d", "1", "--message-level", "0", src, out, check=0)
    ok = T.run("--verify", out, "--json", "--message-level", "2", check=0)
    assert json.loads(ok.stdout) == {"pages": len(synth.frames()), "ok": len(synth.frames()),
                                     "lost": 0, "bad": 0, "incomplete": False}
    # corrupt one compressed page: its bytes no longer decode
    data = bytearray(out.read_bytes())
    bs, sub, bitmap_blocks = struct.unpack_from("<III", data, 428)
    table = (1 + sub + bitmap_blocks) * bs
    for i in range(len(synth.frames())):
        off, size, flags, _ = struct.unpack_from("<QIIQ", data, table + 24 * i)
        if flags == 2:
            data[off:off + size] = b"\xff" * size
            break
    out.write_bytes(bytes(data))
    bad = T.run("--verify", out, "--message-level", "6")
    assert bad.returncode == 1 and b"do not decode" in bad.stderr
    assert ("%#x" % off).encode() in bad.stderr
    with vmcore.open(out) as d:
        st = d.verify()
        assert st.bad == 1 and st.first_bad_offset == off
        with pytest.raises(vmcore.CorruptPageError) as info:
            d.read_page(st.first_bad_pfn)
        assert ("%#x" % off) in str(info.value)


def test_verify_rejects_non_dumps(tmp_path):
    (tmp_path / "x").write_bytes(b"nothing here" * 1000)
    proc = T.run("--verify", tmp_path / "x")
    assert proc.returncode == 1 and b"not a dump" in proc.stderr


def test_read_fallback_gives_the_same_dump(source, tmp_path):
    _, src = source
    T.run("-l", "--message-level", "0", src, tmp_path / "mmap", check=0)
    T.run("-l", "--non-mmap", "--message-level", "0", src, tmp_path / "read", check=0)
    assert (tmp_path / "mmap").read_bytes() == (tmp_path / "read").read_bytes()


def test_flattened_elf_input_is_read_through_its_records(source, tmp_path):
    synth, src = source
    stream = T.run("-E", "-d", "0", "-F", "--message-level", "0", src, check=0).stdout
    (tmp_path / "flat").write_bytes(stream)
    T.run("-l", "--message-level", "0", tmp_path / "flat", tmp_path / "d", check=0)
    T.check_with_reader(synth, str(tmp_path / "d"))


def test_console_script_execs_the_c_executable(source, tmp_path):
    import sys
    script = os.path.join(os.path.dirname(sys.executable), "vmcore-copy")
    assert os.path.exists(script)
    proc = subprocess.run([script, "--version"], stdout=subprocess.PIPE)
    assert proc.returncode == 0 and proc.stdout.startswith(b"vmcore-copy")
    proc = subprocess.run([script, "-d", "31", source[1], str(tmp_path / "x")],
                          stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"needs SYMBOL(mem_section)" in proc.stderr


def test_flattened_reader_going_away_is_reported(source):
    proc = subprocess.Popen([T.executable(), "-F", "-l", source[1]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(10000)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(60) in (1, 2) and b"Broken pipe" in err


def test_snappy_is_opened_at_run_time_not_linked(source, tmp_path):
    """The capture initramfs carries vmcore-copy and everything it links: libsnappy would
    bring libstdc++ (2 MB unpacked in the crash kernel's reserve), so it is dlopen()ed
    when -p is asked for, and -p still works."""
    for tool in ("vmcore-copy", "vmcore-dmesg"):
        libs = subprocess.run(["ldd", vmcore.executable(tool)], stdout=subprocess.PIPE,
                              universal_newlines=True).stdout
        assert "libsnappy" not in libs, libs
        if os.environ.get("KPY_SANITIZE") != "1":       # libasan itself links libstdc++
            assert "libstdc++" not in libs, libs
    if not native.codec_available("snappy"):
        pytest.fail("libsnappy is missing: make test installs libsnappy-dev")
    out = tmp_path / "snappy"
    T.run("-p", "-d", "1", "--message-level", "0", source[1], out, check=0)
    assert T.run("--verify", out, check=0).returncode == 0
