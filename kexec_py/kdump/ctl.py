"""kdumpctl's verbs: the kdump service in the first kernel.

Messages and exit statuses are RHEL kdump-utils' (`kdump: Starting kdump: [OK]`, status
0 operational / 3 not, 1 for every failure); kexec-py adds the file and line to config
errors, says why a reserve is missing, and names the refusal when a load fails.
"""
import contextlib
import fcntl
import json
import os
import sys
import time

from .. import rootfs
from ..errors import KexecError
from ..load import state
from ..load.loader import LoadSpec, Loader
from . import (config, crashkernel, dumpsize, mkdumprd, plan as planmod, rebuild, sysconfig,
               target)

LOCK_PATH = "/run/lock/kdump"
STATUS_PATH = "/var/lib/kdump/vmcore-creation.status"
RESULT_PATH = "/var/lib/kdump/last-dump.json"
EFI_GLOBAL = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
SERVICE_WANTS = ("/etc/systemd/system/multi-user.target.wants/kdump.service",)
SYSV_LINKS = "/etc/rc.d/rc%d.d"


class Failed(KexecError):
    """A verb failed after saying why: kdumpctl exits 1."""

    exit_code = 1


def secure_boot_enforced(root="/"):
    """SecureBoot = 1 and SetupMode = 0 in the EFI variables (5 bytes each: 4 of
    attributes, then the value)."""
    def var(name):
        try:
            with open(rootfs.join(root, "/sys/firmware/efi/efivars/%s-%s"
                                  % (name, EFI_GLOBAL)), "rb") as f:
                data = f.read(5)
            return data[4] if len(data) == 5 else None
        except OSError:
            return None
    return var("SecureBoot") == 1 and var("SetupMode") == 0


def lockdown_mode(root="/"):
    """The active lockdown mode ("none", "integrity", "confidentiality") or None."""
    text = rootfs.read_first_line(root, "/sys/kernel/security/lockdown")
    if not text or "[" not in text:
        return None
    return text.split("[", 1)[1].split("]", 1)[0]


def service_enabled(root="/"):
    """kdump.service enabled for boot (systemd wants link, or a SysV S link)."""
    if any(os.path.lexists(rootfs.join(root, p)) for p in SERVICE_WANTS):
        return True
    for level in (3, 5):
        d = rootfs.join(root, SYSV_LINKS % level)
        try:
            if any(n.startswith("S") and n.endswith("kdump") for n in os.listdir(d)):
                return True
        except OSError:
            continue
    return False


class Kdumpctl:
    def __init__(self, root="/", out=None, err=None, dry_run=False,
                 ssh_retry_seconds=target.SSH_RETRY_SECONDS, stdin=None):
        self.root = root or "/"
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.stdin = stdin or sys.stdin
        self.dry_run = dry_run
        self.ssh_retry_seconds = ssh_retry_seconds
        self._lock_file = None

    # output
    def info(self, msg):
        print("kdump: %s" % msg, file=self.out, flush=True)

    def warn(self, msg):
        print("kdump: %s" % msg, file=self.err, flush=True)

    error = warn

    # the lock
    @contextlib.contextmanager
    def lock(self):
        """One kdumpctl at a time: flock on /run/lock/kdump; a second one waits."""
        if self._lock_file is not None:
            yield
            return
        path = rootfs.join(self.root, LOCK_PATH)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            f = open(path, "a")
        except OSError as e:
            raise Failed("Create file lock failed: %s: %s" % (path, e.strerror)) from None
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.info("Another app is currently holding the kdump lock; waiting for it "
                          "to exit...")
                fcntl.flock(f, fcntl.LOCK_EX)
            self._lock_file = f
            yield
        finally:
            self._lock_file = None
            f.close()

    # shared steps
    def require_config(self):
        if not os.path.isfile(rootfs.join(self.root, config.CONFIG_PATH)):
            raise Failed("Error: No kdump config file found! (%s)"
                         % rootfs.join(self.root, config.CONFIG_PATH))

    def plan(self, test_id=None):
        p = planmod.resolve(self.root, test_id=test_id)
        for w in p.as_dict()["warnings"]:
            self.warn(w)
        return p

    def loaded(self):
        return state.image_loaded(self.root, panic=True)

    def supported(self):
        return rootfs.exists(self.root, "/sys/kernel/kexec_crash_loaded")

    def check_reserve(self):
        reserve = crashkernel.reserved(self.root)
        if reserve.size > 0:
            return reserve
        why = crashkernel.diagnose(self.root) or "No memory reserved for crash kernel"
        raise Failed(why)

    def _loader(self):
        return Loader(root=self.root, dry_run=self.dry_run, out=self.out, err=self.err)

    def load(self, p):
        """Load the plan's capture kernel; raises Failed with the refusal named."""
        mode = p.kexec_mode
        why = None
        if mode != "file" and secure_boot_enforced(self.root):
            mode, why = "file", "Secure Boot is enforced"
        elif mode != "file" and lockdown_mode(self.root) in ("integrity", "confidentiality"):
            mode, why = "file", "the kernel is locked down (%s)" % lockdown_mode(self.root)
        if why:
            self.info("%s: loading with kexec_file_load (-s)" % why)
        initrd = p.host_path(p.initrd_path)
        if not os.path.exists(initrd):
            raise Failed("kexec: failed to load kdump kernel: the capture initramfs %s does "
                         "not exist (run kdumpctl rebuild)" % p.initrd_path)
        spec = LoadSpec(kernel=p.host_path(p.kernel_path), initrds=(initrd,),
                        cmdline=p.cmdline, panic=True, mode=mode, debug=p.kexec_debug,
                        root=self.root)
        try:
            self._loader().load(spec)
        except KexecError as e:
            self.error(str(e))
            raise Failed("kexec: failed to load kdump kernel") from None
        if not self.dry_run:
            self.info("kexec: loaded kdump kernel")

    def unload(self):
        try:
            self._loader().unload(panic=True, mode="auto")
        except KexecError as e:
            self.error(str(e))
            raise Failed("kexec: failed to unload kdump kernel") from None
        if not self.dry_run:
            self.info("kexec: unloaded kdump kernel")

    def recover_raw(self, p):
        """A dump the capture kernel left on the raw target (a flattened stream) becomes
        <path>/<YYYY-MM-DD-HH:MM>/vmcore on the root file system; then the stream's
        header on the device is zeroed so that it is recovered once."""
        import subprocess
        from ..vmcore.tool import executable
        dev = target.resolve_device(self.root, p.target.spec)
        if dev is None:
            return
        try:
            with open(dev, "rb") as f:
                head = f.read(16)
        except OSError as e:
            raise Failed("raw partition %s cannot be read: %s" % (p.target.spec, e.strerror))
        if not head.startswith(b"makedumpfile\0"):
            return
        coredir = os.path.join(p.config.dump_path, time.strftime("%Y-%m-%d-%H:%M"))
        full = rootfs.join(self.root, coredir)
        if self.dry_run:
            self.info("--dry-run: would recover the dump on %s into %s/vmcore"
                      % (p.target.spec, coredir))
            return
        try:
            os.makedirs(full, exist_ok=True)
        except OSError as e:
            raise Failed("failed to create %s: %s" % (coredir, e.strerror))
        with open(dev, "rb") as f:
            proc = subprocess.run([executable("vmcore-copy"), "-R",
                                   os.path.join(full, "vmcore")], stdin=f,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  universal_newlines=True)
        if proc.returncode not in (0, 2):
            raise Failed("recovering the dump on %s failed: %s"
                         % (p.target.spec, proc.stdout.strip()[-300:]))
        with open(dev, "r+b") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        self.info("Dump saved to %s/vmcore%s" % (coredir, "" if proc.returncode == 0 else
                                                   " (incomplete: the stream was cut short)"))

    def rebuild_image(self, p):
        if self.dry_run:
            self.info("--dry-run: would rebuild %s with mkdumprd" % p.initrd_path)
            return
        self.info("Rebuilding %s" % p.initrd_path)
        try:
            mkdumprd.build(p, out=self.out)
        except KexecError as e:
            self.error(str(e))
            raise Failed("mkdumprd: failed to make kdump initrd") from None

    def estimate_warning(self, p, reserve):
        try:
            est = crashkernel.estimate(self.root, p.host_path(p.kernel_path),
                                       p.host_path(p.initrd_path))
        except (KexecError, OSError, ValueError):
            return
        if reserve.size < est.recommended:
            self.warn("WARNING: Current crashkernel size %dM is lower than the recommended "
                      "size %dM (kdumpctl estimate)" % (reserve.size >> 20,
                                                        est.recommended >> 20))

    # verbs
    def start(self):
        with self.lock():
            if not self.supported():
                raise Failed("Kdump is not supported on this kernel: %s does not exist"
                             % "/sys/kernel/kexec_crash_loaded")
            if self.loaded():
                self.warn("Kdump already running: [WARNING]")
                return 0
            reserve = self.check_reserve()
            p = self.plan(test_id=self._pending_test_id())
            check = target.preflight(p, self.ssh_retry_seconds)
            for w in check.warnings:
                self.warn(w)
            if p.target.kind == "raw":
                self.recover_raw(p)
            decision = rebuild.decide(p)
            self.info(decision.reason)
            if decision.rebuild:
                self.rebuild_image(p)
            self.load(p)
            self.estimate_warning(p, reserve)
            self.info("Starting kdump: [OK]")
            self.report_test_status(p)
            return 0

    def stop(self):
        with self.lock():
            if not self.loaded() and not self.dry_run:
                self.warn("Kdump was not running: [WARNING]")
            self.unload()
            self.info("Stopping kdump: [OK]")
            return 0

    def restart(self):
        with self.lock():
            try:
                self.stop()
            except Failed as e:
                self.error(str(e))
                raise Failed("Stopping kdump: [FAILED]") from None
            return self.start()

    def reload(self):
        """Unload and load again with the current configuration; no rebuild."""
        with self.lock():
            if not self.loaded():
                self.warn("Kdump was not running: [WARNING]")
            else:
                self.unload()
            self.check_reserve()
            p = self.plan(test_id=self._pending_test_id())
            self.load(p)
            return 0

    def rebuild(self):
        with self.lock():
            p = self.plan()
            self.rebuild_image(p)
            return 0

    def status(self):
        if not self.supported():
            self.info("Kdump is unsupported on this kernel")
            code = 3
        elif self.loaded():
            self.info("Kdump is operational")
            code = 0
        else:
            self.info("Kdump is not operational")
            code = 3
        self.report_last_dump()
        try:
            p = planmod.resolve(self.root)
        except KexecError:
            p = None
        self.report_test_status(p)
        return code

    def show_plan(self):
        p = planmod.resolve(self.root, test_id=self._pending_test_id())
        self.out.write(p.to_json())
        return 0

    def showmem(self):
        self.info(crashkernel.showmem_line(self.root))
        return 0

    def estimate(self):
        p = self.plan()
        est = crashkernel.estimate(self.root, p.host_path(p.kernel_path),
                                   p.host_path(p.initrd_path))
        for line in est.lines():
            print(line, file=self.out)
        print(dumpsize.predict(self.root, p.collector).line(), file=self.out)
        return 0

    def get_default_crashkernel(self):
        self.out.write(crashkernel.default_crashkernel(self.root))
        self.out.flush()
        return 0

    def reset_crashkernel(self, kernel="DEFAULT"):
        """Write this release's default crashkernel= into the selected boot entries."""
        from . import bootedit
        with self.lock():
            value = crashkernel.default_crashkernel(self.root)
            before = bootedit.current_values(self.root, kernel)
            edits = bootedit.plan_reset(self.root, value, kernel)
            if self.dry_run:
                for e in edits:
                    self.out.write(e.diff())
                    for note in e.notes:
                        self.info(note)
                    if e.after:
                        self.info("then: %s" % " ".join(e.after))
                return 0
            if edits:
                bootedit.apply(edits)
            for line in bootedit.report_lines(before, edits, value):
                self.info(line)
            for e in edits:
                for note in e.notes:
                    self.info(note)
            for argv in bootedit.after_commands(edits):
                self._run_after(argv)
            if any(e.new != e.old for e in edits):
                self.warn("Please reboot the system for the change to take effect.")
            return 0

    def _run_after(self, argv):
        import subprocess
        self.info("running %s" % " ".join(argv))
        proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if proc.returncode != 0:
            raise Failed("%s failed (%d): %s" % (" ".join(argv), proc.returncode,
                                                 proc.stdout.strip()[-500:]))

    def reset_for_installed_kernel(self, kver):
        """The kernel-install hook: reset only with auto_reset_crashkernel yes and
        kdump.service enabled (RHEL's rule)."""
        try:
            cfg = config.load(self.root)
        except KexecError:
            return 0
        if not cfg.auto_reset_crashkernel or not service_enabled(self.root):
            return 0
        return self.reset_crashkernel(kernel="/boot/vmlinuz-%s" % kver)

    def propagate(self, run=None):
        import subprocess
        run = run or subprocess.run
        cfg = config.load(self.root)
        t = cfg.target
        if t.kind != "ssh":
            raise Failed("No ssh destination defined in %s.\nPlease verify that %s contains "
                         "'ssh <user>@<host>' and that it is properly formatted."
                         % (cfg.path, cfg.path))
        key = rootfs.join(self.root, cfg.sshkey)
        if os.path.exists(key):
            self.info("Using existing keys...")
        else:
            self.info("Generating new ssh keys... ")
            os.makedirs(os.path.dirname(key), exist_ok=True)
            proc = run(["ssh-keygen", "-t", "rsa", "-f", key, "-N", "", "-q"],
                       stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise Failed("ssh-keygen failed to create %s" % key)
            self.info("done.")
        user, _, host = t.spec.partition("@")
        proc = run(["ssh-copy-id", "-i", key, t.spec], stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise Failed("Failed to propagate ssh key, could not transfer %s to %s"
                         % (key, host))
        self.info("%s has been added to ~%s/.ssh/authorized_keys on %s" % (key, user, host))
        return 0

    def test(self, force=False):
        """Crash the machine on purpose after recording a pending test id."""
        with self.lock():
            if not self.loaded():
                raise Failed("Kdump needs be operational before test.")
            if not force:
                self.out.write("DANGER!!! Will perform a kdump test by crashing the system, "
                               "proceed? (y/N): ")
                self.out.flush()
                answer = self.stdin.readline().strip()
                if answer not in ("y", "Y"):
                    self.info("Operation cancelled.")
                    return 0
                self.info("Start kdump test...")
            test_id = "%d-%09d" % divmod(time.time_ns(), 10 ** 9)
            if self.dry_run:
                self.info("--dry-run: would reload the capture kernel with "
                          "kdump_test_id=%s, record it as pending in %s and write c to "
                          "/proc/sysrq-trigger" % (test_id, STATUS_PATH))
                return 0
            self.unload()
            p = self.plan(test_id=test_id)
            self.load(p)
            self._write_status("pending kdump_test_id=%s" % test_id)
            os.sync()
            with open(rootfs.join(self.root, "/proc/sysrq-trigger"), "w") as f:
                f.write("c")
            return 0

    # test status and the last dump's record
    def _status_file(self):
        return rootfs.join(self.root, STATUS_PATH)

    def _write_status(self, text):
        path = self._status_file()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    def _read_status(self):
        text = rootfs.read_first_line(self.root, STATUS_PATH)
        if not text:
            return None, None
        status, _, rest = text.partition(" ")
        return status, rest.partition("=")[2] or None

    def _pending_test_id(self):
        status, test_id = self._read_status()
        return test_id if status == "pending" else None

    def _test_dir(self, p, test_id):
        """Where a test dump for this id lands on a target we can see from here."""
        if p is None or p.target.kind not in ("rootfs", "fs", "nfs"):
            return None
        if p.target.kind == "rootfs":
            mnt = "/"
        else:
            mnt = p.target.mount_point or target.find_mount(self.root, p.target.spec)[0]
        if not mnt:
            return None
        return rootfs.join(self.root, os.path.join(mnt, p.config.dump_path.lstrip("/"),
                                                   "kdump-test-%s" % test_id))

    def report_test_status(self, p):
        """RHEL's notice about the last `kdumpctl test`, unless the sysconfig turns it off
        (VMCORE_CREATION_NOTIFICATION other than yes)."""
        try:
            sysconf = p.sysconfig if p is not None else sysconfig.load(self.root)
        except KexecError:
            sysconf = None
        if sysconf is not None and sysconf["VMCORE_CREATION_NOTIFICATION"].lower() != "yes":
            return
        status, test_id = self._read_status()
        if status is None:
            self.warn("No vmcore creation test performed!")
            return
        when = "?"
        try:
            when = time.strftime("%a %b %d %H:%M:%S %Z %Y",
                                 time.localtime(int(test_id.split("-")[0])))
        except (AttributeError, ValueError):
            pass
        if status == "pending":
            d = self._test_dir(p, test_id)
            if d is None:
                status = "manual"
            else:
                record = rootfs.read_text("/", os.path.join(d, "vmcore-creation.status"))
                status = "success" if record and "success" in record else "fail"
            self._write_status("%s kdump_test_id=%s" % (status, test_id))
        if status == "success":
            self.info("Notice: Last successful vmcore creation test on %s" % when)
        elif status == "fail":
            self.warn("Last NOT successful vmcore creation test on %s" % when)
        elif status == "manual":
            self.warn("Require manual check for vmcore creation test of %s" % when)
        else:
            self.error("Unknown vmcore creation test status: %s" % status)

    def report_last_dump(self):
        text = rootfs.read_text(self.root, RESULT_PATH)
        if text is None:
            return
        try:
            r = json.loads(text)
            if not isinstance(r, dict):
                raise ValueError
        except ValueError:
            self.warn("%s is not a valid dump record" % RESULT_PATH)
            return
        where = r.get("location") or r.get("path") or "?"
        when = r.get("time", "?")
        st = r.get("status", "?")
        if st == "success" and not r.get("fallback"):
            self.info("Last dump: saved %s at %s (%s pages, %s bytes, %s s, dump level %s)"
                      % (where, when, r.get("pages", "?"), r.get("bytes", "?"),
                         r.get("seconds", "?"), r.get("dump_level", "?")))
        elif st == "success":
            self.warn("WARNING: the last dump (%s) did NOT reach the configured target %s: "
                      "it went to %s by failure_action dump_to_rootfs (%s). Check the target."
                      % (when, r.get("target", "?"), where, r.get("message") or "fallback"))
        elif st == "started":
            self.warn("ERROR: the last dump (%s) was started at %s and never finished: the "
                      "capture kernel stopped during the dump (power loss, hang, a second "
                      "panic). Anything there is incomplete." % (when, where))
        elif st == "incomplete":
            self.warn("ERROR: the last dump (%s) is INCOMPLETE: %s. The part that was "
                      "written is kept as %s/vmcore-incomplete." % (
                          when, r.get("message") or "the collector stopped early", where))
        else:
            self.warn("ERROR: the last dump (%s) FAILED: %s%s" % (
                when, r.get("message") or st,
                (" (partial dump at %s)" % where) if where != "?" else ""))


# verb -> how Kdumpctl carries it out (args: the parsed command line)
VERB_CALLS = {
    "start": lambda c, a: c.start(),
    "stop": lambda c, a: c.stop(),
    "status": lambda c, a: c.status(),
    "restart": lambda c, a: c.restart(),
    "reload": lambda c, a: c.reload(),
    "rebuild": lambda c, a: c.rebuild(),
    "propagate": lambda c, a: c.propagate(),
    "showmem": lambda c, a: c.showmem(),
    "estimate": lambda c, a: c.estimate(),
    "get-default-crashkernel": lambda c, a: c.get_default_crashkernel(),
    "reset-crashkernel": lambda c, a: c.reset_crashkernel(kernel=a.kernel or "DEFAULT"),
    "test": lambda c, a: c.test(force=a.force),
    "show-plan": lambda c, a: c.show_plan(),
    "_reset-crashkernel-for-installed-kernel":
        lambda c, a: c.reset_for_installed_kernel(a.kver),
}


def run_verb(ctl, verb, args):
    """Carry out a verb with its arguments; returns the exit status."""
    return VERB_CALLS[verb](ctl, args)


__all__ = ["Kdumpctl", "Failed", "run_verb", "secure_boot_enforced", "lockdown_mode",
           "service_enabled"]
