"""Loading, unloading and executing kernels: the policy between the CLI and the syscalls.

Syscall choice follows kexec-tools: "file" is kexec_file_load only (-s), "load" is
kexec_load only (-c), "auto" (-a, the default) tries kexec_file_load and falls back to
kexec_load only on ENOSYS, EINVAL, ENOEXEC or EOPNOTSUPP. Signature errors and EPERM
never fall back: they mean the kernel refused the image or lockdown is on.
"""
import errno
import os
import sys

from .. import native
from ..errors import (EXIT_FILE_LOAD_UNAVAILABLE, EXIT_USAGE, FALLBACK_ERRNOS,
                      SIGNATURE_ERRNOS, ImageError, KexecError, LoadError, NoCrashReserve)
from . import image, state

MODES = ("auto", "file", "load")
# The kernel appends "elfcorehdr=0x<addr> " to a kexec_file_load command line and checks
# room for it (MAX_ELFCOREHDR_STR_LEN in arch/x86/kernel/kexec-bzimage64.c).
ELFCOREHDR_ROOM = 30



class LoadSpec:
    """Everything a load needs, already resolved by the CLI. (A plain class: `kexec -l`
    does not pay for importing dataclasses at start-up.)"""

    __slots__ = ("kernel", "initrds", "cmdline", "panic", "mode", "debug", "root",
                 "serial_port", "no_checks", "reuse_video_type", "cmdline_given")

    def __init__(self, kernel, initrds=(), cmdline="", panic=False, mode="auto",
                 debug=False, root="/", serial_port=0, no_checks=False,
                 reuse_video_type=False, cmdline_given=True):
        self.kernel, self.initrds, self.cmdline = kernel, tuple(initrds), cmdline
        self.panic, self.mode, self.debug, self.root = panic, mode, debug, root
        self.serial_port = serial_port          # purgatory messages (kexec_load only)
        self.no_checks = no_checks              # skip purgatory's SHA-256 check (-i)
        self.reuse_video_type = reuse_video_type  # boot-time video type (kexec_load)
        self.cmdline_given = cmdline_given      # False: a UKI's own .cmdline is used

    def replace(self, **changes):
        values = {k: getattr(self, k) for k in self.__slots__}
        values.update(changes)
        return LoadSpec(**values)

    def __repr__(self):
        return "LoadSpec(%s)" % ", ".join("%s=%r" % (k, getattr(self, k))
                                          for k in self.__slots__)


def human_size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)


def cmdline_limit(kimg, syscall):
    """Longest command line (bytes, no NUL) this kernel takes through this syscall."""
    limit = kimg.header.max_cmdline
    if syscall == "kexec_file_load":
        limit -= ELFCOREHDR_ROOM + 1  # the kernel counts the NUL and the room for elfcorehdr=
    return limit


def check_cmdline(kimg, cmdline, syscall):
    raw = cmdline.encode()
    limit = cmdline_limit(kimg, syscall)
    if len(raw) > limit:
        raise ImageError("command line is %d bytes; %s takes at most %d for %s "
                         "(setup header cmdline_size %d)"
                         % (len(raw), syscall, limit, kimg.path, kimg.header.max_cmdline))
    if b"\0" in raw:
        raise ImageError("command line contains a NUL byte")


def check_privilege(root, action):
    if not state.has_cap_sys_boot():
        raise LoadError("%s needs root (CAP_SYS_BOOT); run it as root, or use --dry-run to "
                        "see what it would do" % action, errno=errno.EPERM)
    if state.kexec_disabled(root):
        raise LoadError("kexec is disabled on this boot (kernel.kexec_load_disabled=1); it "
                        "cannot be turned back on until the next reboot", errno=errno.EPERM)


def check_crash_reserve(root):
    if state.crash_reserve_size(root) <= 0:
        raise NoCrashReserve()


def explain_kexec_load_error(err, kernel, panic):
    name = errno.errorcode.get(err.errno, str(err.errno))
    if err.errno == errno.EPERM:
        return ("kexec_load refused (EPERM): lockdown (Secure Boot) forbids kexec_load; use -s "
                "(kexec_file_load) with a signed kernel")
    if err.errno == errno.EBUSY:
        return "kexec_load: a kexec is in progress or the image is in use (EBUSY)"
    if err.errno == errno.EADDRNOTAVAIL and panic:
        return "kexec_load: a segment lies outside the crash kernel reserve (EADDRNOTAVAIL)"
    return "kexec_load failed for %s: %s (%s)" % (kernel, err.strerror, name)


def explain_file_load_error(err, kernel, panic):
    """A message that says what to do about a failed kexec_file_load."""
    name = errno.errorcode.get(err.errno, str(err.errno))
    what = "capture kernel" if panic else "kernel"
    if err.errno in SIGNATURE_ERRNOS:
        return ("kexec_file_load rejected %s %s: signature check failed (%s: %s). This kernel "
                "only loads signed kernels (Secure Boot lockdown or KEXEC_SIG_FORCE): use a "
                "kernel signed with a trusted key, or enroll its key (mokutil --import)"
                % (what, kernel, name, err.strerror))
    if err.errno == errno.EPERM:
        return ("kexec_file_load refused %s %s (EPERM): lockdown or the IMA/LSM policy "
                "forbids it; an unsigned kernel cannot be loaded while lockdown is on"
                % (what, kernel))
    if err.errno == errno.ENOMEM and panic:
        return ("kexec_file_load: the capture kernel and initrd do not fit in the crash "
                "reserve (%s); raise crashkernel= or use a smaller initrd" % err.strerror)
    if err.errno == errno.EBUSY:
        return ("kexec_file_load: a kexec is in progress or the %s is in use (EBUSY)" % what)
    return "kexec_file_load failed: %s (%s)" % (err.strerror, name)


class Loader:
    """Carries out loads, unloads and execs; prints what it does with debug/dry-run."""

    def __init__(self, root="/", dry_run=False, debug=False, out=None, err=None):
        self.root = root
        self.dry_run = dry_run
        self.debug = debug
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def _say(self, text):
        print(text, file=self.out)

    def _debug(self, text):
        if self.debug:
            print("kexec: " + text, file=self.err)

    # load
    def load(self, spec):
        if spec.mode not in MODES:
            raise ValueError(spec.mode)
        if spec.panic:
            check_crash_reserve(spec.root)
        kimg = image.open_kernel(spec.kernel)
        initrd = None
        try:
            if spec.initrds:
                initrd = image.open_initrds(spec.initrds)
            elif kimg.uki is not None and kimg.uki.has_initrd:
                initrd = image.uki_initrd(kimg)
            if kimg.uki is not None and not spec.cmdline_given and kimg.uki_cmdline:
                spec = spec.replace(cmdline=kimg.uki_cmdline)
            if spec.mode == "load":
                self._kexec_load(kimg, initrd, spec)
                return
            check_cmdline(kimg, spec.cmdline, "kexec_file_load")
            flags = 0
            if spec.panic:
                flags |= native.KEXEC_FILE_ON_CRASH
            if initrd is None:
                flags |= native.KEXEC_FILE_NO_INITRAMFS
            if spec.debug:
                flags |= native.KEXEC_FILE_DEBUG
            self._report_file_load(kimg, initrd, spec, flags)
            if self.dry_run:
                return
            check_privilege(spec.root, "loading a kernel")
            err = self._file_load(kimg, initrd, spec, flags)
            if err is not None:
                self._debug("kexec_file_load: %s; falling back to kexec_load" % err)
                self._kexec_load(kimg, initrd, spec)
        finally:
            kimg.close()
            if initrd is not None:
                initrd.close()

    def _kexec_load(self, kimg, initrd, spec):
        """Build the segments ourselves (bzImage loader + purgatory) and call kexec_load."""
        from . import kexec_load       # the segment builders: only this path needs them
        plan = kexec_load.plan(kimg, initrd, spec.cmdline, panic=spec.panic, root=spec.root,
                               serial_port=spec.serial_port, no_checks=spec.no_checks,
                               reuse_video_type=spec.reuse_video_type)
        self._report_kexec_load(kimg, initrd, spec, plan)
        if self.dry_run:
            return
        check_privilege(spec.root, "loading a kernel")
        try:
            native.kexec_load(plan.entry, plan.syscall_segments(), plan.flags)
        except OSError as e:
            raise LoadError(explain_kexec_load_error(e, kimg.path, spec.panic),
                            errno=e.errno) from None

    def _report_kexec_load(self, kimg, initrd, spec, plan):
        if not (self.dry_run or self.debug):
            return
        show = self._say if self.dry_run else self._debug
        if self.dry_run:
            show("kexec --dry-run: nothing is loaded")
        show("syscall: kexec_load(entry=%#x, nr_segments=%d, segments, flags=%s) [%#x]"
             % (plan.entry, len(plan.segments),
                native.flag_names(plan.flags, native.LOAD_FLAG_NAMES), plan.flags))
        self._show_files(show, kimg, initrd, spec)
        from .segments import format_table
        for line in format_table(plan.segments):
            show(line)
        for name, value in plan.boot_params_fields.items():
            show("boot_params.%s = %s" % (name, hex(value) if isinstance(value, int) else value))
        for line in plan.details:
            show(line)
        show("cmdline: %s" % plan.cmdline)
        show("cmdline length: %d bytes (limit %d)" % (len(plan.cmdline.encode()),
                                                      cmdline_limit(kimg, "kexec_load")))

    def _file_load(self, kimg, initrd, spec, flags):
        """kexec_file_load; returns the error when -a may fall back to kexec_load."""
        cmdline = spec.cmdline.encode()
        initrd_fd = initrd.fd if initrd is not None else -1
        try:
            native.kexec_file_load(kimg.fd, initrd_fd, cmdline, flags)
            return
        except OSError as e:
            err = e
        if err.errno == errno.EINVAL and flags & native.KEXEC_FILE_DEBUG:
            # Kernels before KEXEC_FILE_DEBUG existed reject the unknown flag.
            self._debug("kernel rejected KEXEC_FILE_DEBUG; retrying without it")
            try:
                native.kexec_file_load(kimg.fd, initrd_fd, cmdline,
                                       flags & ~native.KEXEC_FILE_DEBUG)
                return
            except OSError as e:
                err = e
        self._debug("kexec_file_load: %s" % err)
        if spec.mode == "auto" and err.errno in FALLBACK_ERRNOS:
            return err
        message = explain_file_load_error(err, kimg.path, spec.panic)
        code = EXIT_FILE_LOAD_UNAVAILABLE if err.errno == errno.ENOSYS else None
        if code:
            message = "kexec_file_load is not available in the running kernel (ENOSYS)"
        raise LoadError(message, errno=err.errno, exit_code=code)

    def _report_file_load(self, kimg, initrd, spec, flags):
        if not (self.dry_run or self.debug):
            return
        show = self._say if self.dry_run else self._debug
        cmdline = spec.cmdline.encode()
        if self.dry_run:
            show("kexec --dry-run: nothing is loaded")
        show("syscall: kexec_file_load(kernel_fd, initrd_fd=%s, cmdline_len=%d, cmdline, "
             "flags=%s) [%#x]" % ("fd" if initrd else "-1", len(cmdline) + 1,
                                 native.flag_names(flags, native.FILE_FLAG_NAMES), flags))
        if spec.mode == "auto":
            show("fallback: kexec_load (our bzImage loader) on ENOSYS, EINVAL, ENOEXEC or "
                 "EOPNOTSUPP; see -c --dry-run for its segments")
        self._show_files(show, kimg, initrd, spec)
        show("cmdline: %s" % spec.cmdline)
        show("cmdline length: %d bytes (limit %d)" % (
            len(cmdline), cmdline_limit(kimg, "kexec_file_load")))

    def _show_files(self, show, kimg, initrd, spec):
        hdr = kimg.header
        show("kernel: %s (%s, boot protocol %d.%02d, %s%s)" % (
            kimg.path, kimg.kind, hdr.protocol[0], hdr.protocol[1], human_size(kimg.size),
            ", version " + kimg.version.split()[0] if kimg.version.strip() else ""))
        if initrd is None:
            show("initrd: none")
        else:
            for path, size in zip(initrd.paths, initrd.parts):
                show("initrd: %s (%s)" % (path, human_size(size)))
            if len(initrd.paths) > 1:
                show("initrd: the %d files above concatenated into a memfd (%s)"
                     % (len(initrd.paths), human_size(initrd.size)))
        if kimg.uki is not None:
            show("uki: %s: kernel from .linux, initrd from %s, command line from %s"
                 % (kimg.path, self._uki_initrd_source(kimg, spec),
                    self._uki_cmdline_source(kimg, spec)))
        show("image: %s" % ("crash (capture kernel, loaded into the crash reserve)"
                             if spec.panic else "default (for kexec -e)"))

    @staticmethod
    def _uki_initrd_source(kimg, spec):
        if spec.initrds:
            if kimg.uki.has_initrd:
                return "--initrd (replaces the image's .initrd)"
            return "--initrd"
        return ".initrd" if kimg.uki.has_initrd else "nowhere (the image has none)"

    @staticmethod
    def _uki_cmdline_source(kimg, spec):
        if not spec.cmdline_given and kimg.uki_cmdline:
            return ".cmdline"
        if kimg.uki_cmdline is not None:
            return "the options given (they replace the image's .cmdline)"
        return "the options given (the image has none)"

    # unload
    def unload(self, panic=False, mode="auto"):
        flags = native.KEXEC_FILE_UNLOAD | (native.KEXEC_FILE_ON_CRASH if panic else 0)
        lflags = native.KEXEC_ARCH_X86_64 | (native.KEXEC_ON_CRASH if panic else 0)
        what = "crash" if panic else "default"
        if self.dry_run:
            self._say("kexec --dry-run: nothing is unloaded")
            if mode in ("auto", "file"):
                self._say("syscall: kexec_file_load(-1, -1, 0, NULL, flags=%s) [%#x]"
                          % (native.flag_names(flags, native.FILE_FLAG_NAMES), flags))
            if mode == "auto":
                self._say("fallback: kexec_load(0, 0, NULL, flags=%s) [%#x] on ENOSYS, "
                          "EINVAL, ENOEXEC or EOPNOTSUPP"
                          % (native.flag_names(lflags, native.LOAD_FLAG_NAMES), lflags))
            if mode == "load":
                self._say("syscall: kexec_load(0, 0, NULL, flags=%s) [%#x]"
                          % (native.flag_names(lflags, native.LOAD_FLAG_NAMES), lflags))
            self._say("image: %s" % what)
            return
        check_privilege(self.root, "unloading a kernel")
        if mode in ("auto", "file"):
            try:
                native.kexec_file_load(-1, -1, None, flags)
                return
            except OSError as e:
                self._debug("kexec_file_load unload: %s" % e)
                if mode == "file" or e.errno not in FALLBACK_ERRNOS:
                    raise LoadError("unloading the %s kernel failed: %s"
                                    % (what, e.strerror), errno=e.errno) from None
        try:
            native.kexec_load(0, [], lflags)
        except OSError as e:
            hint = " (lockdown refuses kexec_load: use -s)" if e.errno == errno.EPERM else ""
            raise LoadError("unloading the %s kernel failed: %s%s"
                            % (what, e.strerror, hint), errno=e.errno) from None

    # exec
    def execute(self, sync=True, ifdown=True):
        """reboot(LINUX_REBOOT_CMD_KEXEC) into the loaded kernel; returns only on failure."""
        if not self.dry_run and not state.image_loaded(self.root):
            raise KexecError("Nothing has been loaded!", EXIT_USAGE)
        if self.dry_run:
            self._say("kexec --dry-run: nothing is executed")
            if sync:
                self._say("then: sync")
            if ifdown:
                self._say("then: bring down network interfaces (%s)"
                          % (", ".join(_interfaces(self.root)) or "none"))
            self._say("then: reboot(LINUX_REBOOT_CMD_KEXEC)")
            return
        check_privilege(self.root, "executing a kernel")
        if sync:
            os.sync()
        if ifdown:
            from ..netdev import ifdown_all
            ifdown_all(self.root)
        try:
            native.reboot_kexec()
        except OSError as e:
            raise LoadError("kexec failed: %s" % e.strerror, errno=e.errno) from None
        raise LoadError("kexec returned without rebooting")  # pragma: no cover

    def shutdown_reboot(self):
        """kexec-tools' no-action default: after a load, a clean `shutdown -r now`."""
        argv = ["shutdown", "-r", "now"]
        if self.dry_run:
            self._say("then: %s" % " ".join(argv))
            return
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            raise KexecError("cannot run shutdown -r now: %s (the kernel is loaded; run "
                             "kexec -e to boot it)" % e.strerror) from None


def _interfaces(root):
    from ..netdev import interfaces
    return interfaces(root)
