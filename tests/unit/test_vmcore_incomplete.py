"""Dumps cut short - a full file system (a small tmpfs in a private mount namespace), a
size cap (-L) or a cancel - stay readable: marked incomplete, every listed page valid,
exit status 2. When not even the headers fit: exit 1 and no file is left behind."""
import os
import shlex
import subprocess

import pytest

from kexec_py import vmcore
from tests import vmcore_testlib as T


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return T.standard_vmcore(tmp_path_factory.mktemp("incomplete-src"))


def run_on_small_fs(size, args, keep_dir):
    """Run vmcore-copy ARGS ... DUMP with DUMP on a tmpfs of SIZE, mounted in a private
    mount namespace (root: unshare -m; others: unshare -rm); the dump is copied out to
    keep_dir/dump. Returns (returncode, stderr)."""
    mnt = str(keep_dir / "mnt")
    os.makedirs(mnt, exist_ok=True)
    script = ("mount -t tmpfs -o size=%s tmpfs %s || exit 99\n"
              "%s %s %s/dump; rc=$?\n"
              "[ -e %s/dump ] && cp %s/dump %s/dump\n"
              "exit $rc\n") % (size, mnt, shlex.quote(T.executable()),
                               " ".join(shlex.quote(str(a)) for a in args), mnt, mnt, mnt,
                               shlex.quote(str(keep_dir)))
    ns = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    proc = subprocess.run(ns + ["sh", "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode != 99, "cannot mount a tmpfs: %s" % proc.stderr
    return proc.returncode, proc.stderr


def assert_incomplete_but_valid(synth, path, fmt):
    with vmcore.open(path) as d:
        assert d.incomplete and d.format == fmt
        assert d.verify().bad == 0
    present, lost = T.check_with_reader(synth, path, allow_lost=True)
    assert present > 0 and lost > 0
    v = T.run("--verify", path, "--message-level", "2")
    assert v.returncode == 2 and b"marked incomplete" in v.stderr
    return present


@pytest.mark.parametrize("args,fmt", [(["-l", "-d", "1"], "kdump"), (["-d", "0"], "kdump"),
                                      (["-E", "-d", "0"], "elf"),
                                      (["-z", "-d", "1", "--num-threads", "2"], "kdump")])
def test_full_file_system(source, tmp_path, args, fmt):
    synth, src = source
    rc, err = run_on_small_fs("1m", args + ["--message-level", "4", src], tmp_path)
    assert rc == 2, err
    assert "No space left on device" in err and "incomplete" in err
    assert_incomplete_but_valid(synth, str(tmp_path / "dump"), fmt)


def test_no_room_even_for_the_headers(source, tmp_path):
    synth, src = source
    rc, err = run_on_small_fs("64k", ["-d", "0", src], tmp_path)
    assert rc == 1 and "cannot write the dump's headers" in err, err
    assert not (tmp_path / "dump").exists()


@pytest.mark.parametrize("limit", [300000, 1000000, 1800000])
@pytest.mark.parametrize("args,fmt", [(["-l", "-d", "1"], "kdump"), (["-E", "-d", "1"], "elf"),
                                      (["-c", "-d", "0", "--num-threads", "2"], "kdump")])
def test_size_limit(source, tmp_path, args, fmt, limit):
    synth, src = source
    out = tmp_path / "dump"
    proc = T.run(*args, "-L", limit, "--json", "--message-level", "4", src, out)
    assert proc.returncode == 2, proc.stderr
    assert b"size limit of %d bytes reached" % limit in proc.stderr
    assert os.path.getsize(out) <= limit
    stats = __import__("json").loads(proc.stdout)
    assert stats["incomplete"] and stats["exit_status"] == 2
    assert stats["pages_lost"] > 0
    assert stats["pages_written"] + stats["pages_excluded"] + stats["pages_lost"] == \
        stats["pages_in"]
    present = assert_incomplete_but_valid(synth, str(out), fmt)
    assert present == stats["pages_written"] + stats["pages_excluded"]


def test_size_limit_on_a_flattened_stream(source, tmp_path):
    synth, src = source
    stream = T.run("-l", "-d", "1", "-F", "-L", "500000", "--message-level", "0", src).stdout
    T.run("-R", tmp_path / "dump", "--message-level", "0", input=stream, check=0)
    assert os.path.getsize(tmp_path / "dump") <= 500000
    assert_incomplete_but_valid(synth, str(tmp_path / "dump"), "kdump")


def test_size_limit_below_the_headers(source, tmp_path):
    _, src = source
    proc = T.run("-L", "4096", src, tmp_path / "dump")
    assert proc.returncode == 1 and b"headers" in proc.stderr
    assert not (tmp_path / "dump").exists()


def test_python_size_limit_raises_incomplete_with_stats(source, tmp_path):
    synth, src = source
    with pytest.raises(vmcore.IncompleteDumpError) as info:
        vmcore.copy(src, tmp_path / "dump", compression="lzo", size_limit=400000)
    err = info.value
    assert err.exit_code == 2 and err.stats.incomplete and err.stats.pages_lost > 0
    assert str(tmp_path / "dump") in str(err)
    assert_incomplete_but_valid(synth, str(tmp_path / "dump"), "kdump")


@pytest.mark.parametrize("fmt", ["kdump", "elf"])
def test_cancel_from_progress(source, tmp_path, fmt):
    synth, src = source
    seen = []

    def progress(done, total, out):
        seen.append(done)
        return False if done > total // 3 else None

    with pytest.raises(vmcore.IncompleteDumpError) as info:
        vmcore.copy(src, tmp_path / "dump", format=fmt, progress=progress)
    assert "cancelled" in str(info.value)
    assert_incomplete_but_valid(synth, str(tmp_path / "dump"), fmt)


def test_exception_in_progress_is_reraised_after_closing(source, tmp_path):
    synth, src = source

    class Stop(Exception):
        pass

    def progress(done, total, out):
        if done > total // 2:
            raise Stop()

    with pytest.raises(Stop):
        vmcore.copy(src, tmp_path / "dump", compression="zlib", threads=2, progress=progress)
    assert_incomplete_but_valid(synth, str(tmp_path / "dump"), "kdump")
