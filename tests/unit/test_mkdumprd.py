"""mkdumprd: the dracut command, the plan it carries, the target's drivers, the manifest.

dracut itself is replaced by a recorder here (the VM scenarios run the real one); what
is checked is what it is asked to do and with which environment.
"""
import json
import os
import subprocess

import pytest

from kexec_py.cli import mkdumprd as cli
from kexec_py.errors import KexecError
from kexec_py.kdump import mkdumprd, plan as planmod, rebuild

from .conftest import RELEASE


def sysfs_disk(root, name="vdb", pci="0000:00:05.0", virtio="virtio2"):
    """/sys/class/block/NAME -> a virtio disk on a PCI function, with driver links."""
    dev = root.mkdir("/sys/devices/pci0000:00/%s/%s/block/%s" % (pci, virtio, name))
    mods = root.mkdir("/sys/module")
    for m in ("virtio_blk", "virtio_pci"):
        os.makedirs(os.path.join(mods, m), exist_ok=True)
    drv = root.mkdir("/sys/bus/virtio/drivers/virtio_blk")
    os.symlink(os.path.join(mods, "virtio_blk"), os.path.join(drv, "module"))
    pdrv = root.mkdir("/sys/bus/pci/drivers/virtio-pci")
    os.symlink(os.path.join(mods, "virtio_pci"), os.path.join(pdrv, "module"))
    os.symlink(drv, os.path.join(os.path.dirname(os.path.dirname(dev)), "driver"))
    os.symlink(pdrv, os.path.join(root.p("/sys/devices/pci0000:00/%s" % pci), "driver"))
    root.mkdir("/sys/class/block")
    os.symlink(dev, root.p("/sys/class/block/%s" % name))
    root.write("/dev/%s" % name, "")
    root.mkdir("/dev/disk/by-label")
    os.symlink("../../%s" % name, root.p("/dev/disk/by-label/dumps"))
    root.mkdir("/dev/disk/by-uuid")
    os.symlink("../../%s" % name, root.p("/dev/disk/by-uuid/1111-2222"))
    return dev


class Dracut:
    def __init__(self, rc=0):
        self.rc, self.calls = rc, []

    def __call__(self, argv, env=None, **kw):
        plan_env = open(os.path.join(env["KEXEC_PY_KDUMP_DIR"], "plan.env")).read()
        modules = os.path.join(env["KEXEC_PY_KDUMP_DIR"], "modules")
        self.calls.append({"argv": argv, "env": env, "plan_env": plan_env,
                           "modules": open(modules).read() if os.path.exists(modules)
                           else None})
        if self.rc == 0:
            with open(argv[-1], "w") as f:
                f.write("image")
        return subprocess.CompletedProcess(argv, self.rc, "dracut: some error\n")


@pytest.fixture
def mroot(root):
    root.write("/etc/kdump.conf", "ext4 LABEL=dumps\npath /var/crash\n")
    root.write("/proc/mounts", "/dev/vda / ext4 rw 0 0\n/dev/vdb /srv/dump ext4 rw 0 0\n")
    root.write("/etc/fstab", "LABEL=dumps /srv/dump ext4 defaults,noatime 0 2\n")
    root.write("/dev/vda", "")
    sysfs_disk(root)
    root.mkdir("/usr/lib/dracut/modules.d/90kernel-modules")   # the root's dracut
    root.write("/lib/modules/%s/modules.dep" % RELEASE, MODULES_DEP)
    root.write("/lib/modules/%s/modules.builtin" % RELEASE, "kernel/crypto/crc32c_generic.ko\n")
    return root


MODULES_DEP = """kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/lib/crc16.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/drivers/watchdog/i6300esb.ko:
kernel/fs/nfs/nfs.ko:
kernel/fs/nfs/nfsv3.ko: kernel/fs/nfs/nfs.ko
"""


def test_build_asks_dracut_for_a_strict_hostonly_kdump_image(mroot):
    """A plain disk: the own-init image, our dracut module alone, the drivers listed for
    kdump-insmod in load order (dependencies first, built-ins left out)."""
    p = planmod.resolve(str(mroot))
    dracut = Dracut()
    out = mkdumprd.build(p, run=dracut, dracut="/usr/bin/dracut")
    image = mroot.p("/boot/initramfs-%skdump.img" % RELEASE)
    assert out == image and open(image).read() == "image"
    (call,) = dracut.calls
    argv = call["argv"]
    for words in (["--hostonly"], ["--hostonly-mode", "strict"], ["--no-hostonly-cmdline"],
                  ["--no-hostonly-default-device"], ["--compress", "zstd -19 -q --zstd=wlog=17"],
                  ["--modules", "kexec-py-kdump bash"], ["--no-early-microcode"],
                  ["--kver", RELEASE], ["--conf", "/dev/null"], ["--sysroot", str(mroot)]):
        i = argv.index(words[0])
        assert argv[i:i + len(words)] == words, words
    # the module installs and unpacks the drivers itself; dracut adds none after it
    for absent in ("--add", "--omit", "--add-drivers", "--filesystems"):
        assert absent not in argv, absent
    assert "amdgpu" in argv[argv.index("--omit-drivers") + 1].split()
    assert argv[-1] == image + ".tmp"
    env = call["env"]
    assert env["KEXEC_PY_KDUMP_INIT"] == "own" and env["KEXEC_PY_KDUMP_SHELL"] == "bash"
    assert env["KEXEC_PY_KDUMP_DRIVERS"] == "virtio_blk virtio_pci ext4 crc32c_generic"
    assert [os.path.basename(t) for t in env["KEXEC_PY_KDUMP_TOOLS"].split()] == \
        ["vmcore-copy", "vmcore-dmesg", "kdump-insmod"]
    assert call["modules"] == (
        "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/block/virtio_blk.ko\nkernel/drivers/virtio/virtio_pci_modern_dev.ko\n"
        "kernel/drivers/virtio/virtio_pci.ko\nkernel/lib/crc16.ko\nkernel/fs/mbcache.ko\n"
        "kernel/fs/jbd2/jbd2.ko\nkernel/fs/ext4/ext4.ko\n")
    assert "KDUMP_TARGET_SPEC=LABEL=dumps" in call["plan_env"]
    assert "KDUMP_MOUNT_OPTIONS=defaults,noatime" in call["plan_env"]
    assert "KDUMP_ROOT_SPEC=/dev/vda" in call["plan_env"]
    manifest = json.load(open(rebuild.manifest_path(image)))
    assert manifest["target"]["spec"] == "LABEL=dumps" and manifest["init"] == "own"
    assert manifest["modules"] == ["virtio_blk", "virtio_pci", "ext4", "crc32c_generic"]
    # the source checkout's module is put next to the system's in a basedir overlay
    assert env.get("dracutbasedir") or os.path.isdir(mroot.p(mkdumprd.MODULE_DIR))


def test_stacked_devices_and_added_modules_get_dracuts_init(mroot):
    """LVM, MD and dm-crypt need dracut's modules (and udev) to assemble the device; so
    does any dracut module dracut_args adds: then dracut's shell init, with the drivers
    passed as --add-drivers and the generic module sets omitted."""
    def build(conf=None):
        if conf:
            mroot.write("/etc/kdump.conf", conf)
        dracut = Dracut()
        mkdumprd.build(planmod.resolve(str(mroot)), run=dracut, dracut="/usr/bin/dracut")
        return dracut.calls[0]

    assert build()["env"]["KEXEC_PY_KDUMP_INIT"] == "own"
    call = build("ext4 LABEL=dumps\ndracut_args --add \"lvm\"\n")
    argv = call["argv"]
    assert call["env"]["KEXEC_PY_KDUMP_INIT"] == "dracut" and "--modules" not in argv
    assert argv[argv.index("--add") + 1] == "kexec-py-kdump"
    omit = argv[argv.index("--omit") + 1].split()
    assert "systemd" in omit and "plymouth" in omit and "resume" in omit
    # the generic driver sets give way to the plan's own drivers
    assert "kernel-modules" in omit and "qemu" in omit and "bash" not in omit
    assert argv[argv.index("--add-drivers") + 1].split() == \
        ["virtio_blk", "virtio_pci", "ext4", "crc32c_generic"]
    assert argv[argv.index("--filesystems") + 1] == "ext4"
    assert "kdump-insmod" not in call["env"]["KEXEC_PY_KDUMP_TOOLS"]
    # the target on a device-mapper device (/dev/disk/by-label/dumps -> dm-0)
    mroot.write("/dev/dm-0", "")
    os.unlink(mroot.p("/dev/disk/by-label/dumps"))
    os.symlink("../../dm-0", mroot.p("/dev/disk/by-label/dumps"))
    assert build("ext4 LABEL=dumps\n")["env"]["KEXEC_PY_KDUMP_INIT"] == "dracut"
    # a partition of a disk with slaves (an MD array's member list)
    assert mkdumprd.stacked(str(mroot), "/dev/dm-0")
    assert not mkdumprd.stacked(str(mroot), "/dev/vdb")
    mroot.mkdir("/sys/devices/pci0000:00/0000:00:05.0/virtio2/block/vdb/slaves/sda")
    assert mkdumprd.stacked(str(mroot), "/dev/vdb")


def test_own_init_modules_file(mroot):
    """extra_modules and dracut_args' drivers are loaded by the own init too, with the
    options modprobe.d gives them; a module that does not exist is an error."""
    mroot.write("/etc/modprobe.d/wd.conf", "# watchdog\noptions i6300esb heartbeat=30 \\\n"
                                          "  nowayout=1\noptions other x=1\n")
    mroot.write("/usr/lib/modprobe.d/wd.conf", "options i6300esb hidden=1\n")
    mroot.write("/lib/modprobe.d/virtio.conf", "options virtio_blk queue_depth=8\n")
    mroot.write("/etc/kdump.conf", "ext4 LABEL=dumps\nextra_modules i6300esb\n"
                                   "dracut_args --add-drivers \"jbd2\"\n")
    dracut = Dracut()
    mkdumprd.build(planmod.resolve(str(mroot)), run=dracut, dracut="/usr/bin/dracut")
    call = dracut.calls[0]
    lines = call["modules"].splitlines()
    assert "kernel/drivers/watchdog/i6300esb.ko heartbeat=30 nowayout=1" in lines
    assert "kernel/drivers/block/virtio_blk.ko queue_depth=8" in lines
    assert lines.count("kernel/fs/jbd2/jbd2.ko") == 1
    assert "--add-drivers" not in call["argv"]
    mroot.write("/etc/kdump.conf", "ext4 LABEL=dumps\nextra_modules nosuchmod\n")
    with pytest.raises(KexecError, match="no module nosuchmod for kernel"):
        mkdumprd.build(planmod.resolve(str(mroot)), run=Dracut(), dracut="/usr/bin/dracut")
    os.unlink(mroot.p("/lib/modules/%s/modules.dep" % RELEASE))
    with pytest.raises(KexecError, match="no modules.dep for kernel .*: run depmod"):
        mkdumprd.build(planmod.resolve(str(mroot)), run=Dracut(), dracut="/usr/bin/dracut")


def test_dash_replaces_bash_where_the_system_has_it(mroot):
    """Debian: dash and dracut's 00dash module -> --add dash, bash omitted (1.4 MB less
    in the reserve); a systemd image, or dracut_args adding bash, keep dracut's shell."""
    mroot.write("/bin/dash", "")
    mroot.mkdir("/usr/lib/dracut/modules.d/00dash")

    conf = mroot.read("/etc/kdump.conf")

    def argv_for(conf_extra=""):
        mroot.write("/etc/kdump.conf", conf + conf_extra)
        dracut = Dracut()
        mkdumprd.build(planmod.resolve(str(mroot)), run=dracut, dracut="/usr/bin/dracut")
        argv = dracut.calls[0]["argv"]
        if "--modules" in argv:
            return argv[argv.index("--modules") + 1].split(), None
        return (argv[argv.index("--add") + 1].split(),
                argv[argv.index("--omit") + 1].split())

    assert argv_for() == (["kexec-py-kdump", "dash"], None)
    added, omitted = argv_for('dracut_args --add "lvm"\n')
    assert added == ["kexec-py-kdump", "dash"] and "bash" in omitted
    added, omitted = argv_for('dracut_args --add "systemd"\n')
    assert "dash" not in added and "bash" not in omitted


def test_rootfs_target_uses_the_root_device_by_uuid(mroot):
    mroot.write("/etc/kdump.conf", "path /var/crash\n")
    os.symlink("../../vda", mroot.p("/dev/disk/by-uuid/abcd-ef"))
    p = planmod.resolve(str(mroot))
    m = mkdumprd.capture_mount(p)
    assert (m["spec"], m["fstype"]) == ("UUID=abcd-ef", "ext4")


def test_nfs_target_mounts_with_the_first_kernels_options(mroot):
    # as RHEL's mkdumprd: the mounted export's options (port, version), without the
    # addresses the first kernel resolved; fstab when it is not mounted; else defaults
    mroot.write("/etc/kdump.conf", "nfs 10.0.2.2:/export\n")
    p = planmod.resolve(str(mroot))
    assert mkdumprd.capture_mount(p)["options"] == "defaults"
    mroot.write("/etc/fstab", "10.0.2.2:/export /mnt/nfs nfs4 ro,noauto,port=20490 0 0\n")
    m = mkdumprd.capture_mount(planmod.resolve(str(mroot)))
    assert (m["fstype"], m["options"], m["host"]) == ("nfs4", "rw,port=20490", "10.0.2.2")
    mroot.write("/proc/mounts", "/dev/vda / ext4 rw 0 0\n10.0.2.2:/export /mnt/nfs nfs4 "
                "rw,relatime,vers=4.2,port=20490,proto=tcp,timeo=600,sec=sys,"
                "clientaddr=10.0.2.15,local_lock=none,addr=10.0.2.2 0 0\n")
    m = mkdumprd.capture_mount(planmod.resolve(str(mroot)))
    assert m["options"] == "rw,relatime,vers=4.2,port=20490,timeo=600,sec=sys,local_lock=none"


def test_capture_options_are_read_write_and_always_mounted():
    assert mkdumprd.capture_options("ro,nofail,noauto,x-systemd.device-timeout=5") == \
        "rw,x-systemd.device-timeout=5"
    assert mkdumprd.capture_options("") == "defaults"
    assert mkdumprd.capture_options("addr=1.2.3.4") == "addr=1.2.3.4"


def test_dracut_args_pass_through_but_mount_is_ours(mroot):
    mroot.write("/etc/kdump.conf", 'dracut_args --mount "/dev/vdb /mnt/d ext4 defaults" '
                                   '--omit-drivers "nfs"\n')
    p = planmod.resolve(str(mroot))
    argv = mkdumprd.dracut_argv("dracut", p, "/x.img", [], "/")
    assert "--mount" not in argv
    assert argv[argv.index("--omit-drivers", argv.index("--omit-drivers") + 1) + 1] == "nfs"


def test_network_targets_still_carry_the_root_file_systems_drivers(mroot):
    # the record goes to the root fs's /var/lib/kdump (and dump_to_rootfs saves there)
    mroot.write("/etc/kdump.conf", "nfs 10.0.2.2:/export\nfailure_action dump_to_rootfs\n")
    p = planmod.resolve(str(mroot))
    dracut = Dracut()
    mkdumprd.build(p, run=dracut, dracut="/usr/bin/dracut")
    drivers = dracut.calls[0]["env"]["KEXEC_PY_KDUMP_DRIVERS"].split()
    assert "ext4" in drivers and "nfs" in drivers, drivers
    assert "kernel/fs/ext4/ext4.ko" in dracut.calls[0]["modules"]
    assert "KDUMP_TARGET_WORDS='nfs 10.0.2.2:/export'" in dracut.calls[0]["plan_env"]


def test_systemd_initramfs_only_when_dracut_args_add_systemd(mroot):
    p = planmod.resolve(str(mroot))
    argv = mkdumprd.dracut_argv("dracut", p, "/x.img", [], "/")
    omitted = argv[argv.index("--omit") + 1].split()
    assert set(mkdumprd.SYSTEMD_MODULES) <= set(omitted) and not mkdumprd.systemd_initramfs(p)
    assert "rd.systemd.unit" not in p.cmdline
    for args in ('--add "systemd"', "-a systemd", "--add=systemd", '--add "lvm systemd"'):
        mroot.write("/etc/kdump.conf", "dracut_args %s\n" % args)
        p = planmod.resolve(str(mroot))
        argv = mkdumprd.dracut_argv("dracut", p, "/x.img", [], "/")
        omitted = argv[argv.index("--omit") + 1].split()
        assert mkdumprd.systemd_initramfs(p), args
        assert not set(mkdumprd.SYSTEMD_MODULES) & set(omitted), (args, omitted)
        assert "plymouth" in omitted and "systemd-networkd" in omitted
        assert p.cmdline.endswith(" rd.systemd.unit=kexec-py-kdump.target"), p.cmdline
    mroot.write("/etc/kdump.conf", 'dracut_args --add "plymouth"\n')
    argv = mkdumprd.dracut_argv("dracut", planmod.resolve(str(mroot)), "/x.img", [], "/")
    assert "plymouth" not in argv[argv.index("--omit") + 1].split()


def test_failed_dracut_leaves_no_image(mroot):
    p = planmod.resolve(str(mroot))
    with pytest.raises(KexecError, match="(?s)dracut failed .*some error"):
        mkdumprd.build(p, run=Dracut(rc=1), dracut="/usr/bin/dracut")
    assert not os.path.exists(mroot.p("/boot/initramfs-%skdump.img" % RELEASE))
    assert not os.path.exists(mroot.p("/boot/initramfs-%skdump.img.tmp" % RELEASE))


def test_no_dracut_is_a_clear_error(mroot, monkeypatch):
    monkeypatch.setattr(mkdumprd.shutil, "which", lambda name: None)
    monkeypatch.setattr(mkdumprd.os.path, "exists",
                        lambda p, real=os.path.exists: False if p == "/usr/bin/dracut"
                        else real(p))
    with pytest.raises(KexecError, match="dracut is not installed"):
        mkdumprd.build(planmod.resolve(str(mroot)))


def test_extra_bins_hooks_and_ssh_key_go_into_the_image(mroot):
    mroot.write("/usr/local/bin/tool", "#!/bin/sh\n", mode=0o755)
    mroot.write("/root/.ssh/kdump_id_rsa", "KEY")
    mroot.write("/etc/kdump/post.d/01", "#!/bin/sh\n", mode=0o755)
    mroot.write("/etc/kdump.conf", "ssh kdump@10.0.2.2\nextra_bins tool\n"
                                   "kdump_pre /usr/local/bin/tool\n")
    p = planmod.resolve(str(mroot))
    files = mkdumprd.extra_files(p)
    assert files == ["/usr/local/bin/tool", "/etc/kdump/post.d/01", "/usr/local/bin/tool",
                     "/root/.ssh/kdump_id_rsa"]
    mroot.write("/root/.ssh/known_hosts", "10.0.2.2 ssh-ed25519 AAAA\n")
    assert mkdumprd.extra_files(p)[-1] == "/root/.ssh/known_hosts"
    # the capture script sets the network up: no dracut network module is asked for
    argv = mkdumprd.dracut_argv("dracut", p, "/x.img", [], "/")
    assert "network" not in argv[argv.index("--add") + 1].split()
    env = mkdumprd.plan_env(p, mkdumprd.capture_mount(p), ("/dev/vda", "ext4", "defaults"))
    assert "KDUMP_COLLECTOR_OPTS='-F -l --message-level 7 -d 31'" in env
    assert "KDUMP_TARGET_HOST=10.0.2.2" in env
    mroot.write("/etc/kdump.conf", "extra_bins nosuchtool\n")
    with pytest.raises(KexecError, match="extra_bins: nosuchtool not found"):
        mkdumprd.extra_files(planmod.resolve(str(mroot)))


def test_overlay_basedir_adds_our_module(tmp_path, fake_root):
    fake_root.mkdir("/usr/lib/dracut/modules.d/90kernel-modules")
    fake_root.write("/usr/lib/dracut/dracut-functions.sh", "")
    base = mkdumprd.overlay_basedir(str(fake_root), mkdumprd.SOURCE_MODULE_DIR, str(tmp_path))
    names = sorted(os.listdir(os.path.join(base, "modules.d")))
    assert names == ["90kernel-modules", "99kexec-py-kdump"]
    assert os.path.exists(os.path.join(base, "dracut-functions.sh"))
    assert os.path.exists(os.path.join(base, "modules.d/99kexec-py-kdump/module-setup.sh"))


def test_cli_refuses_to_overwrite_without_f_and_takes_root(mroot, monkeypatch, capsys):
    mroot.write("/boot/old.img", "x")
    assert cli.main(["/boot/old.img", RELEASE, "--root", str(mroot)]) == 1
    assert "exists: use -f" in capsys.readouterr().err
    seen = []
    monkeypatch.setattr(mkdumprd, "build", lambda p, image=None, force=True:
                        seen.append((p.kernel_version, image, force)))
    assert cli.main(["-f", "/boot/new.img", "6.9.9-x", "--root", str(mroot)]) == 0
    assert seen == [("6.9.9-x", "/boot/new.img", True)]
    mroot.write("/etc/kdump.conf", "bogus\n")
    assert cli.main(["-f", "/boot/new.img", RELEASE, "--root", str(mroot)]) == 1
    assert "Invalid kdump config option bogus" in capsys.readouterr().err


def test_network_plan_follows_the_first_kernels_route(mroot):
    mroot.write("/etc/kdump.conf", "ssh kdump@10.0.2.2\n")
    mroot.write("/sys/class/net/eth0/address", "52:54:00:12:34:56\n")
    calls = []

    def ip(argv, **kw):
        calls.append(argv)
        if argv[1:3] == ["-o", "route"]:
            out = "10.0.2.2 dev eth0 src 10.0.2.15 uid 0 \\    cache \n"
        else:
            out = "2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic eth0\n"
        return subprocess.CompletedProcess(argv, 0, out, "")
    p = planmod.resolve(str(mroot))
    net = mkdumprd.network_plan(p, mkdumprd.capture_mount(p), run=ip)
    assert net["target_ip"] == "10.0.2.2" and net["iface"] == "eth0"
    assert net["address"] == "10.0.2.15/24" and net["gateway"] == ""
    assert net["mac"] == "52:54:00:12:34:56"
    env = mkdumprd.plan_env(p, mkdumprd.capture_mount(p), ("/dev/vda", "ext4", "defaults"),
                            net)
    assert "KDUMP_NET_ADDR=10.0.2.15/24" in env and "KDUMP_TARGET_IP=10.0.2.2" in env

    def noroute(argv, **kw):
        return subprocess.CompletedProcess(argv, 0, "10.0.2.2 dev lo src 127.0.0.1\n", "")
    with pytest.raises(KexecError, match="no route to 10.0.2.2"):
        mkdumprd.network_plan(p, mkdumprd.capture_mount(p), run=noroute)
    mroot.write("/etc/kdump.conf", "path /var/crash\n")
    p = planmod.resolve(str(mroot))
    assert mkdumprd.network_plan(p, mkdumprd.capture_mount(p), run=ip) == {}


def test_module_setup_unpacks_compressed_modules(tmp_path):
    """RHEL ships .ko.xz: the own-init image holds them unpacked (kdump-insmod hands the
    file to the kernel as it is), done by module-setup.sh after dracut installed them."""
    import gzip as gz
    import lzma
    import shutil
    initdir = tmp_path / "initdir"
    kdir = initdir / "usr/lib/modules/6.1/kernel/fs"
    kdir.mkdir(parents=True)
    payload = {"a.ko": b"\x7fELF module a", "b.ko": b"\x7fELF module b",
               "c.ko": b"\x7fELF module c", "plain.ko": b"\x7fELF plain"}
    (kdir / "a.ko.xz").write_bytes(lzma.compress(payload["a.ko"], check=lzma.CHECK_CRC32))
    (kdir / "b.ko.gz").write_bytes(gz.compress(payload["b.ko"]))
    (kdir / "plain.ko").write_bytes(payload["plain.ko"])
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-o", str(kdir / "c.ko.zst"), "-"],
                       input=payload["c.ko"], check=True)
    else:
        del payload["c.ko"]
    script = ('derror() { echo "derror: $*" >&2; }\n'
              '. "%s"\n_unpack_modules\n' % os.path.join(mkdumprd.SOURCE_MODULE_DIR,
                                                          "module-setup.sh"))
    p = subprocess.run(["bash", "-c", script], env=dict(os.environ, initdir=str(initdir)),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(kdir)) == sorted(payload)
    for name, data in payload.items():
        assert (kdir / name).read_bytes() == data, name
    # a compressor the build machine lacks is a clear error, not a silently broken image
    (kdir / "d.ko.xz").write_bytes(b"x")
    bindir = tmp_path / "bin"          # find, and no xz
    bindir.mkdir()
    os.symlink(shutil.which("find"), str(bindir / "find"))
    p = subprocess.run(["bash", "-c", "PATH=%s; %s" % (bindir, script)],
                       env=dict(os.environ, initdir=str(initdir)),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    assert p.returncode != 0 and "xz is needed to unpack d.ko.xz" in p.stderr
