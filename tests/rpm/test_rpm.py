"""`make rpm` builds a binary RPM from kexec-tools.spec; check what it holds and needs."""
import os
import subprocess

import rpmfile

# The build (rpm_path) is a session fixture in conftest.py, shared with the other tests.


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


def _strs(values):
    return [v.decode() if isinstance(v, bytes) else v for v in (values or [])]


def _deps(h, name_tag, version_tag):
    return dict(zip(_strs(h.get(name_tag)), _strs(h.get(version_tag))))


def _vercmp(a, b):
    """rpm's version comparison, enough for dotted numbers: -1, 0 or 1."""
    pa = [int(x) for x in a.replace("-", ".").split(".")]
    pb = [int(x) for x in b.replace("-", ".").split(".")]
    return (pa > pb) - (pa < pb)


def test_rpm_requires_python3_cffi_and_replaces_kexec_tools_and_kdump_utils(rpm_path):
    with rpmfile.open(rpm_path) as rpm:
        h = rpm.headers
        requires = _strs(h.get("requirename"))
        provides = _deps(h, "provides", "provideversion")
        obsoletes = _deps(h, "obsoletes", "obsoleteversion")
        conflicts = _strs(h.get("conflicts") or h.get("conflictname"))
        name = _strs([h.get("name")])[0]
    assert name == "kexec-py"
    assert "python3-cffi" in requires
    # Packages that need kexec-tools (kdump-utils asks for >= 2.0.28-8) accept it, and
    # it replaces an installed kexec-tools or kdump-utils instead of conflicting.
    for replaced in ("kexec-tools", "kdump-utils"):
        assert replaced in provides and replaced in obsoletes, (provides, obsoletes)
        assert provides[replaced] == obsoletes[replaced]
    assert _vercmp(provides["kexec-tools"], "2.0.28-8") > 0
    assert "kexec-tools" not in conflicts


def test_rpm_ships_kdump_with_its_configuration(rpm_path):
    with rpmfile.open(rpm_path) as rpm:
        conf = rpm.extractfile("./etc/kdump.conf").read().decode()
        unit = rpm.extractfile("./usr/lib/systemd/system/kdump.service").read().decode()
    flags = dict(line.split(" ", 1)[::-1] for line in subprocess.check_output(
        ["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm_path],
        universal_newlines=True, stderr=subprocess.DEVNULL).splitlines())
    scripts = subprocess.check_output(["rpm", "-qp", "--scripts", rpm_path],
                                      universal_newlines=True, stderr=subprocess.DEVNULL)
    for path in ("/usr/bin/kdumpctl", "/usr/sbin/mkdumprd", "/etc/kdump.conf",
                 "/etc/sysconfig/kdump", "/etc/kdump/pre.d", "/etc/kdump/post.d",
                 "/etc/kdump/emergency.d", "/usr/lib/systemd/system/kdump.service",
                 "/usr/lib/kernel/install.d/60-kdump.install",
                 "/usr/lib/kernel/install.d/92-crashkernel.install",
                 "/usr/lib/udev/rules.d/98-kexec.rules", "/usr/lib/udev/kdump-udev-throttler",
                 "/var/crash", "/var/lib/kdump"):
        assert path in flags, path
    assert "/etc/rc.d/init.d/kdump" not in flags     # systemd hosts: the unit only
    active = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert active == ["auto_reset_crashkernel yes", "path /var/crash",
                      "core_collector makedumpfile -l --message-level 7 -d 31"]
    assert "ExecStart=/usr/bin/kdumpctl start" in unit
    for path in ("/etc/kdump.conf", "/etc/sysconfig/kdump"):
        assert "c" in flags[path] and "n" in flags[path], (path, flags[path])
    for scriptlet in ("postinstall", "preuninstall", "postuninstall"):
        assert "%s scriptlet" % scriptlet in scripts
    assert scripts.count("kdump.service") >= 3, scripts
