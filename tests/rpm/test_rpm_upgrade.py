"""Install, upgrade and erase the RPM in a temporary root (rpm --root), as an admin would.

Release 1 is installed, /etc/kdump.conf edited, then release 2 (whose shipped kdump.conf
differs) installed over it: the edit must survive, the new default lands in
kdump.conf.rpmnew, modes and `rpm -V` stay right. Nothing touches the host's /etc or
its RPM database.
"""
import os
import stat
import time

from .conftest import V2_MARKER

EXECUTABLES = ("/usr/sbin/kexec", "/usr/sbin/vmcore-copy", "/usr/sbin/vmcore-dmesg",
               "/usr/sbin/mkdumprd", "/usr/bin/kdumpctl",
               "/usr/lib/kernel/install.d/60-kdump.install",
               "/usr/lib/kernel/install.d/92-crashkernel.install",
               "/usr/lib/udev/kdump-udev-throttler")
PLAIN_FILES = ("/etc/kdump.conf", "/etc/sysconfig/kdump",
               "/usr/lib/systemd/system/kdump.service", "/usr/lib/udev/rules.d/98-kexec.rules")
DIRECTORIES = ("/etc/kdump", "/etc/kdump/pre.d", "/etc/kdump/post.d", "/etc/kdump/emergency.d",
               "/var/crash", "/var/lib/kdump")


def _check_modes(root):
    for path in EXECUTABLES:
        st = os.lstat(root.join(path))
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, path
    for path in PLAIN_FILES:
        st = os.lstat(root.join(path))
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644, path
    for path in DIRECTORIES:
        st = os.lstat(root.join(path))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, path


def test_upgrade_keeps_an_edited_kdump_conf_and_verifies_clean(rpm_root, rpm_path, rpm_v2_path):
    root = rpm_root
    before = time.time()
    root.install("-i", rpm_path)
    assert root.run("-q", "--qf", "%{VERSION}-%{RELEASE}", "kexec-py").stdout == "0.1.0-1"
    _check_modes(root)
    conf = root.join("/etc/kdump.conf")
    if root.scripts:
        # %post ran in the root without systemctl, and touched kdump.conf so that the
        # next kdumpctl start rebuilds the capture initramfs.
        assert os.stat(conf).st_mtime >= before - 1
    assert root.run("-V", "--nodeps", "kexec-py", check=False).stdout == ""

    with open(conf) as f:
        shipped = f.read()
    assert "\npath /var/crash\n" in shipped
    edited = shipped.replace("\npath /var/crash\n", "\npath /srv/crash\n")
    with open(conf, "w") as f:
        f.write(edited)

    root.install("-U", rpm_v2_path)
    assert root.run("-q", "--qf", "%{VERSION}-%{RELEASE}", "kexec-py").stdout == "0.1.0-2"
    with open(conf) as f:
        assert f.read() == edited
    with open(conf + ".rpmnew") as f:
        assert f.read() == shipped + V2_MARKER
    # sysconfig did not change between the releases and was not edited: no .rpmnew
    assert not os.path.exists(root.join("/etc/sysconfig/kdump.rpmnew"))
    _check_modes(root)

    verify = root.run("-V", "--nodeps", "kexec-py", check=False)
    lines = verify.stdout.splitlines()
    assert len(lines) == 1, verify.stdout
    attrs, kind, path = lines[0].split()
    assert (kind, path) == ("c", "/etc/kdump.conf")
    assert "5" in attrs and "T" not in attrs, attrs   # content changed; mtime not verified
    assert verify.returncode == 1

    provides = root.run("-q", "--provides", "kexec-py").stdout.split("\n")
    assert any(p.startswith("kexec-tools = ") for p in provides), provides
    assert any(p.startswith("kdump-utils = ") for p in provides), provides
    obsoletes = root.run("-q", "--obsoletes", "kexec-py").stdout
    assert "kexec-tools < " in obsoletes and "kdump-utils < " in obsoletes

    # Erase: the edited config is kept as .rpmsave, the programs go.
    root.run("-e", "--nodeps", *([] if root.scripts else ["--noscripts"]), "kexec-py")
    assert not os.path.exists(root.join("/usr/sbin/kexec"))
    with open(conf + ".rpmsave") as f:
        assert f.read() == edited
