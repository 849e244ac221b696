"""Real kernels in QEMU: kexec_file_load loads, kexec -e, crash loads, boot entries.

Each test boots the Debian kernel with the harness's stage-aware init; stage 1 runs our
kexec from the project's venv inside the guest, later stages report what the new kernel
sees. See harness.py.
"""
import re
import secrets
import shlex
import shutil
import subprocess

import pytest

from .harness import initrd_with_marker


def q(s):
    return shlex.quote(s)


def load_and_exec(kexec, vm, kernel, initrds, cmdline, extra_opts=""):
    """Stage 1 body: load with `kexec` (ours or the peer's), then kexec -e."""
    initrd_opts = " ".join("--initrd=%s" % q(i) for i in initrds)
    return """
%(kexec)s -s -l %(extra)s %(kernel)s %(initrds)s --append=%(cmdline)s || { echo load failed; exit 1; }
echo loaded: $(cat /sys/kernel/kexec_loaded)
%(kexec)s -e
echo "kexec -e returned $?"
exit 1
""" % {"kexec": kexec, "extra": extra_opts, "kernel": q(kernel), "initrds": initrd_opts,
       "cmdline": q(cmdline)}


def test_file_load_then_exec_boots_with_exact_cmdline_and_initrd(vm, vm_kernel):
    """Scenario a: kexec -s -l KERNEL --initrd=I --append=... then kexec -e."""
    token = secrets.token_hex(8)
    initrd = initrd_with_marker(vm.initrd, vm.path("initrd2.img"), token)
    cmdline = vm.cmdline(2, 'quiet kpy.test="a b c" loglevel=4')
    vm.stage(1, load_and_exec("kexec", vm, vm_kernel.vmlinuz, [initrd], cmdline))
    vm.stage(2, "result booted yes")
    vm.boot()
    vm.expect(vm.read("result.booted") == "yes\n", "the second kernel did not run stage 2")
    vm.expect("kexec_core: Starting new kernel" in vm.serial_log(), "no kexec in serial log")
    vm.expect(vm.read("cmdline.2", "").rstrip("\n") == cmdline,
              "second kernel's /proc/cmdline %r != %r" % (vm.read("cmdline.2"), cmdline))
    vm.expect(vm.read("initrd-marker.2", "").strip() == token,
              "the second kernel did not unpack the initrd we gave it")


def test_compressed_kernel_and_two_initrds(vm, vm_kernel):
    """A zstd-compressed kernel (decompressed into a memfd) and two --initrd files
    (concatenated), loaded with -d (6.1 rejects KEXEC_FILE_DEBUG: we retry without)."""
    zst = vm.path("vmlinuz.zst")
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", zst, vm_kernel.vmlinuz], check=True)
    token = secrets.token_hex(8)
    second = vm.path("marker-only.img")
    initrd_with_marker(vm.initrd, vm.path("full.img"), token)
    with open(vm.path("full.img"), "rb") as f, open(vm.initrd, "rb") as base:
        tail = f.read()[len(base.read()):]
    with open(second, "wb") as f:
        f.write(tail)  # only the marker archive: meaningful only after the base
    cmdline = vm.cmdline(2, "kpy.compressed=zstd")
    vm.stage(1, load_and_exec("kexec", vm, zst, [vm.initrd, second], cmdline, "-d"))
    vm.stage(2, "result booted yes")
    vm.boot()
    vm.expect(vm.read("result.booted") == "yes\n", "the zstd kernel did not boot")
    vm.expect(vm.read("cmdline.2", "").rstrip("\n") == cmdline, "command line differs")
    vm.expect(vm.read("initrd-marker.2", "").strip() == token,
              "the second initrd was not concatenated after the first")
    vm.expect("KEXEC_FILE_DEBUG" in vm.read("stage1.log", "") or
              "kexec_file_load" in vm.read("stage1.log", ""), "-d printed no debug output")


def test_crash_load_status_unload_and_capture(vm, vm_kernel):
    """Scenario b: kexec -s -p, -S before/after, -p -u, then a sysrq crash."""
    cmdline = vm.cmdline(2, "irqpoll nr_cpus=1 reset_devices")
    load = "kexec -s -p %s --initrd=%s --append=%s" % (q(vm_kernel.vmlinuz), q(vm.initrd),
                                                        q(cmdline))
    vm.stage(1, """
kexec -S; result status_before $?
%(load)s; result load1 $?
kexec -S; result status_after $?
result crash_loaded_1 "$(cat /sys/kernel/kexec_crash_loaded)"
kexec -p -u; result unload $?
result crash_loaded_2 "$(cat /sys/kernel/kexec_crash_loaded)"
kexec -S; result status_unloaded $?
%(load)s; result load2 $?
kexec -c -p -u; result unload_kexec_load $?
result crash_loaded_3 "$(cat /sys/kernel/kexec_crash_loaded)"
%(load)s; result load3 $?
result crash_loaded_4 "$(cat /sys/kernel/kexec_crash_loaded)"
sync
echo c > /proc/sysrq-trigger
""" % {"load": load})
    vm.stage(2, """
test -e /proc/vmcore && result vmcore yes
result vmcore_size "$(stat -c %s /proc/vmcore)"
""")
    vm.boot(extra_cmdline="crashkernel=160M")
    expected = {"status_before": "0", "load1": "0", "status_after": "1",
                "crash_loaded_1": "1", "unload": "0", "crash_loaded_2": "0",
                "status_unloaded": "0", "load2": "0", "unload_kexec_load": "0",
                "crash_loaded_3": "0", "load3": "0", "crash_loaded_4": "1"}
    got = {k: (vm.read("result." + k) or "").strip() for k in expected}
    vm.expect(got == expected, "stage 1 results %r != %r" % (got, expected))
    vm.expect(vm.read("result.vmcore") == "yes\n", "the capture kernel saw no /proc/vmcore")
    vm.expect(int(vm.read("result.vmcore_size", "0").strip() or 0) > 100 << 20,
              "/proc/vmcore is implausibly small")
    # kexec_file_load puts elfcorehdr= in front of the command line it was given
    seen = vm.read("cmdline.2", "").rstrip("\n")
    vm.expect(re.fullmatch(r"elfcorehdr=0x[0-9a-f]+ " + re.escape(cmdline), seen),
              "capture kernel command line %r" % seen)


def _write_bls_tree(vm, vm_kernel, root, token_old, token_new):
    """A /boot with two BLS entries; grubenv's saved_entry picks the older one."""
    import os
    entries = os.path.join(root, "boot", "loader", "entries")
    os.makedirs(entries)
    os.makedirs(os.path.join(root, "boot", "grub2"))
    os.symlink(vm_kernel.vmlinuz, os.path.join(root, "boot", "vmlinuz-6.1.0-1-amd64"))
    os.symlink(vm_kernel.vmlinuz, os.path.join(root, "boot", "vmlinuz-6.1.0-2-amd64"))
    initrd_with_marker(vm.initrd, os.path.join(root, "boot", "initramfs-6.1.0-1-amd64.img"),
                       token_old)
    initrd_with_marker(vm.initrd, os.path.join(root, "boot", "initramfs-6.1.0-2-amd64.img"),
                       token_new)
    options = {}
    for n in (1, 2):
        options[n] = vm.cmdline(2, "kpy.bls=entry%d" % n)
        with open(os.path.join(entries, "abc123-6.1.0-%d-amd64.conf" % n), "w") as f:
            f.write("title Test Linux 6.1.0-%d\nversion 6.1.0-%d-amd64\n"
                    "linux /vmlinuz-6.1.0-%d-amd64\ninitrd /initramfs-6.1.0-%d-amd64.img\n"
                    "options %s\n" % (n, n, n, n, options[n]))
    with open(os.path.join(root, "boot", "grub2", "grubenv"), "w") as f:
        f.write("# GRUB Environment Block\nsaved_entry=abc123-6.1.0-1-amd64\n".ljust(1024, "#"))
    return options[1]


def test_default_bls_entry(vm, vm_kernel):
    """Scenario c: kexec -l --default loads grubenv's saved BLS entry, not the newest."""
    import os
    root = vm.path("fixture-root")
    token_old, token_new = secrets.token_hex(6), secrets.token_hex(6)
    expected = _write_bls_tree(vm, vm_kernel, root, token_old, token_new)
    vm.stage(1, """
kexec --list-entries --root=%(root)s
kexec -l --default --root=%(root)s || exit 1
kexec -e
exit 1
""" % {"root": q(root)})
    vm.stage(2, "result booted yes")
    vm.boot()
    vm.expect(vm.read("result.booted") == "yes\n", "the default entry did not boot")
    vm.expect(vm.read("cmdline.2", "").rstrip("\n") == expected,
              "booted with %r, the default entry says %r" % (vm.read("cmdline.2"), expected))
    vm.expect(vm.read("initrd-marker.2", "").strip() == token_old,
              "booted the wrong entry's initrd")
    assert os.path.exists(root)


@pytest.mark.skipif(not shutil.which("kexec", path="/usr/sbin:/sbin"),
                    reason="Debian's kexec-tools is installed by make test")
def test_same_second_kernel_cmdline_as_kexec_tools(vm_assets, tmp_path):
    """Scenario d: the same load with Debian's kexec-tools and with ours gives the second
    kernel the same /proc/cmdline."""
    from .harness import VM
    kernel, base = vm_assets
    seen = {}
    for name, kexec in (("peer", "/usr/sbin/kexec"), ("ours", "kexec")):
        vm = VM(str(tmp_path / name), kernel.vmlinuz, base)
        # The stage-specific part (output path) differs; the rest is the same text.
        cmdline = vm.cmdline(2, 'quiet kpy.test="x y" root=/dev/null')
        vm.stage(1, load_and_exec(kexec, vm, kernel.vmlinuz, [base], cmdline))
        vm.stage(2, "result booted yes")
        vm.boot()
        vm.expect(vm.read("result.booted") == "yes\n", "%s: second kernel did not run" % name)
        seen[name] = vm.read("cmdline.2", "").rstrip("\n").replace(vm.out, "OUT")
    assert seen["peer"] == seen["ours"], seen
    assert 'kpy.test="x y"' in seen["ours"]


def test_unified_kernel_image_boots_with_its_own_cmdline_and_initrd(vm, vm_kernel):
    """Issue 12: a UKI made from Debian's kernel, the harness initrd (with a marker) and
    a command line, on systemd's EFI stub; `kexec -s -l UKI` with no --initrd or
    --append, then kexec -e: the second kernel has exactly the embedded command line
    and unpacked the embedded initrd."""
    from tests.uki_build import build_uki
    token = secrets.token_hex(8)
    initrd = initrd_with_marker(vm.initrd, vm.path("uki-initrd.img"), token)
    cmdline = vm.cmdline(2, "kpy.uki=embedded")
    with open(vm_kernel.vmlinuz, "rb") as k, open(initrd, "rb") as i:
        image = build_uki(vm.path(""), k.read(), name="linux.efi", initrd=i.read(),
                          cmdline=cmdline)
    vm.stage(1, """
kexec -s -l %(uki)s || { echo load failed; exit 1; }
echo loaded: $(cat /sys/kernel/kexec_loaded)
kexec -e
echo "kexec -e returned $?"
exit 1
""" % {"uki": q(image)})
    vm.stage(2, "result booted yes")
    vm.boot()
    vm.expect(vm.read("result.booted") == "yes\n", "the UKI's kernel did not run stage 2")
    vm.expect(vm.read("cmdline.2", "").rstrip("\n") == cmdline,
              "second kernel's /proc/cmdline %r != the UKI's .cmdline %r"
              % (vm.read("cmdline.2"), cmdline))
    vm.expect(vm.read("initrd-marker.2", "").strip() == token,
              "the second kernel did not unpack the UKI's .initrd")
