"""The console after kexec (issue 10, item 6d; the knowledge base's "garbled video").

The first kernel boots with `vga=0x317` on QEMU's standard VGA: the BIOS sets VESA mode
1024x768x16 and vesafb drives it ("VESA VGA" in /proc/fb). Then, in one QEMU run:

  1 (BIOS boot)  paints pattern 1; our `kexec -c` (kexec_load, screen_info from /dev/fb0)
  2              paints pattern 2; our `kexec -s` (kexec_file_load: the kernel's own copy)
  3              paints pattern 3; Debian's kexec-tools `kexec -c` (the peer)
  4              the control: our kexec_load with screen_info zeroed (a test wrapper)
  5              must have no VESA framebuffer: the knowledge base's garbled console

Each painted screen is taken with QMP `screendump` and compared pixel for pixel (at the
framebuffer's RGB565 precision); each kernel after a kexec must report the same
1024x768x16 framebuffer with the same stride as the first.
"""
import os
import shlex

from . import fbpattern
from .qmp import QMP

q = shlex.quote
PEER = "/usr/sbin/kexec"
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMMON = r"""
export PYTHONPATH=%(project)s
fbinfo() {
    cat /proc/fb > "$OUT/fb.$1" 2>&1
    for f in virtual_size bits_per_pixel stride; do
        cat /sys/class/graphics/fb0/$f 2>/dev/null || echo none
    done > "$OUT/fbgeom.$1"
}
paint() {
    python3 -m tests.vm.fbpattern paint "$1" > "$OUT/paint.$1.log" 2>&1
    result painted_$1 $?
    : > "$OUT/painted.$1"
    while [ ! -e "$OUT/shot.$1" ]; do sleep 0.2; done
}
"""


def stage_body(n, load):
    return COMMON % {"project": q(PROJECT)} + "fbinfo %d\n" % n + (
        "paint %d\n" % n if n <= 3 else "") + load + "\n"


def screenshots(vm, count):
    def during(v):
        with QMP(v.path("qmp.sock"), timeout=120) as qmp:
            for n in range(1, count + 1):
                v.wait_for("painted.%d" % n, 600, "kernel %d painting" % n)
                qmp.execute("screendump", filename=v.path("screen.%d.ppm" % n))
                open(v.path("shot.%d" % n), "w").close()
    return during


def test_framebuffer_survives_kexec(vm, vm_kernel):
    k, i = q(vm_kernel.vmlinuz), q(vm.initrd)

    def load(n, how, execute="kexec -e"):
        return "%s || exit 1\n%s\nexit 1" % (how % {"k": k, "i": i, "c": q(vm.cmdline(n))},
                                             execute)
    ours_c = "kexec -c -l %(k)s --initrd=%(i)s --append=%(c)s"
    ours_s = "kexec -s -l %(k)s --initrd=%(i)s --append=%(c)s"
    peer = PEER + " -c -l %(k)s --initrd=%(i)s --append=%(c)s"
    zeroed = "python3 -m tests.vm.kexec_zero_video -c -l %(k)s --initrd=%(i)s --append=%(c)s"
    vm.stage(1, stage_body(1, load(2, ours_c)))
    vm.stage(2, stage_body(2, load(3, ours_s)))
    vm.stage(3, stage_body(3, load(4, peer, PEER + " -e")))
    vm.stage(4, stage_body(4, load(5, zeroed)))
    vm.stage(5, stage_body(5, "result done yes"))
    vm.boot(extra_cmdline="vga=0x317",
            qemu_args=["-vga", "std", "-qmp", "unix:%s,server=on,wait=off"
                       % vm.path("qmp.sock")],
            during=screenshots(vm, 3), timeout=1500)
    vm.expect(vm.read("result.done") == "yes\n", "the chain did not reach kernel 5")
    first = vm.read("fbgeom.1", "").split()
    vm.expect(first == ["1024,768", "16", "2048"],
              "vga=0x317 did not give a 1024x768x16 VESA framebuffer: %r, /proc/fb %r"
              % (first, vm.read("fb.1")))
    for n, how in ((1, "BIOS boot"), (2, "our kexec_load"), (3, "our kexec_file_load"),
                   (4, "Debian's kexec-tools")):
        vm.expect("VESA VGA" in vm.read("fb.%d" % n, ""),
                  "after %s /proc/fb says %r" % (how, vm.read("fb.%d" % n)))
        vm.expect(vm.read("fbgeom.%d" % n, "").split() == first,
                  "after %s fb0 is %r, not %r" % (how, vm.read("fbgeom.%d" % n), first))
    for n in (1, 2, 3):
        vm.expect(vm.read("result.painted_%d" % n) == "0\n",
                  "kernel %d could not paint: %s" % (n, vm.read("paint.%d.log" % n)))
        bad, where, size = fbpattern.mismatches(vm.path("screen.%d.ppm" % n), n)
        vm.expect(size == (1024, 768) and bad == 0,
                  "kernel %d: the screen (%dx%d) differs from what it painted in %d "
                  "pixels, e.g. %r" % (n, size[0], size[1], bad, where))
    # the control: screen_info zeroed, as the early kexec-tools handed it over
    vm.expect("VESA VGA" not in vm.read("fb.5", "") and
              vm.read("fbgeom.5", "").split()[0] == "none",
              "with screen_info zeroed the next kernel still found the framebuffer: "
              "the check above proves nothing (%r)" % vm.read("fb.5"))
