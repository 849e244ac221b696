"""kexec_py.kdump.bootedit: reset-crashkernel's edits of BLS entries, grubenv, GRUB
legacy grub.conf and /etc/default/grub (every test works on a temporary root)."""
import os
import stat
import textwrap

import pytest

from kexec_py.kdump import bootedit as be
from kexec_py.kdump.crashkernel import CrashkernelError
from tests.unit.conftest import FakeRoot

NEW = "2G-64G:256M,64G-:512M"
MID = "0123456789abcdef0123456789abcdef"
V_OLD, V_NEW = "5.14.0-362.el9.x86_64", "5.14.0-427.el9.x86_64"


class Root(FakeRoot):
    def __fspath__(self):
        return self.path


@pytest.fixture
def root(tmp_path):
    r = Root(tmp_path / "root")
    r.write("/proc/sys/kernel/osrelease", V_NEW + "\n")
    r.mkdir("/boot")
    return r


def snapshot(root):
    """Every file under root with its bytes and mode (to prove nothing was written)."""
    out = {}
    for d, _, names in os.walk(root.path):
        for n in names:
            full = os.path.join(d, n)
            if os.path.islink(full):
                out[full] = ("link", os.readlink(full))
            else:
                with open(full, "rb") as f:
                    out[full] = (f.read(), stat.S_IMODE(os.stat(full).st_mode))
    return out


def entry_text(version, options, extra=""):
    return textwrap.dedent("""\
        title Red Hat Enterprise Linux (%(v)s) 9.4 (Plow)
        version %(v)s
        linux /vmlinuz-%(v)s
        initrd /initramfs-%(v)s.img $tuned_initrd
        %(options)s
        grub_users $grub_users
        grub_arg --unrestricted
        grub_class rhel
        """) % {"v": version, "options": options} + extra


RHEL9_OPTS = ("options root=/dev/mapper/rhel-root ro "
              "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M rhgb quiet")


def bls_tree(root, old_opts=RHEL9_OPTS, new_opts=RHEL9_OPTS, saved=None):
    root.bls("%s-%s" % (MID, V_OLD), entry_text(V_OLD, old_opts))
    root.bls("%s-%s" % (MID, V_NEW), entry_text(V_NEW, new_opts))
    root.bls("%s-0-rescue" % MID, entry_text("0-rescue-" + MID,
                                              "options root=/dev/mapper/rhel-root ro"))
    env = {"saved_entry": saved} if saved else {}
    root.grubenv(**env)
    return root


def path_of(root, version):
    return root.p("/boot/loader/entries/%s-%s.conf" % (MID, version))


# the command line editor

@pytest.mark.parametrize("before,after", [
    ("ro quiet", "ro quiet crashkernel=%s" % NEW),
    ("ro crashkernel=auto quiet", "ro crashkernel=%s quiet" % NEW),
    ("ro  crashkernel=128M@16M\tquiet", "ro  crashkernel=%s\tquiet" % NEW),
    ("crashkernel=512M,high ro crashkernel=128M,low quiet", "crashkernel=%s ro quiet" % NEW),
    ("crashkernel=1 ro", "crashkernel=%s ro" % NEW),
    ("ro crashkernel=1", "ro crashkernel=%s" % NEW),
    ("ro -- single", "ro crashkernel=%s -- single" % NEW),
    ("ro -- crashkernel=1", "ro crashkernel=%s -- crashkernel=1" % NEW),
    ("", "crashkernel=%s" % NEW),
    ('ro "acpi_osi=Linux x" quiet ', 'ro "acpi_osi=Linux x" quiet crashkernel=%s ' % NEW),
    ("ro crashkernel=%s" % NEW, "ro crashkernel=%s" % NEW),
])
def test_set_param(before, after):
    assert be.set_param(before, NEW) == after
    assert be.set_param(after, NEW) == after


def test_values_in():
    assert be.values_in("a crashkernel=1 b crashkernel=2,low -- crashkernel=3") == ["1", "2,low"]
    assert be.values_in('x "crashkernel=4"') == ["4"]


# BLS

def test_bls_default_entry_only(root):
    bls_tree(root)
    before = snapshot(root)
    edits = be.plan_reset(root, NEW)                       # DEFAULT: the newest entry
    assert snapshot(root) == before                        # planning writes nothing
    assert [e.path for e in edits] == [path_of(root, V_NEW)]
    e = edits[0]
    assert e.kind == "bls" and [x.kernel for x in e.entries] == ["/boot/vmlinuz-" + V_NEW]
    rel = "boot/loader/entries/%s-%s.conf" % (MID, V_NEW)
    assert e.diff().splitlines()[:2] == ["--- a/" + rel, "+++ b/" + rel]
    assert "-options root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M" in e.diff()
    assert ("+options root=/dev/mapper/rhel-root ro crashkernel=%s rhgb quiet" % NEW) in e.diff()
    old = open(e.path, "rb").read()
    os.chmod(e.path, 0o600)
    be.apply(edits)
    assert open(e.path).read() == e.new
    assert open(e.path + ".kdump-bak", "rb").read() == old
    assert stat.S_IMODE(os.stat(e.path).st_mode) == 0o600
    assert not [n for n in os.listdir(os.path.dirname(e.path)) if n.endswith(".tmp")]
    assert be.plan_reset(root, NEW) == []                  # idempotent
    assert be.current_values(root, "DEFAULT")[0].crashkernel == NEW


def test_bls_default_follows_saved_entry_and_all(root):
    bls_tree(root, saved="%s-%s" % (MID, V_OLD))
    assert [e.path for e in be.plan_reset(root, NEW)] == [path_of(root, V_OLD)]
    edits = be.plan_reset(root, NEW, kernel="ALL")
    assert len(edits) == 3
    rescue = [e for e in edits if "rescue" in e.path][0]
    assert rescue.new.splitlines()[4] == "options root=/dev/mapper/rhel-root ro crashkernel=" + NEW
    be.apply(edits)
    assert be.plan_reset(root, NEW, kernel="ALL") == []
    assert {v.crashkernel for v in be.current_values(root, "ALL")} == {NEW}


@pytest.mark.parametrize("spec", ["/boot/vmlinuz-" + V_OLD, "/vmlinuz-" + V_OLD, V_OLD])
def test_bls_kernel_path(root, spec):
    bls_tree(root)
    edits = be.plan_reset(root, NEW, kernel=spec)
    assert [e.path for e in edits] == [path_of(root, V_OLD)]


def test_bls_unknown_kernel(root):
    bls_tree(root)
    with pytest.raises(be.BootEditError) as e:
        be.plan_reset(root, NEW, kernel="/boot/vmlinuz-9.9")
    assert str(e.value) == ("Invalid --kernel=/boot/vmlinuz-9.9, please specify a valid "
                            "kernel path, ALL or DEFAULT")
    assert e.value.exit_code == 1


def test_bls_bytes_preserved(root):
    text = ("# a comment \xe9 kept\r\ntitle T\nversion %s\nlinux /vmlinuz-%s\n"
            "options  root=/dev/sda1   ro\nOPTIONS not-an-options-line\n"
            "options\tcrashkernel=512M,high quiet\n"
            "options crashkernel=128M,low  splash" % (V_NEW, V_NEW))   # no final newline
    path = root.write("/boot/loader/entries/%s-%s.conf" % (MID, V_NEW),
                      text.encode("latin-1"))
    edits = be.plan_reset(root, NEW)
    be.apply(edits)
    got = open(path, "rb").read()
    assert got == ("# a comment \xe9 kept\r\ntitle T\nversion %s\nlinux /vmlinuz-%s\n"
                   "options  root=/dev/sda1   ro\nOPTIONS not-an-options-line\n"
                   "options\tcrashkernel=%s quiet\n"
                   "options splash" % (V_NEW, V_NEW, NEW)).encode("latin-1")
    assert "\\ No newline at end of file" in edits[0].diff()


def test_bls_adds_options_line_when_missing(root):
    path = root.bls("%s-%s" % (MID, V_NEW),
                    "title T\nversion %s\nlinux /vmlinuz-%s" % (V_NEW, V_NEW))
    be.apply(be.plan_reset(root, NEW))
    assert open(path).read().endswith("linux /vmlinuz-%s\noptions crashkernel=%s\n" % (V_NEW, NEW))
    root.bls("%s-%s" % (MID, V_OLD), "title T\nlinux /vmlinuz-%s\noptions\n" % V_OLD)
    edits = be.plan_reset(root, NEW, kernel="/boot/vmlinuz-" + V_OLD)
    assert edits[0].new.endswith("options crashkernel=%s\n" % NEW)


# RHEL 8: $kernelopts in grubenv

KOPTS = "root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rhgb quiet"


def rhel8_tree(root, kernelopts=KOPTS):
    opts = "options $kernelopts $tuned_params"
    root.bls("%s-%s" % (MID, V_OLD), entry_text(V_OLD, opts))
    root.bls("%s-%s" % (MID, V_NEW), entry_text(V_NEW, opts))
    env = {"saved_entry": "%s-%s" % (MID, V_NEW), "boot_success": "0"}
    if kernelopts is not None:
        env["kernelopts"] = kernelopts
    return root.grubenv(**env)


def test_kernelopts_edited_in_grubenv(root):
    env = rhel8_tree(root)
    entries_before = {n: open(path_of(root, v)).read() for n, v in ((1, V_OLD), (2, V_NEW))}
    edits = be.plan_reset(root, NEW)
    assert [e.kind for e in edits] == ["grubenv"]
    e = edits[0]
    assert e.path == env and len(e.new.encode()) == 1024
    assert ("kernelopts=%s\n" % KOPTS.replace("crashkernel=auto", "crashkernel=" + NEW)) in e.new
    assert e.new.startswith("# GRUB Environment Block\nsaved_entry=")
    assert len(e.entries) == 2                         # $kernelopts is shared by both
    be.apply(edits)
    assert os.path.getsize(env) == 1024
    assert {n: open(path_of(root, v)).read() for n, v in ((1, V_OLD), (2, V_NEW))} == entries_before
    assert be.plan_reset(root, NEW) == []
    assert be.current_values(root, "ALL")[0].crashkernel == NEW


def test_kernelopts_in_efi_grubenv_through_symlink(root):
    env = rhel8_tree(root)
    real = root.write("/boot/efi/EFI/redhat/grubenv", open(env, "rb").read())
    os.remove(env)
    os.symlink("../efi/EFI/redhat/grubenv", env)
    edits = be.plan_reset(root, NEW)
    assert [e.path for e in edits] == [real] and edits[0].display == "/boot/efi/EFI/redhat/grubenv"
    be.apply(edits)
    assert os.path.islink(env) and os.path.getsize(real) == 1024
    assert os.path.exists(real + ".kdump-bak")


def test_kernelopts_overflow(root):
    rhel8_tree(root, kernelopts="x" * 880 + " crashkernel=auto")   # fits now, not after
    with pytest.raises(be.BootEditError) as e:
        be.plan_reset(root, NEW)
    assert "would not fit in the 1024-byte" in str(e.value) and "\n" not in str(e.value)


def test_kernelopts_missing_from_grubenv_appends_to_entry(root):
    rhel8_tree(root, kernelopts=None)
    edits = be.plan_reset(root, NEW)
    assert [e.kind for e in edits] == ["bls"]
    assert "options $kernelopts $tuned_params crashkernel=%s\n" % NEW in edits[0].new


def test_literal_crashkernel_next_to_kernelopts(root):
    rhel8_tree(root, kernelopts="root=/dev/sda1 ro")
    root.bls("%s-%s" % (MID, V_NEW),
             entry_text(V_NEW, "options $kernelopts crashkernel=auto $tuned_params"))
    edits = be.plan_reset(root, NEW)
    assert [e.kind for e in edits] == ["bls"]
    assert "options $kernelopts crashkernel=%s $tuned_params" % NEW in edits[0].new


# GRUB legacy (RHEL 5/6)

KB_GRUB_CONF = """\
default=0
timeout=5
splashimage=(hd0,0)/grub/splash.xpm.gz
hiddenmenu
title Red Hat Enterprise Linux Server (2.6.17-1.2519.4.21.el5)
        root (hd0,0)
        kernel /vmlinuz-2.6.17-1.2519.4.21.el5 ro root=LABEL=/ rhgb quiet crashkernel=128M@16M
        initrd /initrd-2.6.17-1.2519.4.21.el5.img
"""


def legacy_tree(root, text=KB_GRUB_CONF):
    path = root.write("/boot/grub/grub.conf", text, mode=0o600)
    root.mkdir("/etc")
    os.symlink("../boot/grub/grub.conf", root.p("/etc/grub.conf"))
    return path


def test_grub_legacy_kb_layout(root):
    path = legacy_tree(root)
    edits = be.plan_reset(root, NEW)
    assert len(edits) == 1 and edits[0].path == path and edits[0].display == "/boot/grub/grub.conf"
    assert edits[0].new == KB_GRUB_CONF.replace("crashkernel=128M@16M", "crashkernel=" + NEW)
    assert be.current_values(root)[0].crashkernel == "128M@16M"
    be.apply(edits)
    assert open(path).read() == edits[0].new
    assert os.path.islink(root.p("/etc/grub.conf"))            # the link is kept
    assert open(path + ".kdump-bak").read() == KB_GRUB_CONF
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert be.plan_reset(root, NEW) == []


def test_grub_legacy_adds_crashkernel_to_selected_stanza(root):
    text = KB_GRUB_CONF.replace(" crashkernel=128M@16M", "").replace("default=0", "default=1")
    text += ("title Other (2.6.18-398.el5)\n\troot (hd0,0)\n"
             "\tkernel /vmlinuz-2.6.18-398.el5 ro root=LABEL=/\n"
             "\tinitrd /initrd-2.6.18-398.el5.img\n")
    legacy_tree(root, text)
    edits = be.plan_reset(root, "128M@16M")
    assert edits[0].new == text.replace("ro root=LABEL=/\n",
                                        "ro root=LABEL=/ crashkernel=128M@16M\n")
    assert [x.index for x in edits[0].entries] == [1]
    edits = be.plan_reset(root, "128M@16M", kernel="ALL")
    assert edits[0].new.count("crashkernel=128M@16M") == 2


def test_grub_legacy_through_etc_symlink_only(root):
    root.write("/boot/grub/menu.lst.real", KB_GRUB_CONF)
    root.mkdir("/etc")
    os.symlink("../boot/grub/menu.lst.real", root.p("/etc/grub.conf"))
    edits = be.plan_reset(root, NEW)
    assert edits[0].path == root.p("/boot/grub/menu.lst.real")
    assert edits[0].display == "/boot/grub/menu.lst.real"


def test_real_path_keeps_absolute_links_inside_root(root):
    root.write("/boot/efi/EFI/redhat/grubenv", "x")
    root.mkdir("/boot/grub2")
    os.symlink("/boot/efi/EFI/redhat/grubenv", root.p("/boot/grub2/grubenv"))
    os.symlink("../../..", root.p("/boot/grub2/up"))
    assert be.real_path(root, "/boot/grub2/grubenv") == "/boot/efi/EFI/redhat/grubenv"
    assert be.real_path(root, "/boot/grub2/up/boot/grub2/grubenv") == \
        "/boot/efi/EFI/redhat/grubenv"
    os.symlink("loop", root.p("/boot/loop"))
    with pytest.raises(be.BootEditError, match="too many levels"):
        be.real_path(root, "/boot/loop")


# GRUB 2 without BLS: /etc/default/grub

GRUB_CFG = """\
set default="0"
menuentry 'Red Hat Enterprise Linux Server (3.10.0-1160.el7.x86_64) 7.9 (Maipo)' --class red {
	linux16 /vmlinuz-3.10.0-1160.el7.x86_64 root=/dev/mapper/rhel-root ro crashkernel=auto rhgb quiet
	initrd16 /initramfs-3.10.0-1160.el7.x86_64.img
}
menuentry 'Red Hat Enterprise Linux Server (0-rescue)' --class red {
	linux16 /vmlinuz-0-rescue root=/dev/mapper/rhel-root ro crashkernel=auto rhgb quiet
	initrd16 /initramfs-0-rescue.img
}
"""

DEFAULT_GRUB = """\
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
GRUB_DEFAULT=saved
GRUB_DISABLE_SUBMENU=true
GRUB_TERMINAL_OUTPUT="console"
GRUB_CMDLINE_LINUX="crashkernel=auto rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet"
GRUB_DISABLE_RECOVERY="true"
"""


def grub2_tree(root, default_grub=DEFAULT_GRUB, cfg=GRUB_CFG):
    root.write("/boot/grub2/grub.cfg", cfg)
    if default_grub is not None:
        return root.write("/etc/default/grub", default_grub)


def test_default_grub_double_quotes(root):
    path = grub2_tree(root)
    edits = be.plan_reset(root, NEW)
    e = edits[0]
    assert e.kind == "default-grub" and e.path == path
    assert e.new == DEFAULT_GRUB.replace("crashkernel=auto", "crashkernel=" + NEW)
    assert e.after == ()                                        # never under --root
    assert any("grub.cfg not regenerated under --root" in n for n in e.notes)
    assert any("applies to every kernel" in n for n in e.notes)
    assert e.diff().startswith("--- a/etc/default/grub\n+++ b/etc/default/grub\n")
    assert len(e.entries) == 2
    be.apply(edits)
    again = be.plan_reset(root, NEW)                            # grub.cfg is still behind
    assert all(x.new == x.old for x in again)
    grub2_tree(root, default_grub=open(path).read(), cfg=GRUB_CFG.replace("crashkernel=auto",
                                                                          "crashkernel=" + NEW))
    assert be.plan_reset(root, NEW) == []


def test_default_grub_regenerate_command_on_the_host(root, monkeypatch):
    grub2_tree(root)
    monkeypatch.setattr(be, "is_host_root", lambda r: True)
    monkeypatch.setattr(be.shutil, "which",
                        lambda name: "/usr/sbin/" + name if name == "grub2-mkconfig" else None)
    edits = be.plan_reset(root, NEW, kernel="ALL")
    assert edits[0].after == ("grub2-mkconfig", "-o", root.p("/boot/grub2/grub.cfg"))
    assert be.after_commands(edits) == [edits[0].after]
    assert not any("applies to every kernel" in n for n in edits[0].notes)
    monkeypatch.setattr(be.shutil, "which",
                        lambda name: "/usr/sbin/" + name if name == "update-grub" else None)
    assert be.plan_reset(root, NEW)[0].after == ("update-grub",)


@pytest.mark.parametrize("line,expected", [
    ("GRUB_CMDLINE_LINUX='rhgb quiet'", "GRUB_CMDLINE_LINUX='rhgb quiet crashkernel=%s'" % NEW),
    ("GRUB_CMDLINE_LINUX=quiet", "GRUB_CMDLINE_LINUX=\"quiet crashkernel=%s\"" % NEW),
    ("GRUB_CMDLINE_LINUX=", "GRUB_CMDLINE_LINUX=crashkernel=%s" % NEW),
    ('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="crashkernel=%s"' % NEW),
    ('export GRUB_CMDLINE_LINUX="a crashkernel=1"  # note',
     'export GRUB_CMDLINE_LINUX="a crashkernel=%s"  # note' % NEW),
    ('GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX quiet"',
     'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX quiet crashkernel=%s"' % NEW),
])
def test_default_grub_quoting_styles(root, line, expected):
    grub2_tree(root, "GRUB_TIMEOUT=5\n%s\nGRUB_X=1" % line)   # no final newline
    assert be.plan_reset(root, NEW)[0].new == "GRUB_TIMEOUT=5\n%s\nGRUB_X=1" % expected


def test_default_grub_last_assignment_and_linux_default(root):
    text = ('GRUB_CMDLINE_LINUX="old"\nGRUB_CMDLINE_LINUX="ro"\n'
            'GRUB_CMDLINE_LINUX_DEFAULT="quiet crashkernel=384M-:128M"\n')
    grub2_tree(root, text)
    assert be.plan_reset(root, NEW)[0].new == (
        'GRUB_CMDLINE_LINUX="old"\nGRUB_CMDLINE_LINUX="ro crashkernel=%s"\n'
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet crashkernel=%s"\n' % (NEW, NEW))


def test_default_grub_without_the_variable(root):
    grub2_tree(root, "GRUB_TIMEOUT=5")
    assert be.plan_reset(root, NEW)[0].new == \
        'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="crashkernel=%s"\n' % NEW


def test_default_grub_missing_or_a_directory(root):
    grub2_tree(root, default_grub=None)
    with pytest.raises(be.BootEditError, match="/etc/default/grub does not exist"):
        be.plan_reset(root, NEW)
    root.mkdir("/etc/default/grub")
    with pytest.raises(be.BootEditError) as e:
        be.plan_reset(root, NEW)
    assert str(e.value).startswith("cannot read /etc/default/grub: it is a directory")
    assert "\n" not in str(e.value)


def test_default_grub_multiline_value_refused(root):
    grub2_tree(root, 'GRUB_CMDLINE_LINUX="ro\nquiet"\n')
    with pytest.raises(be.BootEditError, match="spans several lines"):
        be.plan_reset(root, NEW)


def test_grub_d_snippet_noted(root):
    grub2_tree(root)
    root.write("/etc/default/grub.d/kdump-tools.cfg",
               'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=384M-:512M"\n')
    notes = be.plan_reset(root, NEW)[0].notes
    assert any("kdump-tools.cfg sets crashkernel= too" in n for n in notes)


# apply and errors

def test_dry_run_is_plan_plus_diff(root):
    bls_tree(root)
    legacy_before = snapshot(root)
    edits = be.plan_reset(root, NEW, kernel="ALL")
    text = "".join(e.diff() for e in edits)
    assert text.count("+++ b/boot/loader/entries/") == 3
    assert snapshot(root) == legacy_before


def test_apply_refuses_a_file_changed_since_planning(root):
    bls_tree(root)
    edits = be.plan_reset(root, NEW, kernel="ALL")
    with open(edits[1].path, "a") as f:
        f.write("# changed\n")
    before = snapshot(root)
    with pytest.raises(be.BootEditError, match="changed since it was read; nothing was changed"):
        be.apply(edits)
    assert snapshot(root) == before


def test_apply_file_replaced_by_directory(root):
    bls_tree(root)
    edits = be.plan_reset(root, NEW)
    os.remove(edits[0].path)
    os.mkdir(edits[0].path)
    with pytest.raises(be.BootEditError) as e:
        be.apply(edits)
    assert str(e.value).startswith("cannot read /boot/loader/entries/") and "\n" not in str(e.value)


def test_apply_write_failure_leaves_file_alone(root, monkeypatch):
    bls_tree(root)
    edits = be.plan_reset(root, NEW)
    before = snapshot(root)

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(be.os, "fsync", no_space)
    with pytest.raises(be.BootEditError) as e:
        be.apply(edits)
    assert "No space left on device" in str(e.value)
    assert snapshot(root) == before                      # no temporary file left either


def test_unreadable_boot_configuration_is_one_line(root, monkeypatch):
    bls_tree(root)

    def denied(r):
        raise PermissionError(13, "Permission denied", root.p("/boot/loader/entries/x.conf"))
    monkeypatch.setattr(be.select, "discover", denied)
    with pytest.raises(be.BootEditError) as e:
        be.plan_reset(root, NEW)
    assert str(e.value) == ("cannot read /boot/loader/entries/x.conf: Permission denied; "
                            "run as root")


def test_no_boot_loader_configuration(root):
    with pytest.raises(be.BootEditError, match="no boot loader configuration found"):
        be.plan_reset(root, NEW)


def test_bad_value(root):
    bls_tree(root)
    with pytest.raises(CrashkernelError):
        be.plan_reset(root, "lots")
    with pytest.raises(CrashkernelError):
        be.plan_reset(root, "256M quiet")


def test_report_lines(root):
    bls_tree(root, old_opts="options ro crashkernel=" + NEW)
    before = be.current_values(root, "ALL")
    edits = be.plan_reset(root, NEW, kernel="ALL")
    lines = be.report_lines(before, edits, NEW)
    assert "No need to update crashkernel value for kernel=/boot/vmlinuz-%s, grub entry "\
           "index=1" % V_OLD in lines
    assert "Updated crashkernel=%s for kernel=/boot/vmlinuz-%s, grub entry index=0." \
           % (NEW, V_NEW) in lines
