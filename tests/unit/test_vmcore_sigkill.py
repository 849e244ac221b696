"""A dump is never taken for complete unless it is (issue 11, item 3).

vmcore-copy is killed with SIGKILL at random moments of a copy (kdump-compressed with
zlib at -d 0, lzo at -d 1, ELF at -d 0 and -d 1, and copies capped with -L) until 12
kills have landed inside a copy (at most 36 tries per form), and what it left behind is
judged:

- a file our reader opens must be marked incomplete (the kdump header's flag, ELF
  e_flags bit 0), and `vmcore-copy --verify` exits 2 and says so;
- a file it refuses (reserved zeros, an ELF header whose segments were never listed)
  must be refused by --verify, drgn and crash too.

Nothing may open as a complete dump unless the process finished. The writers make
this hold by writing the complete header last, after fdatasync.
"""
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from kexec_py import vmcore
from tests import vmcore_testlib as T
from tests.vmcore_synth import RELEASE, Synth

KILLS = 12          # random moments per form
FORMS = {
    "kdump-zlib-d0": ["-z", "-d", "0"],
    "kdump-lzo-d1": ["-l", "-d", "1"],
    "elf-d0": ["-E", "-d", "0"],
    "elf-d1": ["-E", "-d", "1"],
    "kdump-lzo-d1-L": ["-l", "-d", "1", "-L", None],
    "elf-d0-L": ["-E", "-d", "0", "-L", None],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("sigkill")
    return Synth.mixed(192 << 20).write(str(d / "vmcore"))


def _copy_time(src, args, out):
    t = time.monotonic()
    T.run("--message-level", "0", *args, src, out, check=0)
    took = time.monotonic() - t
    os.unlink(out)
    return took


def _marked_incomplete(path):
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:8] == b"KDUMP   ":
        return bool(int.from_bytes(head[424:428], "little") & 0x8)    # DUMP_DH_..._INCOMPLETE
    if head[:4] == b"\x7fELF":
        return bool(int.from_bytes(head[48:52], "little") & 1)
    return False


def _refused_by_everyone(path):
    """--verify, drgn and crash refuse the file too."""
    proc = T.run("--verify", path)
    assert proc.returncode == 1, proc.stderr
    import drgn
    prog = drgn.Program()
    try:
        prog.set_core_dump(path)
        opened = True
    except Exception:
        opened = False
    if opened:      # an ELF header with no segments: drgn may attach, but holds no memory
        with pytest.raises(drgn.FaultError):
            prog.read(0x1000000, 4096, True)
    out = subprocess.run(["crash", "--osrelease", path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert out.stdout.strip() != RELEASE, "crash takes a killed copy for a dump"


@pytest.mark.parametrize("form", list(FORMS))
def test_a_killed_copy_never_passes_for_complete(source, tmp_path, form):
    assert shutil.which("crash"), "crash is missing: tools/install-deps.sh"
    rng = random.Random(form)
    src_size = os.path.getsize(source)
    args = list(FORMS[form])
    # the shortest of three copies: kills drawn within it land inside a copy
    base = min(_copy_time(source, [a if a is not None else str(src_size * 2) for a in args],
                          str(tmp_path / "timing")) for _ in range(3))
    seen = {"finished": 0, "marked": 0, "refused": 0, "capped": 0}
    for i in range(3 * KILLS):
        if seen["marked"] + seen["refused"] >= KILLS:
            break
        run_args = [a if a is not None else str(rng.randrange(1 << 20, src_size // 2))
                    for a in args]
        out = str(tmp_path / ("out%d" % i))
        proc = subprocess.Popen([T.executable(), "--message-level", "0"] + run_args +
                                [source, out], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, base * 0.9))
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        if rc == 0:                       # it finished first: a complete dump is fine
            seen["finished"] += 1
            assert not _marked_incomplete(out)
            continue
        if "-L" in run_args and rc in (1, 2):
            seen["capped"] += 1           # the cap ended it first (1: not even the headers fit)
        else:
            assert rc == -signal.SIGKILL, rc
        try:
            d = vmcore.open(out) if os.path.exists(out) else None
        except vmcore.VmcoreError:
            d = None
        if d is not None:
            with d:
                assert d.incomplete and _marked_incomplete(out), (form, i, rc)
            seen["marked"] += 1
            v = T.run("--verify", out)
            assert v.returncode == 2 and b"marked incomplete" in v.stderr + v.stdout, v.stderr
        else:
            seen["refused"] += 1
            if os.path.exists(out):
                _refused_by_everyone(out)
        os.unlink(out) if os.path.exists(out) else None
    # the kills must have landed inside copies, not only after them
    assert seen["marked"] + seen["refused"] >= KILLS // 2, seen
