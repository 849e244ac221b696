"""Which boot loader wins, the running-kernel fallback, and find_entry."""
import pytest

from kexec_py.boot import BootConfig, BootEntry, discover, find_entry
from kexec_py.boot.entry import resolve_boot_path, vercmp, version_from_kernel
from kexec_py.errors import EntryNotFound, KexecError

from .conftest import RELEASE


@pytest.mark.parametrize("initrd", ["/boot/initramfs-%s.img", "/boot/initrd-%s.img",
                                    "/boot/initrd.img-%s"])
def test_running_kernel_fallback_finds_its_initrd(root, initrd):
    root.kernel("/boot/vmlinuz-%s" % RELEASE)
    root.initrd(initrd % RELEASE)
    root.initrd("/boot/initramfs-other.img")
    config = discover(str(root))
    assert config.source == "running"
    assert config.default_index == 0
    e = config.default
    assert e.id == "running"
    assert e.version == RELEASE
    assert e.kernel_path == root.p("/boot/vmlinuz-%s" % RELEASE)
    assert e.initrd_paths == (root.p(initrd % RELEASE),)
    assert config.config == "/proc/cmdline"


def test_running_kernel_prefers_initramfs_over_initrd(root):
    root.initrd("/boot/initrd.img-%s" % RELEASE)
    root.initrd("/boot/initramfs-%s.img" % RELEASE)
    e = discover(str(root)).default
    assert e.initrd_paths == (root.p("/boot/initramfs-%s.img" % RELEASE),)


def test_running_kernel_without_initrd_and_options_from_proc_cmdline(root):
    root.kernel("/boot/vmlinuz-%s" % RELEASE)
    e = discover(str(root)).default
    assert e.initrd_paths == ()
    # BOOT_IMAGE= is dropped; crashkernel= stays for a plain reboot
    assert e.options == "root=UUID=1234-abcd ro crashkernel=256M console=ttyS0,115200 quiet"


def test_release_comes_from_root_not_host(root):
    root.write("/proc/sys/kernel/osrelease", "9.9.9-under-root\n")
    assert discover(str(root)).default.kernel_path == root.p("/boot/vmlinuz-9.9.9-under-root")


def test_no_release_under_root_is_an_error_naming_root(fake_root):
    with pytest.raises(KexecError) as info:
        discover(str(fake_root))
    assert str(fake_root) in str(info.value)


def test_bls_wins_over_grub_cfg_and_grub_conf(root):
    root.write("/boot/grub2/grub.cfg", "menuentry 'g2' {\n linux /vmlinuz-g2\n}\n")
    root.write("/boot/grub/grub.conf", "title legacy\nkernel /vmlinuz-l\n")
    assert discover(str(root)).source == "grub2"
    root.bls("bls-entry", "title b\nlinux /vmlinuz-b\n")
    config = discover(str(root))
    assert config.source == "bls"
    assert config.default.id == "bls-entry"


def test_grub_cfg_without_linux_entries_falls_through_to_legacy(root):
    root.write("/boot/grub2/grub.cfg", "insmod blscfg\nblscfg\n")
    root.write("/boot/grub/grub.conf", "title legacy\nkernel /vmlinuz-l\n")
    assert discover(str(root)).source == "grub-legacy"


@pytest.fixture
def grub_config(root):
    """GRUB 2: two top-level entries and a submenu holding two more."""
    root.write("/boot/grub2/grub.cfg", "".join([
        "set default=\"0\"\n",
        "menuentry 'Linux 6.2' --id linux-6.2 {\n linux /vmlinuz-6.2.0 ro\n}\n",
        "menuentry 'Linux 6.2 debug' --id linux-6.2-debug {\n",
        " linux /vmlinuz-6.2.0 ro debug\n}\n",
        "submenu 'Advanced' --id adv {\n",
        " menuentry 'Linux 6.1' --id linux-6.1 {\n  linux /vmlinuz-6.1.0 ro\n }\n",
        " menuentry 'Linux 5.10' --id 7 {\n  linux /vmlinuz-5.10.0 ro\n }\n",
        "}\n"]))
    return discover(str(root))


@pytest.mark.parametrize("spec,expected", [
    ("linux-6.1", "linux-6.1"),         # id
    ("1", "linux-6.2-debug"),           # index
    (1, "linux-6.2-debug"),             # index given as int
    ("2>0", "linux-6.1"),               # GRUB path into the submenu
    ("2>1", "7"),
    ("6.1.0", "linux-6.1"),             # version
    ("Linux 5.10", "7"),                # title
    ("7", "7"),                         # an all-digit id wins over index 7 (none) ...
    ("3", "7"),                         # ... and index 3 is that same entry
])
def test_find_entry(grub_config, spec, expected):
    assert find_entry(grub_config, spec).id == expected


def test_id_that_is_digits_beats_index():
    def mk(index, ident):
        return BootEntry("grub2", index, ident, "t%d" % index, "", "/v", "/v", "")
    config = BootConfig("grub2", (mk(0, "1"), mk(1, "x")), 0, "cfg")
    assert find_entry(config, "1").index == 0


def test_version_shared_by_entries_names_the_first(grub_config):
    assert find_entry(grub_config, "6.2.0").id == "linux-6.2"


def test_version_skips_recovery_entries_as_on_debian():
    def mk(index, ident, title, options):
        return BootEntry("grub2", index, ident, title, "6.1.0-18-amd64", "/v", "/v", options)
    config = BootConfig("grub2", (
        mk(0, "rec", "Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)", "ro single"),
        mk(1, "adv", "Debian GNU/Linux, with Linux 6.1.0-18-amd64", "ro quiet"),
    ), 0, "cfg")
    assert find_entry(config, "6.1.0-18-amd64").id == "adv"


def test_title_shared_by_entries_is_ambiguous():
    def mk(index, ident):
        return BootEntry("grub2", index, ident, "Same", "", "/v", "/v", "")
    config = BootConfig("grub2", (mk(0, "a"), mk(1, "b")), 0, "cfg")
    with pytest.raises(EntryNotFound) as info:
        find_entry(config, "Same")
    assert "2 boot entries have title 'Same'" in str(info.value)
    assert info.value.exit_code == 1


def test_entry_that_does_not_exist(grub_config, root):
    with pytest.raises(EntryNotFound) as info:
        find_entry(grub_config, "no-such-entry")
    message = str(info.value)
    assert "no boot entry matches 'no-such-entry'" in message
    assert root.p("/boot/grub2/grub.cfg") in message
    assert "--list-entries" in message
    assert info.value.exit_code == 1


def test_index_out_of_range_does_not_exist(grub_config):
    with pytest.raises(EntryNotFound):
        find_entry(grub_config, "4")


def test_find_running_entry_by_version(root):
    config = discover(str(root))
    assert find_entry(config, RELEASE).id == "running"
    assert find_entry(config, "0").id == "running"


@pytest.mark.parametrize("path,rel", [
    ("/vmlinuz-1", "/boot/vmlinuz-1"),
    ("/boot/vmlinuz-1", "/boot/vmlinuz-1"),
    ("(hd0,gpt2)/vmlinuz-1", "/boot/vmlinuz-1"),
    ("vmlinuz-1", "/boot/vmlinuz-1"),
])
def test_resolve_boot_path_existing(fake_root, path, rel):
    fake_root.kernel("/boot/vmlinuz-1")
    assert resolve_boot_path(str(fake_root), path) == fake_root.p(rel)


def test_resolve_boot_path_missing_file_defaults_under_boot(fake_root):
    assert resolve_boot_path(str(fake_root), "/vmlinuz-gone") == fake_root.p("/boot/vmlinuz-gone")
    assert resolve_boot_path(str(fake_root), "/boot/vmlinuz-gone") == \
        fake_root.p("/boot/vmlinuz-gone")


@pytest.mark.parametrize("a,b,result", [
    ("6.1.0", "6.1.0", 0), ("6.10", "6.9", 1), ("6.1.0-18", "6.1.0-17", 1),
    ("6.1.0~rc1", "6.1.0", -1), ("6.1.0", "6.1", 1), ("1a", "1b", -1), ("2", "a", 1),
    ("0-rescue-abc", "4.18.0", -1),
])
def test_vercmp(a, b, result):
    assert vercmp(a, b) == result
    assert vercmp(b, a) == -result


def test_version_from_kernel():
    assert version_from_kernel("/boot/vmlinuz-6.1.0-18-amd64") == "6.1.0-18-amd64"
    assert version_from_kernel("(hd0,0)/bzImage-x") == "x"
    assert version_from_kernel("/boot/Image") == ""
