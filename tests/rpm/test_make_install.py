"""`make install DESTDIR=...` installs exactly what the RPM installs, with the same modes.

One wheel build (the C parts compile, about 15 s), installed into a temporary DESTDIR
with the Python the spec uses; nothing is installed on the host.
"""
import os
import stat
import subprocess
import sys

import pytest

from .conftest import ROOT, _run

# Everything outside the Python package, with its mode (ls -l style).
EXPECTED = {
    "/etc/kdump": "drwxr-xr-x",
    "/etc/kdump.conf": "-rw-r--r--",
    "/etc/kdump/emergency.d": "drwxr-xr-x",
    "/etc/kdump/post.d": "drwxr-xr-x",
    "/etc/kdump/pre.d": "drwxr-xr-x",
    "/etc/sysconfig/kdump": "-rw-r--r--",
    "/usr/bin/kdumpctl": "-rwxr-xr-x",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump": "drwxr-xr-x",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump/kdump-capture-hook.sh": "-rwxr-xr-x",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump/kdump-capture.sh": "-rwxr-xr-x",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump/kdump-init.sh": "-rwxr-xr-x",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump/kdump-root.sh": "-rwxr-xr-x",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump/module-setup.sh": "-rwxr-xr-x",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump/kexec-py-kdump.target": "-rw-r--r--",
    "/usr/lib/dracut/modules.d/99kexec-py-kdump/kexec-py-kdump-capture.service": "-rw-r--r--",
    "/usr/lib/kernel/install.d/60-kdump.install": "-rwxr-xr-x",
    "/usr/lib/kernel/install.d/92-crashkernel.install": "-rwxr-xr-x",
    "/usr/lib/systemd/system/kdump.service": "-rw-r--r--",
    "/usr/lib/udev/kdump-udev-throttler": "-rwxr-xr-x",
    "/usr/lib/udev/rules.d/98-kexec.rules": "-rw-r--r--",
    "/usr/sbin/kexec": "-rwxr-xr-x",
    "/usr/sbin/mkdumprd": "-rwxr-xr-x",
    "/usr/sbin/vmcore-copy": "-rwxr-xr-x",
    "/usr/sbin/vmcore-dmesg": "-rwxr-xr-x",
    "/var/crash": "drwxr-xr-x",
    "/var/lib/kdump": "drwxr-xr-x",
}
# Directories that belong to the system (filesystem, systemd, udev, python3 packages).
SYSTEM_DIRS = {"/etc", "/etc/sysconfig", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib",
               "/usr/lib/kernel", "/usr/lib/kernel/install.d", "/usr/lib/dracut",
               "/usr/lib/dracut/modules.d", "/usr/lib/systemd",
               "/usr/lib/systemd/system", "/usr/lib/udev", "/usr/lib/udev/rules.d",
               "/var", "/var/lib"}


def _python():
    # The spec's %{__python3}; a venv's interpreter would install into its own layout.
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def _tree(top):
    """{path: ls-style mode} of everything under top, as absolute paths below it."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out["/" + os.path.relpath(full, top)] = stat.filemode(os.lstat(full).st_mode)
    return out


def _in_python_package(path):
    parts = path.split("/")
    return any(p == "kexec_py" or (p.startswith("kexec_py-") and p.endswith(".dist-info"))
               for p in parts)


def _python_dirs(path):
    """The site directory and its parents (/usr/lib/python3/dist-packages, ...)."""
    return path.startswith("/usr/lib/python3") or path.startswith("/usr/lib64/python3")


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("destdir"))
    _run(["make", "-s", "install", "DESTDIR=" + d, "PYTHON=" + _python()])
    return d


def test_make_install_installs_exactly_the_expected_files(destdir):
    tree = _tree(destdir)
    ours = {p: m for p, m in tree.items()
            if not _in_python_package(p) and p not in SYSTEM_DIRS and not _python_dirs(p)}
    assert ours == EXPECTED
    pkg = [p for p in tree if p.endswith("/kexec_py/cli/kdumpctl.py")]
    assert len(pkg) == 1, pkg
    # the capture image's module loader stays in the package, off PATH
    assert [p for p in tree if p.endswith("/kexec_py/libexec/kdump-insmod")], "kdump-insmod"
    for path in ("/usr/bin/kdumpctl", "/usr/sbin/mkdumprd", "/usr/sbin/kexec"):
        with open(destdir + path, "rb") as f:
            head = f.read(200)
        assert head.startswith(b"#!") and b"kexec_py.cli." in head, (path, head)
    for path in ("/usr/sbin/vmcore-copy", "/usr/sbin/vmcore-dmesg"):
        with open(destdir + path, "rb") as f:
            assert f.read(4) == b"\x7fELF", path
    assert not [p for p in tree if p.endswith("direct_url.json")]


def test_make_install_matches_the_rpm(destdir, rpm_path):
    listing = subprocess.check_output(
        ["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", rpm_path],
        universal_newlines=True, stderr=subprocess.DEVNULL)
    rpm = dict(line.split(" ", 1)[::-1] for line in listing.splitlines())
    tree = _tree(destdir)
    for path, mode in rpm.items():
        assert tree.get(path) == mode, (path, mode, tree.get(path))
    # Every file make installs is in the RPM; the directories it holds beyond the
    # RPM's own are the system's.
    extra = [p for p, m in tree.items() if p not in rpm and not m.startswith("d")]
    assert extra == []
    extra_dirs = [p for p, m in tree.items() if p not in rpm and m.startswith("d")]
    assert all(p in SYSTEM_DIRS or _python_dirs(p) for p in extra_dirs), extra_dirs


def test_reinstall_keeps_a_changed_config_and_puts_the_default_beside_it(destdir, tmp_path):
    d = str(tmp_path / "again")
    os.makedirs(d + "/etc")
    with open(d + "/etc/kdump.conf", "w") as f:
        f.write("path /srv/crash\n")
    _run(["make", "-s", "install-files", "DESTDIR=" + d])
    with open(d + "/etc/kdump.conf") as f:
        assert f.read() == "path /srv/crash\n"
    with open(d + "/etc/kdump.conf.new") as f, \
            open(os.path.join(ROOT, "packaging", "kdump.conf")) as shipped:
        assert f.read() == shipped.read()
    assert not os.path.exists(d + "/etc/sysconfig/kdump.new")


def test_install_sysv_adds_the_init_script_and_prefix_reaches_the_scripts(tmp_path):
    d = str(tmp_path / "sysv")
    _run(["make", "-s", "install-sysv", "install-files", "DESTDIR=" + d, "PREFIX=/opt/kp",
          "UNITDIR=/opt/kp/lib/systemd/system"])
    init = d + "/etc/rc.d/init.d/kdump"
    assert stat.filemode(os.stat(init).st_mode) == "-rwxr-xr-x"
    with open(init) as f:
        assert "KDUMPCTL=${KDUMPCTL:-/opt/kp/bin/kdumpctl}" in f.read()
    with open(d + "/opt/kp/lib/systemd/system/kdump.service") as f:
        assert "ExecStart=/opt/kp/bin/kdumpctl start" in f.read()
    with open(d + "/opt/kp/lib/udev/rules.d/98-kexec.rules") as f:
        assert "/opt/kp/lib/udev/kdump-udev-throttler" in f.read()
