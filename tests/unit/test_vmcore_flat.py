"""The flattened format: -F to a pipe, -R back to a file byte-identical to a direct write;
our -R on makedumpfile's -F stream; reading flattened files directly; cut streams."""
import os
import shutil
import subprocess

import pytest

from kexec_py import vmcore
from tests import vmcore_testlib as T

CASES = [["-l", "-d", "1"], ["-z", "-d", "0"], ["-c", "-d", "1"], ["-d", "1"],
         ["-E", "-d", "1"], ["-E", "-d", "0"], ["-l", "-d", "1", "--num-threads", "3"]]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return T.standard_vmcore(tmp_path_factory.mktemp("flat-src"))


@pytest.mark.parametrize("args", CASES, ids=[" ".join(a) for a in CASES])
def test_flattened_then_rearranged_equals_a_direct_write(source, tmp_path, args):
    synth, src = source
    direct, rebuilt = tmp_path / "direct", tmp_path / "rebuilt"
    T.run(*args, "--message-level", "0", src, direct, check=0)
    stream = T.run(*args, "-F", "--message-level", "0", src, check=0).stdout
    assert stream[:12] == b"makedumpfile" and stream[-16:] == b"\xff" * 16
    T.run("-R", rebuilt, "--message-level", "0", input=stream, check=0)
    assert rebuilt.read_bytes() == direct.read_bytes()
    # the stream itself reads as a dump too
    flat = tmp_path / "stream"
    flat.write_bytes(stream)
    with vmcore.open(flat) as d:
        assert d.flattened and d.format == ("elf" if "-E" in args else "kdump")
    T.check_with_reader(synth, str(flat))
    if "-E" not in args:     # drgn (libkdumpfile) reads flattened kdump files directly
        T.check_with_drgn(synth, str(flat))


def test_python_rearrange_equals_the_executable(source, tmp_path):
    _, src = source
    stream = T.run("-l", "-d", "1", "-F", "--message-level", "0", src, check=0).stdout
    (tmp_path / "s").write_bytes(stream)
    size = vmcore.rearrange(str(tmp_path / "s"), str(tmp_path / "py"))
    T.run("-R", tmp_path / "c", "--message-level", "0", input=stream, check=0)
    assert (tmp_path / "py").read_bytes() == (tmp_path / "c").read_bytes()
    assert size == os.path.getsize(tmp_path / "c")


def test_python_copy_to_a_pipe(source, tmp_path):
    synth, src = source
    r, w = os.pipe()
    reader = subprocess.Popen([T.executable(), "-R", str(tmp_path / "out"),
                               "--message-level", "0"], stdin=r)
    os.close(r)
    with os.fdopen(w, "wb") as pipe:
        stats = vmcore.copy(src, pipe, compression="lzo", flattened=True)
    assert reader.wait(60) == 0
    assert stats.flattened and stats.pages_written == len(synth.frames())
    T.check_with_reader(synth, str(tmp_path / "out"))


def test_a_cut_stream_is_an_error_and_the_file_stays_incomplete(source, tmp_path):
    synth, src = source
    stream = T.run("-l", "-d", "1", "-F", "--message-level", "0", src, check=0).stdout
    # without the end record: every byte arrived (the file is whole) but -R says so
    proc = T.run("-R", tmp_path / "noend", input=stream[:-16])
    assert proc.returncode != 0 and b"cut short" in proc.stderr
    with vmcore.open(tmp_path / "noend") as d:
        assert not d.incomplete
    # cut inside the final header rewrite, in the middle, right after the first record
    for cut in (len(stream) - 16 - 100, len(stream) // 2, 4096 + 100):
        out = tmp_path / ("cut%d" % cut)
        proc = T.run("-R", out, input=stream[:cut])
        assert proc.returncode != 0
        assert b"cut short" in proc.stderr or b"ends inside" in proc.stderr, proc.stderr
        if out.exists() and os.path.getsize(out) >= 4096:   # nothing arrived: no file
            with vmcore.open(out) as d:
                assert d.incomplete
            T.check_with_reader(synth, str(out), allow_lost=True)


def test_rearrange_rejects_what_is_not_a_stream(tmp_path):
    proc = T.run("-R", tmp_path / "x", input=b"\x7fELF" + bytes(5000))
    assert proc.returncode == 1 and b"not a flattened dump stream" in proc.stderr


def test_our_rearrange_rebuilds_what_makedumpfile_flattened(source, tmp_path):
    synth, src = source
    assert shutil.which("makedumpfile"), "makedumpfile is missing: tools/install-deps.sh"
    peer = subprocess.run(["makedumpfile", "-F", "-l", "-d", "1", src], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    assert peer.returncode == 0, peer.stderr[-2000:]
    T.run("-R", tmp_path / "ours", input=peer.stdout, check=0)
    theirs = subprocess.run(["makedumpfile", "-R", str(tmp_path / "theirs")],
                            input=peer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert theirs.returncode == 0
    assert (tmp_path / "ours").read_bytes() == (tmp_path / "theirs").read_bytes()
    T.run("--verify", tmp_path / "ours", "--message-level", "0", check=0)
    with vmcore.open(tmp_path / "ours") as d:
        assert d.compression == "lzo" and not d.incomplete
        # makedumpfile leaves a few frames out; the rest must equal the source
        listed = set(d.pages())
        assert len(listed) > 0.99 * len(synth.frames())
        for pfn in listed:
            assert d.read_page(pfn) == synth.page(pfn)


@pytest.mark.parametrize("args", [["-l", "-d", "1"], ["-E", "-d", "1"]])
def test_makedumpfile_rearranges_our_stream_into_the_same_file(source, tmp_path, args):
    _, src = source
    assert shutil.which("makedumpfile"), "makedumpfile is missing: tools/install-deps.sh"
    stream = T.run(*args, "-F", "--message-level", "0", src, check=0).stdout
    peer = subprocess.run(["makedumpfile", "-R", str(tmp_path / "theirs")], input=stream,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert peer.returncode == 0, peer.stderr[-2000:]
    T.run(*args, "--message-level", "0", src, tmp_path / "direct", check=0)
    assert (tmp_path / "theirs").read_bytes() == (tmp_path / "direct").read_bytes()
