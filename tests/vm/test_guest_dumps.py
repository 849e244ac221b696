"""Dumps of a running guest taken from the hypervisor (issue 10, items 6a-6c): QEMU's
`dump-guest-memory`, as `virsh dump --memory-only` runs it.

One boot of a guest started with `-device vmcoreinfo` and a QMP socket. The host stops it
twice through QMP: first before the guest has loaded qemu_fw_cfg (so it has published no
VMCOREINFO: the file is what a guest without the device gives), then after it loaded the
module and wrote a marker to its kernel log; the second stop is dumped as ELF and as
kdump-zlib. On the host:

a. `vmcore-copy -l -d 31` on the ELF keeps exactly the frames `makedumpfile -l -d 31`
   keeps on the same memory (its copy has the program headers where makedumpfile 1.7.2
   looks for them; VRAM and the BIOS ROM in the dump are left out by both), `--verify`
   passes, vmcore-dmesg prints the marker from the
   ELF and from the kdump-zlib file, drgn opens our output; the dump without VMCOREINFO
   copies at -d 1 and refuses -d 31 with the message that says how to get one.
b. `-E -d 31` keeps exactly the frames `-l -d 31` keeps, and drgn reads init_uts_ns
   through the kernel's page tables from it.
c. The ELF converted into a Xen HVM xc_core file (map shuffled and padded) reads back
   the same pages through python3-libkdumpfile and through ours, and with the ELF's
   VMCOREINFO as a file it gives the marker and the same -d 31 frames.
"""
import os
import secrets
import shutil
import struct
import subprocess

from kexec_py import vmcore
from kexec_py.vmcore import vmcoreinfo

from tests import vmcore_synth
from tests import vmcore_testlib as T
from tests.unit.test_vmcore_xen import libkdumpfile, sha

from .qmp import QMP

MAKEDUMPFILE = shutil.which("makedumpfile") or "/usr/sbin/makedumpfile"
MEMORY = "384M"

GUEST = r"""
echo "kpy-guest: no fw_cfg yet" > /dev/kmsg
: > "$OUT/ready.1"
while [ ! -e "$OUT/go.1" ]; do sleep 0.2; done
insmod %(fw_cfg)s; result insmod $?
ls /sys/firmware/qemu_fw_cfg/by_name/etc > "$OUT/fw_cfg.txt" 2>&1
echo "%(marker)s" > /dev/kmsg
sync
: > "$OUT/ready.2"
sleep 100000
"""


def take_dumps(vm, paths):
    def during(v):
        v.wait_for("ready.1", 600, "the guest's first stop")
        with QMP(v.path("qmp.sock")) as q:
            q.execute("stop")
            q.execute("dump-guest-memory", timeout=600, paging=False,
                      protocol="file:" + paths["bare"])
            q.execute("cont")
            open(v.path("go.1"), "w").close()
            v.wait_for("ready.2", 300, "the guest's second stop")
            q.execute("stop")
            q.execute("dump-guest-memory", timeout=600, paging=False,
                      protocol="file:" + paths["elf"])
            q.execute("dump-guest-memory", timeout=600, paging=False,
                      protocol="file:" + paths["kz"], format="kdump-zlib")
            q.execute("quit")
    return during


def for_makedumpfile(src, dst):
    """A copy of a QEMU ELF dump with its program headers right after the ELF header:
    makedumpfile 1.7.2 (Debian 12) reads them from there whatever e_phoff says, and
    QEMU 7.2 puts section headers there. Only the header area changes; memory and notes
    stay where they are."""
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        head = bytearray(f.read(1 << 16))
        phoff, = struct.unpack_from("<Q", head, 32)
        phnum, = struct.unpack_from("<H", head, 56)
        ph = bytes(head[phoff:phoff + 56 * phnum])
        first_data = min(struct.unpack_from("<Q", ph, 56 * i + 8)[0] for i in range(phnum))
        assert 64 + len(ph) <= first_data, "no room for the program headers"
        head[64:64 + len(ph)] = ph
        struct.pack_into("<QQ", head, 32, 64, 0)                  # e_phoff, e_shoff
        struct.pack_into("<HHHHHH", head, 52, 64, 56, phnum, 0, 0, 0)
        f.seek(0)
        f.write(head[:64 + len(ph)])
    return dst


def frames(path):
    with vmcore.open(str(path)) as d:
        return set(d.pages())


def run(*argv, check=True):
    proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    if check:
        assert proc.returncode == 0, (argv, proc.returncode, proc.stderr[-2000:])
    return proc


def test_guest_dumped_from_the_host(vm, vm_kernel, tmp_path):
    fw_cfg = vm_kernel.module("qemu_fw_cfg")
    assert fw_cfg, "the guest kernel has no qemu_fw_cfg module"
    marker = "kpy-guest-dump-marker-%s" % secrets.token_hex(6)
    vm.memory = MEMORY
    vm.stage(1, GUEST % {"fw_cfg": fw_cfg, "marker": marker})
    d = tmp_path / "dumps"
    d.mkdir()
    paths = {k: str(d / n) for k, n in (("bare", "bare.elf"), ("elf", "guest.elf"),
                                          ("kz", "guest.kdump-zlib"))}
    vm.boot(qemu_args=["-device", "vmcoreinfo",
                       "-qmp", "unix:%s,server=on,wait=off" % vm.path("qmp.sock")],
            during=take_dumps(vm, paths), timeout=1200)
    vm.expect(vm.read("result.insmod", "").strip() == "0", "insmod qemu_fw_cfg failed")
    vm.expect("vmcoreinfo" in vm.read("fw_cfg.txt", ""),
              "the guest did not publish VMCOREINFO through fw_cfg")
    for p in paths.values():
        assert os.path.getsize(p) > 0

    # ---- a. -d 31 against makedumpfile on the same file ----
    ours, theirs = d / "ours.d31", d / "makedumpfile.d31"
    T.run("-l", "-d", "31", "--message-level", "0", paths["elf"], ours, check=0)
    peer_input = for_makedumpfile(paths["elf"], str(d / "guest-for-makedumpfile.elf"))
    run(MAKEDUMPFILE, "-l", "-d", "31", "--message-level", "0", peer_input, theirs)
    os.unlink(peer_input)
    kept, peer = frames(ours), frames(theirs)
    assert kept == peer, "ours and makedumpfile differ in %d frames (ours only %d, theirs "\
        "only %d)" % (len(kept ^ peer), len(kept - peer), len(peer - kept))
    assert 1000 < len(kept) < len(frames(paths["elf"])) // 2
    assert T.run("--verify", ours, check=0).returncode == 0
    dmesg = vmcore.executable("vmcore-dmesg")
    for src in (paths["elf"], paths["kz"]):
        log = run(dmesg, src).stdout
        assert marker in log, src
    # the kdump-zlib file re-filtered: the same frames as from the ELF
    T.run("-l", "-d", "31", "--message-level", "0", paths["kz"], d / "kz.d31", check=0)
    assert frames(d / "kz.d31") == kept
    with vmcore.open(str(ours)) as dump:
        info = dump.vmcoreinfo
        uts = vmcoreinfo.symbol(info, "init_uts_ns")
        uts_paddr = dump.vtop(uts)
        release = info["OSRELEASE"]
    assert release == vm_kernel.release
    import drgn
    prog = drgn.Program()
    prog.set_core_dump(str(ours))
    assert release.encode() in prog.read(uts_paddr, 512, True)

    # without VMCOREINFO: -d 1 works, -d 31 says how to get one
    T.run("-l", "-d", "1", "--message-level", "0", paths["bare"], d / "bare.d1", check=0)
    assert T.run("--verify", d / "bare.d1", check=0).returncode == 0
    err = T.run("-l", "-d", "31", paths["bare"], d / "bare.d31", check=1).stderr.decode()
    assert "-device vmcoreinfo" in err and "--vmcoreinfo FILE" in err, err
    assert not (d / "bare.d31").exists()

    # ---- b. ELF output at -d 31 keeps the same frames; drgn reads through it ----
    elf31 = d / "ours.elf31"
    T.run("-E", "-d", "31", "--message-level", "0", paths["elf"], elf31, check=0)
    assert frames(elf31) == kept
    prog = drgn.Program()
    prog.set_core_dump(str(elf31))
    assert release.encode() in prog.read(uts, 512)          # virtual: page-table walk

    # ---- c. the same memory as a Xen HVM xc_core file ----
    xc = str(d / "guest.xc")
    with vmcore.open(paths["elf"]) as src:
        pfns = sorted(src.pages())
        vmcore_synth.write_xc_core(xc, pfns, src.read_page, seed=5, pad=7)
        text = src.vmcoreinfo_text
    theirs_pages = libkdumpfile(xc, pfns)["pages"]
    with vmcore.open(xc) as ours_xc, vmcore.open(paths["elf"]) as src:
        assert sorted(ours_xc.pages()) == pfns
        for pfn in pfns:
            page = ours_xc.read_page(pfn)
            assert page == src.read_page(pfn), hex(pfn)
            assert theirs_pages[str(pfn)] == sha(page), hex(pfn)
    info_file = d / "vmcoreinfo.txt"
    info_file.write_text(text)
    assert marker in run(dmesg, "--vmcoreinfo", info_file, xc).stdout
    T.run("-l", "-d", "31", "-i", info_file, "--message-level", "0", xc, d / "xc.d31",
          check=0)
    assert frames(d / "xc.d31") == kept
