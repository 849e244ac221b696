"""Boot real kernels in QEMU (TCG) for the VM tests.

The guest gets the host's whole file system read-only over 9p (tag hostroot) and one
writable directory (tag out), mounted inside the host tree at its own host path, so a
stage script sees the same paths as the host: the project's venv, the cached kernel and
the test's output directory. A stage-aware init runs `stageN.sh` from the output
directory, where N comes from `kpy.stage=N` on the kernel command line; each kexec passes
the next stage number on. QEMU exits when the guest powers off or reboots (-no-reboot,
panic=-1), and the test reads what the stages wrote.
"""
import contextlib
import fcntl
import gzip
import io
import os
import shlex
import shutil
import subprocess
import sys
import time

from kexec_py.cpio import CpioWriter

from .kernel import ensure_kernel

MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p",
           # ext4 on a loop device (page-cache pages of a disk-backed file system)
           "crc32c_generic", "crc16", "mbcache", "jbd2", "ext4", "loop")
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox", "/sbin/busybox")
DEFAULT_TIMEOUT = 900  # seconds for a whole boot chain: TCG on a shared 2-core machine
MARKER_NAME = "kpy-marker"
LOCK_PATH = "/tmp/kexec-py-vm.lock"

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /host /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in %(modules)s; do
    [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
stage=0
out=
for w in $(cat /proc/cmdline); do
    case "$w" in
        kpy.stage=*) stage=${w#kpy.stage=} ;;
        kpy.out=*) out=${w#kpy.out=} ;;
    esac
done
echo "kpy: init stage $stage"
die() { echo "kpy: FATAL: $*"; poweroff -f; sleep 5; echo o > /proc/sysrq-trigger; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro hostroot /host || die "mount hostroot"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out "/host$out" || die "mount out"
mount --bind /proc /host/proc || die "bind /proc"
mount --bind /sys /host/sys || die "bind /sys"
mount --bind /dev /host/dev || die "bind /dev"
[ -f /%(marker)s ] && cp /%(marker)s "/host$out/initrd-marker.$stage"
cat /proc/cmdline > "/host$out/cmdline.$stage"
script="$out/stage$stage.sh"
if [ -f "/host$script" ]; then
    echo "kpy: running stage $stage"
    chroot /host /bin/sh "$script" > "/host$out/stage$stage.log" 2>&1
    rc=$?
    echo "$rc" > "/host$out/stage$stage.rc"
    echo "kpy: stage $stage exited $rc"
    sed 's/^/kpy-log: /' "/host$out/stage$stage.log"
else
    echo "kpy: no $script"
fi
sync
umount "/host$out"
poweroff -f
"""


def find_busybox():
    for p in BUSYBOX_PATHS:
        if os.path.isfile(p):
            return p
    raise RuntimeError("no static busybox (apt-get install busybox-static)")


def build_initramfs(kernel, path):
    """Write a gzip'd initramfs with busybox, the 9p/virtio modules and the init."""
    buf = io.BytesIO()
    w = CpioWriter(buf)
    for d in ("bin", "sbin", "dev", "proc", "sys", "host", "tmp", "lib/modules"):
        w.mkdir(d)
    w.device("dev/console", "c", 5, 1)
    w.add_path("bin/busybox", find_busybox(), mode=0o755)
    present = []
    for name in MODULES:
        ko = kernel.module(name)
        if ko is None:
            continue
        if not ko.endswith(".ko"):
            raise RuntimeError("%s is compressed; busybox insmod needs plain .ko" % ko)
        w.add_path("lib/modules/%s.ko" % name, ko, mode=0o644)
        present.append(name)
    w.add_file("init", (INIT % {"modules": " ".join(present), "marker": MARKER_NAME})
               .encode(), mode=0o755)
    w.close()
    with open(path, "wb") as f:
        f.write(gzip.compress(buf.getvalue(), 6))
    return path


def initrd_with_marker(base, path, token):
    """base initramfs + a second archive holding /kpy-marker (the kernel unpacks both)."""
    buf = io.BytesIO()
    w = CpioWriter(buf)
    w.add_file(MARKER_NAME, token.encode() + b"\n")
    w.close()
    with open(base, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data + gzip.compress(buf.getvalue()))
    return path


@contextlib.contextmanager
def flock(path):
    """An exclusive flock on path (created if missing) for the with block."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def vm_lock():
    """One guest at a time on this machine: two TCG guests on 2 cores time each other out."""
    return flock(LOCK_PATH)


class GuestFailure(AssertionError):
    pass


class Expectations:
    """fail()/expect() for a guest class that has diagnostics()."""

    def fail(self, message):
        raise GuestFailure("%s\n%s" % (message, self.diagnostics()))

    def expect(self, condition, message):
        if not condition:
            self.fail(message)


class VM(Expectations):
    """One test's guest: an output directory, stage scripts and a boot chain."""

    def __init__(self, outdir, kernel, initrd, memory="512M", smp=2):
        self.out = os.path.abspath(outdir)
        os.makedirs(os.path.join(self.out, "tmp"), exist_ok=True)
        self.kernel = kernel
        self.initrd = initrd
        self.memory = memory
        self.smp = smp
        self.serial = os.path.join(self.out, "serial.log")
        self.venv_bin = os.path.dirname(os.path.abspath(sys.executable))
        self.seconds = None
        self.returncode = None
        self.hung = False

    def path(self, name):
        return os.path.join(self.out, name)

    def wait_for(self, name, timeout, what=None):
        """Wait until the guest has written file name in the output directory."""
        end = time.monotonic() + timeout
        while not os.path.exists(self.path(name)):
            if time.monotonic() > end:
                self.fail("%s: the guest did not write %s within %d s"
                          % (what or "waiting", name, timeout))
            time.sleep(0.5)

    def cmdline(self, stage, extra=""):
        """A command line for a stage: console, stage marker, output path, extras."""
        base = "console=ttyS0 panic=-1 kpy.stage=%d kpy.out=%s" % (stage, self.out)
        return (base + " " + extra).strip()

    def stage(self, n, body):
        """Write the script stage n runs (POSIX sh, in the host tree via chroot)."""
        prelude = "\n".join((
            "set -u",
            "export PATH=%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            % shlex.quote(self.venv_bin),
            "export TMPDIR=%s HOME=%s PYTHONDONTWRITEBYTECODE=1"
            % (shlex.quote(self.path("tmp")), shlex.quote(self.out)),
            "OUT=%s" % shlex.quote(self.out),
            "cd \"$OUT\"",
            "result() { echo \"$2\" > \"$OUT/result.$1\"; }",
            ""))
        with open(self.path("stage%d.sh" % n), "w") as f:
            f.write("#!/bin/sh\n" + prelude + body.strip() + "\n")

    def boot(self, extra_cmdline="", timeout=DEFAULT_TIMEOUT, expect_hang=False,
             qemu_args=(), during=None):
        """Boot stage 1 and wait for the whole chain to power off.

        With expect_hang the guest is expected to stop making progress: it is killed
        after timeout seconds and that is not a failure (self.hung tells). qemu_args are
        added to QEMU's command line (devices, a QMP socket); during(vm) runs on the host
        while the guest runs (it may end the guest, e.g. with QMP quit).
        """
        qemu = shutil.which("qemu-system-x86_64")
        if not qemu:
            raise RuntimeError("qemu-system-x86_64 is not installed")
        cmd = [qemu, "-accel", "tcg", "-m", self.memory, "-smp", str(self.smp),
               "-display", "none", "-monitor", "none", "-no-reboot",
               "-serial", "file:" + self.serial,
               "-kernel", self.kernel, "-initrd", self.initrd,
               "-append", self.cmdline(1, extra_cmdline),
               "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                          "multidevs=remap",
               "-virtfs", "local,path=%s,mount_tag=out,security_model=none,multidevs=remap"
                          % self.out] + list(qemu_args)
        with vm_lock():
            self._run_qemu(cmd, timeout, expect_hang, during)
        if self.hung and expect_hang:
            return self
        if self.returncode != 0:
            self.fail("qemu exited with status %d" % self.returncode)
        return self

    def _run_qemu(self, cmd, timeout, expect_hang=False, during=None):
        start = time.monotonic()
        with open(self.path("qemu.log"), "w") as qlog:
            proc = subprocess.Popen(cmd, stdout=qlog, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            try:
                if during:
                    try:
                        during(self)
                    except BaseException:
                        proc.kill()
                        proc.wait()
                        raise
                proc.wait(timeout=max(1, timeout - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.seconds = time.monotonic() - start
                self.hung = True
                if expect_hang:
                    return
                self.fail("guest did not power off within %d s (killed)" % timeout)
        self.seconds = time.monotonic() - start
        self.returncode = proc.returncode

    # reading results
    def read(self, name, default=None):
        try:
            with open(self.path(name), errors="replace") as f:
                return f.read()
        except OSError:
            return default

    def serial_log(self):
        return self.read("serial.log", "")

    def stage_rc(self, n):
        text = self.read("stage%d.rc" % n)
        return None if text is None else int(text.strip())

    def diagnostics(self, lines=60):
        parts = []
        for name in sorted(os.listdir(self.out)):
            if name.startswith("stage") and name.endswith(".log"):
                parts.append("--- %s ---\n%s" % (name, self.read(name, "")[-3000:]))
        qlog = self.read("qemu.log", "")
        if qlog.strip():
            parts.append("--- qemu.log ---\n" + qlog[-2000:])
        tail = "\n".join(self.serial_log().splitlines()[-lines:])
        parts.append("--- serial log (last %d lines) ---\n%s" % (lines, tail))
        return "\n".join(parts)

    def expect_stage_ok(self, n):
        rc = self.stage_rc(n)
        self.expect(rc == 0, "stage %d %s" % (n, "never finished" if rc is None
                                              else "exited %d" % rc))


def prepare(workdir):
    """(Kernel, base initramfs path) for a test session."""
    kernel = ensure_kernel()
    initrd = os.path.join(workdir, "initramfs-kpy.img")
    if not os.path.exists(initrd):
        build_initramfs(kernel, initrd)
    return kernel, initrd
