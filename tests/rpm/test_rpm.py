"""`make rpm` builds a binary RPM from kexec-tools.spec; check what it holds and needs."""
import glob
import os
import shutil
import subprocess

import pytest
import rpmfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def rpm_path():
    if not shutil.which("rpmbuild"):
        pytest.fail("rpmbuild is missing: make test installs it (package rpm / rpm-build)")
    proc = subprocess.run(["make", "-s", "rpm"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 0, proc.stdout[-5000:]
    found = glob.glob(os.path.join(ROOT, "build", "rpm", "RPMS", "*", "kexec-py-*.rpm"))
    assert len(found) == 1, found
    return found[0]


def _names(rpm):
    return [m.name.lstrip(".") for m in rpm.getmembers()]


def test_rpm_holds_kexec_and_the_package_with_its_native_module(rpm_path):
    with rpmfile.open(rpm_path) as rpm:
        names = _names(rpm)
        assert "/usr/sbin/kexec" in names
        init = [n for n in names if n.endswith("/kexec_py/__init__.py")]
        assert len(init) == 1, init
        pkgdir = os.path.dirname(init[0])
        for mod in ("cli/kexec.py", "boot/bls.py", "load/loader.py", "native.py"):
            assert os.path.join(pkgdir, mod) in names
        native = [n for n in names if os.path.dirname(n) == pkgdir
                  and os.path.basename(n).startswith("_native") and n.endswith(".so")]
        assert native, "no compiled _native module in the RPM"
        purgatory = [n for n in names if n.endswith("/kexec_py/data/purgatory.bin")]
        assert purgatory, "the purgatory blob is not in the RPM"
        assert "/usr/sbin/vmcore-copy" in names
        assert "/usr/bin/vmcore-copy" not in names
        tool = rpm.extractfile("./usr/sbin/vmcore-copy").read()
        assert tool.startswith(b"\x7fELF"), "vmcore-copy on PATH must be the C executable"
        script = rpm.extractfile("./usr/sbin/kexec").read()
        assert script.startswith(b"#!/usr/bin/python3"), script[:40]
        assert b"kexec_py.cli.kexec" in script


def test_rpm_requires_python3_cffi_and_conflicts_with_kexec_tools(rpm_path):
    with rpmfile.open(rpm_path) as rpm:
        h = rpm.headers
        requires = [r.decode() if isinstance(r, bytes) else r for r in h.get("requirename")]
        conflicts = h.get("conflictname") or []
        conflicts = [c.decode() if isinstance(c, bytes) else c for c in conflicts]
        name = h.get("name")
    assert "python3-cffi" in requires
    assert "kexec-tools" in conflicts
    assert (name.decode() if isinstance(name, bytes) else name) == "kexec-py"
