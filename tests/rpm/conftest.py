"""RPM builds shared by the tests in tests/rpm: each is made once per session.

- rpm_path: `make rpm`, the package as shipped (release 1).
- rpm_v2_path: the same sources with one more comment line in packaging/kdump.conf,
  built as release 2 (for the upgrade test: a changed shipped config).
- rpm_root: a fresh, empty RPM root to install into (rpm --root), with a static busybox
  as /bin/sh when one is available so that the scriptlets run too.
Each rpmbuild compiles the C parts (about 20-25 s on 2 cores).
"""
import glob
import io
import os
import shutil
import subprocess
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V2_MARKER = "# kexec-py test: this line exists only in release 2\n"
# Debian's rpm keeps its database in ~/.rpmdb; name one inside the root on every system.
DBPATH = "/var/lib/rpm"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/rpm/" in str(item.fspath):
            item.add_marker(pytest.mark.rpm)


def _need_rpmbuild():
    if not shutil.which("rpmbuild"):
        pytest.fail("rpmbuild is missing: make test installs it (package rpm / rpm-build)")


def _run(cmd, **kw):
    proc = subprocess.run(cmd, cwd=kw.pop("cwd", ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, **kw)
    assert proc.returncode == 0, "%s\n%s" % (cmd, proc.stdout[-5000:])
    return proc.stdout


@pytest.fixture(scope="session")
def rpm_path():
    _need_rpmbuild()
    _run(["make", "-s", "rpm"])
    found = glob.glob(os.path.join(ROOT, "build", "rpm", "RPMS", "*", "kexec-py-*.rpm"))
    assert len(found) == 1, found
    return found[0]


def _sdist_with_v2_kdump_conf(sdist, outdir):
    """A copy of the sdist whose packaging/kdump.conf has V2_MARKER appended."""
    os.makedirs(outdir, exist_ok=True)
    out = os.path.join(outdir, os.path.basename(sdist))
    changed = 0
    with tarfile.open(sdist, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.isfile() and member.name.endswith("/packaging/kdump.conf"):
                data += V2_MARKER.encode()
                member.size = len(data)
                changed += 1
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    assert changed == 1, "packaging/kdump.conf not found in %s" % sdist
    return out


@pytest.fixture(scope="session")
def rpm_v2_path(rpm_path):
    version = subprocess.check_output(
        ["sed", "-n", r"s/^Version: *//p", "kexec-tools.spec"], cwd=ROOT,
        universal_newlines=True).strip()
    sdist = os.path.join(ROOT, "dist", "kexec_py-%s.tar.gz" % version)
    work = os.path.join(ROOT, "build", "rpm-v2")
    shutil.rmtree(work, ignore_errors=True)
    distdir = os.path.join(work, "dist")
    _sdist_with_v2_kdump_conf(sdist, distdir)
    _run(["sh", "tools/build-rpm.sh", distdir, os.path.join(work, "top"),
          "--define", "release_number 2"])
    found = glob.glob(os.path.join(work, "top", "RPMS", "*", "kexec-py-*-2*.rpm"))
    assert len(found) == 1, found
    return found[0]


class RpmRoot:
    """rpm --root DIR with its own database; scriptlets run when DIR has a /bin/sh."""

    def __init__(self, path):
        self.path = path
        self.scripts = False
        busybox = shutil.which("busybox")
        if busybox and _is_static(busybox):
            bindir = os.path.join(path, "bin")
            os.makedirs(bindir)
            shutil.copy2(busybox, os.path.join(bindir, "busybox"))
            # What the scriptlets call besides shell built-ins. No systemctl: the
            # scriptlets must cope without it.
            for applet in ("sh", "touch"):
                os.symlink("busybox", os.path.join(bindir, applet))
            self.scripts = True
        self.run("--initdb")

    def run(self, *args, check=True):
        cmd = ["rpm", "--root", self.path, "--dbpath", DBPATH] + list(args)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        if check:
            assert proc.returncode == 0, "%s: %s%s" % (cmd, proc.stdout, proc.stderr)
        return proc

    def install(self, *args):
        extra = [] if self.scripts else ["--noscripts"]
        return self.run(*(list(args[:-1]) + ["--nodeps"] + extra + [args[-1]]))

    def join(self, path):
        return os.path.join(self.path, path.lstrip("/"))


def _is_static(path):
    """An ELF64 executable without a PT_INTERP program header (no dynamic loader)."""
    import struct
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


@pytest.fixture
def rpm_root(tmp_path):
    return RpmRoot(str(tmp_path / "root"))
