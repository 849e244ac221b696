"""Helpers shared by the vmcore tests (unit and VM): building synthetic vmcores once,
running the vmcore-copy executable, and checking dumps against their source with our
reader and with drgn."""
import os
import subprocess

from kexec_py import vmcore
from tests.vmcore_synth import Synth

_CACHE = {}


def executable():
    path = vmcore.executable()
    assert os.access(path, os.X_OK), "%s is not built (pip install -e .)" % path
    return path


def standard_vmcore(directory):
    """(Synth, path) of the standard layout, written once per directory."""
    key = ("standard", str(directory))
    if key not in _CACHE:
        s = Synth.standard()
        _CACHE[key] = (s, s.write(os.path.join(str(directory), "standard.vmcore")))
    return _CACHE[key]


def run(*args, input=None, stdout=subprocess.PIPE, check=None, env=None):
    """Run vmcore-copy; returns the CompletedProcess (bytes)."""
    proc = subprocess.run([executable()] + [str(a) for a in args], input=input,
                          stdout=stdout, stderr=subprocess.PIPE, env=env)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stderr.decode()[-2000:])
    return proc


def check_with_reader(synth, path, allow_lost=False):
    """Every frame our reader lists equals the source; every RAM frame is listed.
    Returns (present, lost) frame counts."""
    present = lost = 0
    with vmcore.open(path) as d:
        for pfn in synth.frames():
            try:
                page = d.read_page(pfn)
            except vmcore.PageNotInDump:
                # kdump marks lost frames; an ELF dump cut short just ends
                assert allow_lost, "frame %#x missing from a complete dump" % pfn
                lost += 1
                continue
            assert page == synth.page(pfn), "frame %#x differs in %s" % (pfn, path)
            present += 1
    return present, lost


def check_with_drgn(synth, path):
    """drgn reads every RAM byte of the dump and it equals the source."""
    import drgn
    prog = drgn.Program()
    prog.set_core_dump(path)
    for start, end in synth.ram_spans():
        step = 1 << 20
        for a in range(start, end, step):
            n = min(step, end - a)
            got = prog.read(a, n, True)
            if got != synth.read(a, n):
                for i in range(0, n, 4096):
                    assert got[i:i + 4096] == synth.read(a + i, min(4096, n - i)), \
                        "%s: drgn reads different bytes at %#x" % (path, a + i)
