"""Boot a real Debian 12 root with systemd as PID 1 in QEMU (TCG), for the kdump service
scenarios: `systemctl enable --now kdump`, a sysrq crash, a capture kernel that saves the
dump to a disk, a reboot back into the first kernel, checks.

    from .guest import SystemdGuest

    def test_something(tmp_path):
        g = SystemdGuest(str(tmp_path / "guest"))   # overlay on the cached image
        g.add_disk(img, "raw")                      # /dev/vdb (made with mkfs.ext4/xfs)
        g.script(1, "record start kdumpctl start\nresult x yes\nreboot")
        g.script(2, "poweroff")
        g.boot("crashkernel=256M")                  # returns when QEMU exits
        assert g.recorded("start")[0] == 0 and g.read("result.x") == "yes\n"
        g.read_file(img, "/var/crash/...")          # debugfs, nothing mounted

Pieces:

- base_image(kernel) / ensure_base_image(kernel): a cached raw ext4 image (4G sparse) of
  a debootstrap'd bookworm root (minbase + PACKAGES) with the VM kernel in /boot and
  /usr/lib/modules, fstab, hostname, passwordless root, DHCP by systemd-networkd, the kpy
  units, and two initrds kept next to it: dracut's (built in the chroot, also
  /boot/initrd.img-VER in the image) and a small busybox one (the default: ~20 s less per
  boot under TCG). Nothing is mounted except /proc, /sys and /dev bind-mounted into the
  chroot for systemctl enable and dracut (unmounted in a finally); mkfs.ext4 -d makes the
  image. The debootstrap result is cached too, as a tar keyed by the package list.
- SystemdGuest(testdir): a per-test qcow2 overlay on that image, extra virtio disks, the
  boot scripts, a boot that waits for QEMU to exit, and files read back from the disks
  with debugfs.
- The project, installed in the guest from a DESTDIR tree built once per process on the
  host (build_install_tree: `make install DESTDIR=... PYTHON=/usr/bin/python3` when the
  Makefile has an install target, else install_tree_by_copy), shared read-only over 9p
  (tag kpyinstall). kpy-install.service copies it into / on the first boot of each overlay
  (marker /var/lib/kpy-installed, which lists the files), before kpy-driver.service and
  kdump.service, and runs `systemctl daemon-reload` when unit files came with it. Copying
  rather than mounting the tree over /usr makes the guest a normal installed system whose
  files are on its own disk in later boots and for the capture kernel.

The driver: kpy-driver.service mounts the test directory's kpyctl/ (tag kpyctl, read-write)
at /kpyctl, increments the boot counter in /var/lib/kpy-boot and runs /kpyctl/bootN.sh
(N = the counter) with output to bootN.log; bootN.start holds /proc/uptime when it began
and bootN.cmdline the command line. A script ends its boot with the prelude's `poweroff`,
`reboot` or `crash` (each writes bootN.end and bootN.rc=0 first); a script that returns
gets bootN.rc = its status, bootN.end = exit, and a poweroff. With no bootN.sh the guest
powers off. The driver is Type=simple ordered after multi-user.target, so the boot
transaction is over while the script runs (`systemctl is-system-running --wait` in a
script returns instead of waiting for the driver itself). It does not run in a capture
kernel (/proc/vmcore or elfcorehdr= present), nor with kpy.nodriver on the command line.
QEMU runs without -no-reboot: a guest reboot re-enters the same -kernel/-initrd/-append,
and panic=10 turns a panic without a capture kernel into such a reboot.
"""
import atexit
import contextlib
import glob
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from .harness import Expectations, flock, vm_lock
from .kernel import cache_dir, ensure_kernel, package_name

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = "bookworm"
# Bump when the code that builds the image changes; the package list, the kernel and the
# texts written into the image (units, scripts, initrd options) are in the key already.
RECIPE_VERSION = 4
IMAGE_SIZE = "4G"  # sparse; the overlay holds what a test writes
LABEL = "kpyroot"
HOSTNAME = "kpy-guest"
PACKAGES = (
    "systemd", "systemd-sysv", "udev", "kmod", "dbus",
    "python3", "python3-cffi", "python3-cffi-backend", "python3-ply", "python3-pycparser",
    "e2fsprogs", "xfsprogs",
    # dracut-core Depends: cpio kmod udev kpartx libkmod2 e2fsprogs; systemd is a Recommends
    "dracut-core", "cpio", "kpartx", "zstd", "gzip",
    "libzstd1", "liblzo2-2", "zlib1g", "libsnappy1v5",
    "openssh-client", "iproute2", "procps", "util-linux", "mount", "findutils",
    "nfs-common",    # mount.nfs, for the nfs dump target (scenario e)
)
# --drivers (not --add-drivers): only these and their dependencies, so the initrd is a
# few MB and unpacks in about a second under TCG instead of several.
DRACUT_DRIVERS = "virtio_blk virtio_pci virtio_net virtio_rng virtio_console ext4 9p 9pnet_virtio"
# Modules udev would load for QEMU's emulated PC that only cost boot time under TCG.
BLACKLIST = ("kvm", "kvm_amd", "kvm_intel", "floppy", "pcspkr", "powernow_k8")
# dracut modules the first-boot initrd does not need (no LVM, LUKS, NVDIMM, resume).
DRACUT_OMIT = "crypt dm nvdimm lunmask resume overlay-root virtiofs usrmount terminfo"
# Units that cost boot time or wake up during a long test (apt and e2scrub timers).
MASKED = ("e2scrub_reap.service", "e2scrub_all.timer", "apt-daily.timer",
          "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "fstrim.timer",
          # NFSv4 needs no portmapper; nfs-common pulls it in
          "rpcbind.service", "rpcbind.socket")
BASE_APPEND = "root=/dev/vda rw console=ttyS0 panic=10"
# The fast first-boot initramfs: busybox, these modules (and what modules.dep says they
# need), mount root, switch_root to systemd. About 20 s per boot less than the dracut one
# under TCG on a busy 2-core machine; boot(initrd="dracut") uses the image's own.
FAST_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4")
DEFAULT_TIMEOUT = 600
P9 = "trans=virtio,version=9p2000.L,msize=512000"

FSTAB = "/dev/vda / ext4 rw,errors=remount-ro 0 0\n"

NETWORK = """[Match]
Name=en* eth*

[Network]
DHCP=yes
"""

WAIT_ONLINE = """[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30
"""

INSTALL_UNIT = """[Unit]
Description=kexec-py VM test: install the project tree from the kpyinstall share
After=local-fs.target
Before=kpy-driver.service kdump.service
ConditionPathExists=!/var/lib/kpy-installed
ConditionPathExists=!/proc/vmcore
ConditionKernelCommandLine=!elfcorehdr

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/kpy/kpy-install
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

INSTALL_SCRIPT = r"""#!/bin/sh
# Copy the kpyinstall share (a DESTDIR tree) into / once per disk.
set -u
say() { echo "kpy-install: $*"; }
modprobe -a 9pnet_virtio 9p 2>/dev/null
src=/run/kpy-install
mkdir -p "$src"
if ! mount -t 9p -o %(p9)s,ro kpyinstall "$src"; then
    say "no kpyinstall share: nothing installed"
    exit 0
fi
cd "$src" || exit 1
units=$(find ./usr/lib/systemd ./lib/systemd ./etc/systemd -type f 2>/dev/null | head -n 1)
find . ! -type d > /run/kpy-install.list
# cp --parents creates missing directories and leaves existing ones (/, /usr, and the
# /sbin -> usr/sbin symlinks) alone; tar -x over / changed / itself while it ran.
rc=0
find . ! -type d -print0 | xargs -0 -r cp -dp --parents --remove-destination -t / || rc=1
find . -mindepth 1 -type d -empty -print0 | xargs -0 -r cp -dpR --parents -t / || rc=1
cd /
umount "$src"
[ "$rc" -eq 0 ] || { say "copy failed ($rc)"; exit 1; }
mkdir -p /var/lib
mv /run/kpy-install.list /var/lib/kpy-installed
say "installed $(wc -l < /var/lib/kpy-installed) files"
if [ -n "$units" ]; then
    say "unit files arrived: systemctl daemon-reload"
    systemctl daemon-reload
fi
sync
""" % {"p9": P9}

DRIVER_UNIT = """[Unit]
Description=kexec-py VM test driver (runs /kpyctl/bootN.sh)
After=multi-user.target kpy-install.service
Wants=kpy-install.service
ConditionPathExists=!/proc/vmcore
ConditionKernelCommandLine=!elfcorehdr
ConditionKernelCommandLine=!kpy.nodriver

[Service]
Type=simple
ExecStart=/usr/lib/kpy/kpy-driver
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

DRIVER_SCRIPT = r"""#!/bin/sh
# Run /kpyctl/bootN.sh for the Nth boot of this disk; power off when there is none.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "kpy-driver: $*"; }
stop() { say "$*: powering off"; sync; systemctl poweroff --no-block; exit 0; }
modprobe -a 9pnet_virtio 9p 2>/dev/null
mkdir -p /kpyctl
mountpoint -q /kpyctl || mount -t 9p -o %(p9)s kpyctl /kpyctl || stop "cannot mount kpyctl"
n=$(cat /var/lib/kpy-boot 2>/dev/null || echo 0)
n=$((n + 1))
mkdir -p /var/lib
echo "$n" > /var/lib/kpy-boot
sync
cat /proc/uptime > "/kpyctl/boot$n.start"
cat /proc/cmdline > "/kpyctl/boot$n.cmdline"
say "boot $n, uptime $(cut -d' ' -f1 /proc/uptime) s"
[ -f "/kpyctl/boot$n.sh" ] || stop "no boot$n.sh"
cd /kpyctl
/bin/sh "/kpyctl/boot$n.sh" > "/kpyctl/boot$n.log" 2>&1 < /dev/null
rc=$?
echo "$rc" > "/kpyctl/boot$n.rc"
echo exit > "/kpyctl/boot$n.end"
tail -n 40 "/kpyctl/boot$n.log" | sed 's/^/kpy-log: /'
stop "boot$n.sh exited $rc"
""" % {"p9": P9}

FAST_INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in %(modules)s; do insmod /lib/modules/$m.ko || echo "kpy-initrd: insmod $m failed"; done
root=/dev/vda
for w in $(cat /proc/cmdline); do
    case "$w" in root=/dev/*) root=${w#root=} ;; esac
done
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 -o rw "$root" /newroot; then
    echo "kpy-initrd: cannot mount $root"; sleep 5; echo o > /proc/sysrq-trigger
fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
"""

PRELUDE = r"""#!/bin/sh
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
OUT=/kpyctl
BOOT=%(n)d
cd "$OUT"
result() { echo "$2" > "$OUT/result.$1"; }
record() { _n=$1; shift; "$@" > "$OUT/$_n.out" 2>&1; echo $? > "$OUT/$_n.rc"; }
_kpy_end() { echo "$1" > "$OUT/boot$BOOT.end"; echo 0 > "$OUT/boot$BOOT.rc"; sync; }
poweroff() { _kpy_end poweroff; systemctl poweroff "$@"; sleep 600; exit 1; }
reboot() { _kpy_end reboot; systemctl reboot "$@"; sleep 600; exit 1; }
crash() { _kpy_end crash; echo c > /proc/sysrq-trigger; sleep 600; exit 1; }
"""


# ---------------------------------------------------------------------------- helpers

def _run(cmd, log=None, **kw):
    """Run cmd; on failure raise with the tail of its output. Returns stdout."""
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, errors="replace", **kw)
    if log is not None:
        with open(log, "a") as f:
            f.write("$ %s\n%s[%.1f s, exit %d]\n\n" % (" ".join(map(shlex.quote, cmd)),
                                                     proc.stdout, time.monotonic() - start,
                                                     proc.returncode))
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(map(shlex.quote, cmd)),
                                                    proc.returncode, proc.stdout[-4000:]))
    return proc.stdout


def _mounts_under(path):
    """Mount points at or below path (deepest first), from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def _unmount_under(path):
    """Unmount everything below path; raise if something stays mounted."""
    for mp in _mounts_under(path):
        if subprocess.call(["umount", mp]) != 0:
            subprocess.call(["umount", "-l", mp])
    left = _mounts_under(path)
    if left:
        raise RuntimeError("still mounted under %s: %s" % (path, left))


def _remove_tree(path):
    """rm -rf that never follows a bind mount into the host's /dev or /proc."""
    if not os.path.lexists(path):
        return
    _unmount_under(path)
    subprocess.check_call(["rm", "-rf", "--one-file-system", path])


@contextlib.contextmanager
def _chroot_mounts(root):
    """/proc, /sys and /dev bind-mounted into root for the with block only."""
    try:
        for d in ("proc", "sys", "dev"):
            target = os.path.join(root, d)
            os.makedirs(target, exist_ok=True)
            subprocess.check_call(["mount", "--bind", "/" + d, target])
        yield
    finally:
        _unmount_under(os.path.join(root, "proc"))
        _unmount_under(os.path.join(root, "sys"))
        _unmount_under(os.path.join(root, "dev"))


def apt_mirror(suite=SUITE):
    """(URI, keyring or None) of the host apt source that serves `suite` main."""
    entries = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in text.split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        k, v = line.split(":", 1)
                        fields[k.strip().lower()] = v.strip()
                for uri in fields.get("uris", "").split():
                    entries.append((fields.get("types", ""), uri, fields.get("suites", ""),
                                    fields.get("components", ""), fields.get("signed-by")))
        elif path.endswith(".list"):
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 4 and words[0] == "deb":
                    opts = [w for w in words[1:] if w.startswith("[")]
                    rest = [w for w in words[1:] if not w.startswith("[") and "]" not in w]
                    signed = None
                    for o in " ".join(opts).strip("[]").split():
                        if o.startswith("signed-by="):
                            signed = o.split("=", 1)[1]
                    entries.append(("deb", rest[0], rest[1], " ".join(rest[2:]), signed))
    for types, uri, suites, comps, signed in entries:
        if "deb" in types.split() and suite in suites.split() and "main" in comps.split():
            if signed and not os.path.isfile(signed):
                signed = None
            return uri, signed
    raise RuntimeError("no apt source for %s main in /etc/apt/sources.list{,.d}" % suite)


# ---------------------------------------------------------------------------- base image

def image_key(kernel_package):
    """Hash of what the image is made from: packages, kernel, RECIPE_VERSION (bump it when
    the build code changes) and the texts it writes (units, scripts, initrd options)."""
    recipe = [FSTAB, NETWORK, WAIT_ONLINE, INSTALL_UNIT, INSTALL_SCRIPT, DRIVER_UNIT,
              DRIVER_SCRIPT, FAST_INIT, FAST_MODULES, DRACUT_DRIVERS, DRACUT_OMIT,
              BLACKLIST, MASKED, IMAGE_SIZE, LABEL, HOSTNAME]
    text = json.dumps({"packages": sorted(PACKAGES), "suite": SUITE,
                       "kernel": kernel_package, "recipe": RECIPE_VERSION,
                       "texts": recipe}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rootfs_key():
    text = json.dumps({"packages": sorted(PACKAGES), "suite": SUITE}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class BaseImage:
    """A finished cached image directory: root.raw, vmlinuz, initrd.img (dracut's, also in
    the image as /boot/initrd.img-VER), initrd-fast.img (busybox), info.json, build.log."""

    def __init__(self, directory, built_seconds=None):
        self.dir = directory
        self.path = os.path.join(directory, "root.raw")
        self.vmlinuz = os.path.join(directory, "vmlinuz")
        self.initrd = os.path.join(directory, "initrd.img")
        self.fast_initrd = os.path.join(directory, "initrd-fast.img")
        with open(os.path.join(directory, "info.json")) as f:
            self.info = json.load(f)
        self.release = self.info["release"]
        self.key = self.info["key"]
        self.built_seconds = built_seconds  # None: it came from the cache


def _debootstrap_tar(cache, log):
    """A tar of the debootstrap'd root, cached by package list (the slow, network step)."""
    tar = os.path.join(cache, "debootstrap-%s-%s.tar" % (SUITE, rootfs_key()))
    if os.path.isfile(tar):
        return tar
    work = tar + ".tmp"
    _remove_tree(work)
    os.makedirs(work)
    root = os.path.join(work, "root")
    uri, keyring = apt_mirror()
    cmd = ["debootstrap", "--variant=minbase", "--components=main",
           "--include=" + ",".join(PACKAGES)]
    if keyring:
        cmd.append("--keyring=" + keyring)
    cmd += [SUITE, root, uri]
    try:
        try:
            _run(cmd, log=log, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        except RuntimeError as e:
            inner = os.path.join(root, "debootstrap", "debootstrap.log")
            tail = open(inner, errors="replace").read()[-3000:] if os.path.exists(inner) else ""
            raise RuntimeError("%s\n--- debootstrap.log ---\n%s" % (e, tail))
        finally:
            _unmount_under(root)
        for deb in glob.glob(os.path.join(root, "var/cache/apt/archives/*.deb")):
            os.unlink(deb)
        _run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root,
              "-cf", tar + ".part", "."], log=log)
        os.rename(tar + ".part", tar)
        for other in glob.glob(os.path.join(cache, "debootstrap-%s-*.tar" % SUITE)):
            if other != tar:
                os.unlink(other)  # an older package list
    finally:
        _remove_tree(work)
    return tar


def _write(root, rel, text, mode=0o644):
    path = os.path.join(root, rel.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _add_kernel(root, kernel, log):
    boot = os.path.join(root, "boot")
    os.makedirs(boot, exist_ok=True)
    for name in ("vmlinuz", "System.map", "config"):
        src = os.path.join(kernel.tree, "boot", "%s-%s" % (name, kernel.release))
        if os.path.exists(src):
            shutil.copy2(src, boot)
    mods = os.path.join(root, "usr/lib/modules")
    os.makedirs(mods, exist_ok=True)
    _run(["cp", "-a", kernel.modules, os.path.join(mods, kernel.release)], log=log)
    depmod = "/sbin/depmod" if os.path.exists("/sbin/depmod") else "depmod"
    _run([depmod, "-b", root, kernel.release], log=log)


def _configure(root):
    """fstab, hostname, passwordless root, DHCP on the user-mode NIC, the kpy units."""
    _write(root, "etc/fstab", FSTAB)
    _write(root, "etc/hostname", HOSTNAME + "\n")
    _write(root, "etc/hosts", "127.0.0.1 localhost\n127.0.1.1 %s\n" % HOSTNAME)
    shadow = os.path.join(root, "etc/shadow")
    with open(shadow) as f:
        lines = f.read().splitlines()
    lines = ["root::" + l.split(":", 2)[2] if l.startswith("root:") else l for l in lines]
    with open(shadow, "w") as f:
        f.write("\n".join(lines) + "\n")
    _write(root, "etc/systemd/network/80-kpy-dhcp.network", NETWORK)
    _write(root, "etc/systemd/system/systemd-networkd-wait-online.service.d/kpy.conf",
           WAIT_ONLINE)
    _write(root, "etc/systemd/system/kpy-install.service", INSTALL_UNIT)
    _write(root, "etc/systemd/system/kpy-driver.service", DRIVER_UNIT)
    _write(root, "usr/lib/kpy/kpy-install", INSTALL_SCRIPT, 0o755)
    _write(root, "etc/modprobe.d/kpy-blacklist.conf",
           "".join("blacklist %s\n" % m for m in BLACKLIST))
    _write(root, "usr/lib/kpy/kpy-driver", DRIVER_SCRIPT, 0o755)


def _chroot_steps(root, release, log):
    """Enable the units and build the first-boot initramfs, inside the chroot."""
    initrd = "/boot/initrd.img-%s" % release
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
           "TMPDIR": "/var/tmp"}
    with _chroot_mounts(root):
        _run(["chroot", root, "systemctl", "enable", "systemd-networkd.service",
              "kpy-install.service", "kpy-driver.service"], log=log, env=env)
        _run(["chroot", root, "systemctl", "mask"] + list(MASKED), log=log, env=env)
        _run(["chroot", root, "dracut", "-f", "--no-hostonly", "--no-early-microcode",
              "--compress=zstd", "--drivers", DRACUT_DRIVERS, "--omit", DRACUT_OMIT,
              "--kver", release, initrd],
             log=log, env=env)
    return os.path.join(root, initrd.lstrip("/"))


def _module_order(kernel, names):
    """names and their modules.dep dependencies, each after what it needs."""
    deps = {}
    with open(os.path.join(kernel.modules, "modules.dep")) as f:
        for line in f:
            mod, _, rest = line.partition(":")
            deps[os.path.basename(mod)[:-3].replace("-", "_")] = (mod, rest.split())
    order = []

    def visit(name):
        if name in order or name not in deps:
            return  # done, or built into the kernel
        for dep in deps[name][1]:
            visit(os.path.basename(dep)[:-3].replace("-", "_"))
        order.append(name)
    for n in names:
        visit(n)
    return [(n, os.path.join(kernel.modules, deps[n][0])) for n in order]


def build_fast_initrd(kernel, path):
    """An uncompressed busybox initramfs that mounts /dev/vda and starts systemd."""
    from kexec_py.cpio import CpioWriter
    from .harness import find_busybox
    mods = _module_order(kernel, FAST_MODULES)
    with open(path, "wb") as f:
        w = CpioWriter(f)
        for d in ("bin", "dev", "proc", "sys", "newroot", "lib/modules"):
            w.mkdir(d)
        w.device("dev/console", "c", 5, 1)
        w.add_path("bin/busybox", find_busybox(), mode=0o755)
        for name, ko in mods:
            w.add_path("lib/modules/%s.ko" % name, ko, mode=0o644)
        w.add_file("init", (FAST_INIT % {"modules": " ".join(n for n, _ in mods)}).encode(),
                   mode=0o755)
        w.close()
    return path


def _build_image(work, kernel, kernel_package, key, log):
    root = os.path.join(work, "root")
    os.makedirs(root)
    tar = _debootstrap_tar(os.path.dirname(work), log)
    _run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root,
          "-xf", tar], log=log)
    _add_kernel(root, kernel, log)
    _configure(root)
    initrd = _chroot_steps(root, kernel.release, log)
    shutil.copy2(initrd, os.path.join(work, "initrd.img"))
    build_fast_initrd(kernel, os.path.join(work, "initrd-fast.img"))
    shutil.copy2(kernel.vmlinuz, os.path.join(work, "vmlinuz"))
    for leftover in glob.glob(os.path.join(root, "var/tmp/*")):
        _remove_tree(leftover)
    image = os.path.join(work, "root.raw")
    _run(["mkfs.ext4", "-q", "-F", "-L", LABEL, "-d", root, image, IMAGE_SIZE], log=log)
    _remove_tree(root)
    return {"key": key, "release": kernel.release, "kernel_package": kernel_package,
            "packages": list(PACKAGES), "suite": SUITE, "mirror": apt_mirror()[0],
            "recipe": RECIPE_VERSION, "size": IMAGE_SIZE}


def _check_build_host():
    if os.geteuid() != 0:
        raise RuntimeError("building the guest image needs root (debootstrap, chroot, "
                           "mount --bind); run the VM tests as root")
    missing = [t for t in ("debootstrap", "mkfs.ext4", "chroot", "tar", "qemu-img", "debugfs")
               if not shutil.which(t)]
    if missing:
        raise RuntimeError("missing %s: run tools/install-deps.sh (debootstrap, qemu-utils, "
                           "e2fsprogs)" % ", ".join(missing))


def _prune_old_images(cache, keep, kernel_package):
    """Remove the images this one supersedes: the same kernel, an older recipe or package
    list (about 850 MB each)."""
    for d in glob.glob(os.path.join(cache, "guest-%s-*" % SUITE)):
        if d == keep or d.endswith(".tmp"):
            continue
        try:
            with open(os.path.join(d, "info.json")) as f:
                same_kernel = json.load(f).get("kernel_package") == kernel_package
        except (OSError, ValueError):
            same_kernel = False
        if same_kernel:
            _remove_tree(d)


def base_image(kernel=None):
    """The cached BaseImage for kernel, built when missing (under a lock)."""
    kernel = kernel or ensure_kernel()
    kernel_package = (os.path.basename(kernel.tree) if os.environ.get("KPY_VM_KERNEL_DIR")
                      else package_name())
    key = image_key(kernel_package)
    cache = cache_dir()
    final = os.path.join(cache, "guest-%s-%s" % (SUITE, key))
    if os.path.isfile(os.path.join(final, "info.json")):
        return BaseImage(final)
    with flock(os.path.join(cache, "guest-build.lock")):
        if os.path.isfile(os.path.join(final, "info.json")):
            return BaseImage(final)
        _check_build_host()
        for stale in glob.glob(os.path.join(cache, "guest-*.tmp")):
            _remove_tree(stale)  # an interrupted build: never reused
        work = final + ".tmp"
        os.makedirs(work)
        start = time.monotonic()
        try:
            info = _build_image(work, kernel, kernel_package, key,
                                os.path.join(work, "build.log"))
            info["build_seconds"] = round(time.monotonic() - start, 1)
            with open(os.path.join(work, "info.json"), "w") as f:
                json.dump(info, f, indent=1)
            os.rename(work, final)
        except BaseException:
            _unmount_under(work)
            raise
        _prune_old_images(cache, final, kernel_package)
    return BaseImage(final, built_seconds=info["build_seconds"])


def ensure_base_image(kernel=None):
    """Path of the cached raw ext4 base image (see base_image for the rest)."""
    return base_image(kernel).path


# ---------------------------------------------------------------------------- install tree

def _has_make_install():
    try:
        with open(os.path.join(PROJECT, "Makefile")) as f:
            return any(l.startswith("install:") for l in f)
    except OSError:
        return False


def _install_python():
    """The interpreter `make install` builds with: Debian's own python3 when the host has
    it (the guest's python3 is the same 3.11 and looks in /usr/lib/python3/dist-packages,
    where DEB_PYTHON_INSTALL_LAYOUT=deb puts the package), else the running one."""
    sysp = "/usr/bin/python3"
    if os.path.exists(sysp) and subprocess.call(
            [sysp, "-c", "import setuptools, wheel, cffi, pip"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
        return sysp
    return sys.executable


def install_tree_by_make(dest):
    """`make install DESTDIR=dest`, the way the README installs on a non-RHEL host."""
    _run(["make", "-C", PROJECT, "install", "DESTDIR=" + dest, "PYTHON=" + _install_python()])


WRAPPER = """#!/usr/bin/python3
import sys
from kexec_py.cli.%s import main
sys.exit(main())
"""


def install_tree_by_copy(dest):
    """Before `make install` existed: the built package into dist-packages, small python3
    wrappers for kexec, kdumpctl and mkdumprd, and the C tools as /usr/sbin/vmcore-*."""
    pkg = os.path.join(PROJECT, "kexec_py")
    for need in ("libexec/vmcore-copy", "libexec/vmcore-dmesg", "data/purgatory.bin"):
        if not os.path.exists(os.path.join(pkg, need)):
            raise RuntimeError("kexec_py/%s is missing: run `make build` first" % need)
    if not glob.glob(os.path.join(pkg, "_native*.so")):
        raise RuntimeError("kexec_py/_native*.so is missing: run `make build` first")
    site = os.path.join(dest, "usr/lib/python3/dist-packages")
    os.makedirs(site, exist_ok=True)
    shutil.copytree(pkg, os.path.join(site, "kexec_py"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.c", "*.o"))
    for rel, module in (("usr/sbin/kexec", "kexec"), ("usr/bin/kdumpctl", "kdumpctl"),
                        ("usr/sbin/mkdumprd", "mkdumprd")):
        _write(dest, rel, WRAPPER % module, 0o755)
    for tool in ("vmcore-copy", "vmcore-dmesg"):
        shutil.copy2(os.path.join(pkg, "libexec", tool), os.path.join(dest, "usr/sbin", tool))


def build_install_tree(dest, method=None):
    """Fill dest (a DESTDIR) with kexec-py; returns the method used.

    method: "make", "copy", or None for $KPY_GUEST_INSTALL, else "make" when the Makefile
    has an install target, falling back to "copy" (said in the result) if it fails."""
    method = method or os.environ.get("KPY_GUEST_INSTALL") or "auto"
    _remove_tree(dest)
    os.makedirs(dest)
    os.chmod(dest, 0o755)
    if method == "copy" or (method == "auto" and not _has_make_install()):
        install_tree_by_copy(dest)
        return "copy"
    try:
        install_tree_by_make(dest)
        return "make"
    except RuntimeError as e:
        if method == "make":
            raise
        print("guest: make install failed, installing by copy instead:\n%s" % str(e)[-1500:])
        _remove_tree(dest)
        os.makedirs(dest)
        os.chmod(dest, 0o755)
        install_tree_by_copy(dest)
        return "copy (make install failed)"


_SHARED_TREES = {}


def shared_install_tree(method=None):
    """(path, method used): one install tree per process, built on first use and shared
    read-only by every guest (make install takes ~10 s; the tests need it once)."""
    key = method or os.environ.get("KPY_GUEST_INSTALL") or "auto"
    if key not in _SHARED_TREES:
        parent = tempfile.mkdtemp(prefix="kpy-guest-install-")
        atexit.register(_remove_tree, parent)
        tree = os.path.join(parent, "root")
        _SHARED_TREES[key] = (tree, build_install_tree(tree, method))
    return _SHARED_TREES[key]


# ---------------------------------------------------------------------------- the guest

def _ext_header(image):
    """dumpe2fs -h of an ext2/3/4 image; a clear error for anything else (xfs)."""
    proc = subprocess.run(["dumpe2fs", "-h", image], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, errors="replace")
    if proc.returncode != 0:
        kind = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", image],
                              stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
        raise ValueError("%s is not ext2/3/4 (%s): debugfs cannot read it; have a guest "
                         "script copy the files to $OUT (/kpyctl) instead"
                         % (image, kind or "unknown"))
    return proc.stdout


class SystemdGuest(Expectations):
    """One test's Debian guest: overlay disk, extra disks, boot scripts, boots, results.

    Files in the test directory: overlay.qcow2, kpyctl/ (the driver's share: bootN.sh,
    .log, .rc, .end, .start, .cmdline, result.NAME, NAME.out/.rc), serial.log
    (serial.K.log for the K-th boot() call), qemu.log, qemu.cmd, snap-*.raw.
    """

    def __init__(self, testdir, kernel=None, install=True, install_method=None,
                 install_tree=None):
        self.dir = os.path.abspath(testdir)
        self.ctl = os.path.join(self.dir, "kpyctl")
        os.makedirs(self.ctl, exist_ok=True)
        self.base = base_image(kernel)
        self.overlay = os.path.join(self.dir, "overlay.qcow2")
        if not os.path.exists(self.overlay):
            _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                  self.base.path, self.overlay])
        self.disks = []  # [(path, fmt)] after the overlay: /dev/vdb, /dev/vdc, ...
        self.install = install  # False: no kpyinstall share, nothing installed
        self.install_method = install_method  # see build_install_tree
        self.install_tree = install_tree  # None: shared_install_tree() at the first boot
        self.installed_by = "given" if install_tree else None
        self.runs = 0
        self.seconds = None  # wall time of the last boot() call
        self.driver_seen = {}  # boot number -> host seconds from QEMU start to bootN.start
        self._snaps = {}

    # setting up
    def add_disk(self, path, fmt="raw"):
        """Attach an image as the next virtio disk; returns its guest device name."""
        self.disks.append((os.path.abspath(path), fmt))
        return "/dev/vd" + chr(ord("a") + len(self.disks))

    def script(self, n, body):
        """bootN.sh, run by the driver (as root, cwd /kpyctl) on the Nth boot: PRELUDE
        (set -u, PATH, OUT=/kpyctl, BOOT=n, `result NAME VALUE`, `record NAME cmd...`,
        and `poweroff`, `reboot` (both take systemctl's options, e.g. -f) and `crash`,
        which end the boot) followed by body."""
        with open(os.path.join(self.ctl, "boot%d.sh" % n), "w") as f:
            f.write(PRELUDE % {"n": n} + body.strip() + "\n")

    def initrd_path(self, initrd):
        """"fast" (busybox, the default), "dracut" (the image's own), or a path."""
        return {"fast": self.base.fast_initrd, "dracut": self.base.initrd}.get(initrd, initrd)

    def qemu_command(self, cmdline_extra, memory, smp, qemu_args=(), initrd="fast"):
        qemu = shutil.which("qemu-system-x86_64")
        if not qemu:
            raise RuntimeError("qemu-system-x86_64 is not installed")
        cmd = [qemu, "-accel", "tcg", "-m", memory, "-smp", str(smp),
               "-nodefaults", "-display", "none", "-monitor", "none",
               "-serial", "file:" + self.serial_path(),
               "-kernel", self.base.vmlinuz, "-initrd", self.initrd_path(initrd),
               "-append", (BASE_APPEND + " " + cmdline_extra).strip(),
               "-drive", "file=%s,format=qcow2,if=virtio" % self.overlay]
        for path, fmt in self.disks:
            cmd += ["-drive", "file=%s,format=%s,if=virtio" % (path, fmt)]
        cmd += ["-virtfs", "local,path=%s,mount_tag=kpyctl,security_model=none,"
                           "multidevs=remap" % self.ctl]
        if self.install:
            cmd += ["-virtfs", "local,path=%s,mount_tag=kpyinstall,security_model=none,"
                               "readonly=on,multidevs=remap" % self.install_tree]
        cmd += ["-nic", "user,model=virtio-net-pci", "-device", "virtio-rng-pci"]
        return cmd + list(qemu_args)

    def serial_path(self):
        return os.path.join(self.dir, "serial.log" if self.runs <= 1
                            else "serial.%d.log" % self.runs)

    def boot(self, cmdline_extra="crashkernel=256M", memory="1G", smp=2,
             timeout=DEFAULT_TIMEOUT, qemu_args=(), initrd="fast"):
        """Start QEMU and wait until the guest powers off (reboots stay inside QEMU and
        come back through the same -kernel, -initrd and -append).

        The command line is BASE_APPEND + cmdline_extra; initrd is "fast", "dracut" or a
        path (see initrd_path); qemu_args are appended (e.g. a -monitor socket)."""
        if self.install and self.install_tree is None:
            self.install_tree, self.installed_by = shared_install_tree(self.install_method)
        self.runs += 1
        for snap in set(self._snaps.values()):
            if os.path.basename(snap).startswith("snap-") and os.path.dirname(snap) == self.dir:
                os.unlink(snap)  # stale once the guest runs again
        self._snaps.clear()
        cmd = self.qemu_command(cmdline_extra, memory, smp, qemu_args, initrd)
        with open(os.path.join(self.dir, "qemu.cmd"), "a") as f:
            f.write(" ".join(map(shlex.quote, cmd)) + "\n")
        with vm_lock():
            rc = self._run_qemu(cmd, timeout)
        if rc != 0:
            self.fail("qemu exited with status %d" % rc)
        return self

    def _run_qemu(self, cmd, timeout):
        start = time.monotonic()
        with open(os.path.join(self.dir, "qemu.log"), "a") as qlog:
            proc = subprocess.Popen(cmd, stdout=qlog, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            try:
                while True:
                    try:
                        proc.wait(timeout=0.5)
                        break
                    except subprocess.TimeoutExpired:
                        self._note_driver_starts(time.monotonic() - start)
                        if time.monotonic() - start > timeout:
                            raise
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.seconds = time.monotonic() - start
                self.fail("guest did not power off within %d s (killed)" % timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        self.seconds = time.monotonic() - start
        self._note_driver_starts(self.seconds)
        return proc.returncode

    def _note_driver_starts(self, elapsed):
        for path in glob.glob(os.path.join(self.ctl, "boot*.start")):
            n = int(os.path.basename(path)[4:-6])
            self.driver_seen.setdefault(n, round(elapsed, 1))

    # results in kpyctl/
    def read(self, name, default=None):
        try:
            with open(os.path.join(self.ctl, name), errors="replace") as f:
                return f.read()
        except OSError:
            return default

    def result(self, name, default=None):
        """What `result NAME VALUE` wrote, stripped; default when it never ran."""
        text = self.read("result." + name)
        return default if text is None else text.strip()

    def boot_rc(self, n):
        text = self.read("boot%d.rc" % n)
        return None if text is None else int(text.strip())

    def boot_end(self, n):
        """How boot n's script ended: poweroff, reboot, crash, exit, or None."""
        text = self.read("boot%d.end" % n)
        return None if text is None else text.strip()

    def driver_uptime(self, n):
        """Guest uptime (s) when the driver started boot n's script."""
        text = self.read("boot%d.start" % n)
        return None if text is None else float(text.split()[0])

    def recorded(self, name):
        """(status, output) of a `record NAME cmd...` line, or (None, None)."""
        rc = self.read(name + ".rc")
        return (None if rc is None else int(rc.strip())), self.read(name + ".out")

    def serial_log(self):
        try:
            with open(self.serial_path(), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def diagnostics(self, lines=80):
        parts = []
        for path in sorted(glob.glob(os.path.join(self.ctl, "boot*.log"))):
            with open(path, errors="replace") as f:
                parts.append("--- %s ---\n%s" % (os.path.basename(path), f.read()[-3000:]))
        try:
            with open(os.path.join(self.dir, "qemu.log"), errors="replace") as f:
                qlog = f.read()
            if qlog.strip():
                parts.append("--- qemu.log ---\n" + qlog[-2000:])
        except OSError:
            pass
        tail = "\n".join(self.serial_log().splitlines()[-lines:])
        parts.append("--- %s (last %d lines) ---\n%s"
                     % (os.path.basename(self.serial_path()), lines, tail))
        return "\n".join(parts)

    # files on the disks, read with debugfs (ext2/3/4 only; the guest is not running)
    def _snapshot(self, disk=None):
        """A raw ext4 image of disk (None: the overlay) that debugfs can read: qcow2 is
        converted, and an unclean journal (a crash) is replayed on a copy."""
        path, fmt = (self.overlay, "qcow2") if disk in (None, "root", self.overlay) else \
            next(((p, f) for p, f in self.disks if p == os.path.abspath(disk)), (disk, "raw"))
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key in self._snaps:
            return self._snaps[key]
        snap = os.path.join(self.dir, "snap-%s.raw" % os.path.basename(path))
        if fmt != "raw":
            _run(["qemu-img", "convert", "-O", "raw", "-f", fmt, path, snap])
        else:
            if "needs_recovery" not in _ext_header(path):
                self._snaps[key] = path
                return path
            _run(["cp", "--sparse=always", path, snap])
        if "needs_recovery" in _ext_header(snap):
            subprocess.call(["e2fsck", "-y", "-E", "journal_only", snap],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._snaps[key] = snap
        return snap

    def _debugfs(self, disk, request):
        proc = subprocess.run(["debugfs", "-R", request, self._snapshot(disk)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        errors = [l for l in proc.stderr.decode(errors="replace").splitlines()
                  if l.strip() and not l.startswith("debugfs ")]
        if proc.returncode != 0 or errors:
            raise FileNotFoundError("debugfs -R %r on %s: %s"
                                    % (request, disk or "overlay", "; ".join(errors)))
        return proc.stdout

    def read_file(self, disk, path):
        """Bytes of path on disk (None or "root": the overlay; else an add_disk path)."""
        return self._debugfs(disk, 'cat "%s"' % path)

    def listdir(self, disk, path):
        """Names in directory path on disk (without . and ..)."""
        out = self._debugfs(disk, 'ls -p "%s"' % path).decode(errors="replace")
        names = [l.split("/")[5] for l in out.splitlines() if l.count("/") >= 6]
        return [n for n in names if n not in (".", "..")]

    def rdump(self, disk, path, dest):
        """Copy directory (or file) path from disk into dest/; returns dest/basename."""
        os.makedirs(dest, exist_ok=True)
        self._debugfs(disk, 'rdump "%s" "%s"' % (path, os.path.abspath(dest)))
        out = os.path.join(dest, os.path.basename(path.rstrip("/")))
        if not os.path.exists(out):
            raise FileNotFoundError("rdump %s from %s left nothing in %s" % (path, disk, dest))
        return out


if __name__ == "__main__":
    img = base_image()
    print(img.path, "built in %s s" % img.built_seconds if img.built_seconds else "(cached)")
