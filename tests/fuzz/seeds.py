"""Seed inputs for the fuzz targets, written by the test generators (tests/vmcore_synth.py
and the copier itself), small enough to mutate quickly: a kernel with struct pages,
page tables and a printk ring in 180 frames, as every input form the readers take."""
import os
import shutil
import subprocess

from kexec_py import vmcore
from tests import vmcore_synth as S
from tests.unit.test_vmcore_levels import build

PAGE = S.PAGE
TARGETS = ("dump", "copy", "dmesg", "flat", "zstd")

# Small inputs for the Python targets (tests/fuzz/py_targets.py), each a form the parser
# meets on real systems.
PY_SEEDS = {
    "bls": [b"title Fedora (6.5.6-300.fc39.x86_64)\nversion 6.5.6-300.fc39.x86_64\n"
            b"linux /vmlinuz-6.5.6-300.fc39.x86_64\ninitrd /initramfs-6.5.6.img\n"
            b"options root=UUID=1234 ro rhgb quiet $tuned_params\ngrub_users $grub_users\n"
            b"grub_arg --unrestricted\ngrub_class fedora\nsort-key fedora\n"],
    "grub2": [b"set default=\"1\"\nmenuentry 'Debian GNU/Linux' --class debian "
              b"$menuentry_id_option 'gnulinux-simple-1234' {\n\tlinux /vmlinuz-6.1.0 "
              b"root=UUID=1234 ro quiet\n\tinitrd /initrd.img-6.1.0\n}\n"
              b"submenu 'Advanced options' $menuentry_id_option 'gnulinux-advanced' {\n"
              b"  menuentry 'recovery' { linux16 /vmlinuz-5.10 single; initrdefi /i }\n}\n"
              b"if [ x\"${feature}\" = xy ]; then\n  insmod blscfg\n  blscfg\nfi\n"],
    "grub-legacy": [b"default=0\ntimeout=5\nsplashimage=(hd0,0)/grub/splash.xpm.gz\n"
                    b"title Red Hat Enterprise Linux (2.6.32-754.el6.x86_64)\n"
                    b"\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32-754.el6.x86_64 ro "
                    b"root=/dev/mapper/vg-root crashkernel=auto\n"
                    b"\tinitrd /initramfs-2.6.32-754.el6.x86_64.img\n"],
    "grubenv": [b"# GRUB Environment Block\nsaved_entry=1234-6.5.6\nkernelopts=root=/dev/sda1 "
                b"ro ${extra}\nboot_success=0\n" + b"#" * 900],
    "cmdline": [b"BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.5 root=UUID=1234 ro crashkernel=1G-4G:192M,"
                b"4G-64G:256M,64G-:512M rd.lvm.lv=rhel/root console=\"ttyS0,115200\" -- init x"],
    "crashkernel": [b"1G-4G:192M,4G-64G:256M,64G-:512M", b"256M@16M", b"512M,high", b"auto",
                    b"0x10000000,low", b"2G-:256M@0x1000000"],
    "kdump-conf": [b"path /var/crash\ncore_collector makedumpfile -l --message-level 7 -d 31\n"
                   b"ext4 LABEL=crash\nfailure_action dump_to_rootfs\nfinal_action reboot\n"
                   b"ssh kdump@10.0.2.2\nsshkey /root/.ssh/kdump_id_rsa\nextra_bins /bin/ls\n"
                   b"extra_modules e1000\ndracut_args --omit-drivers \"a b\"\n"
                   b"kdump_pre /bin/true\nkdump_post /bin/true\nraw /dev/vdb1\n"
                   b"nfs 10.0.2.2:/export\nxfs UUID=abc\nsshkey /k\nauto_reset_crashkernel yes\n"],
    "sysconfig": [b"KDUMP_KERNELVER=\"\"\nKDUMP_COMMANDLINE=\"\"\n"
                  b"KDUMP_COMMANDLINE_REMOVE=\"hugepages hugepagesz slub_debug quiet\"\n"
                  b"KDUMP_COMMANDLINE_APPEND=\"irqpoll nr_cpus=1 reset_devices\"\n"
                  b"KEXEC_ARGS=\"-s\"\nKDUMP_IMG=\"vmlinuz\"\nKDUMP_IMG_EXT=\"\"\n"
                  b"KDUMP_STDLOGLVL=3\nKDUMP_SYSLOGLVL=0\nKDUMP_KMSGLOGLVL=0\n"],
    "vmcoreinfo": [b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82e1b5e0\n"
                   b"SIZE(page)=64\nOFFSET(page.flags)=0\nNUMBER(PG_lru)=4\n"
                   b"LENGTH(mem_section)=2048\nKERNELOFFSET=2c00000\nCRASHTIME=1700000000\n"],
    "cpio": [bytes(range(256)) * 4],
    "elfcore": [bytes(range(256)) * 2],
}
PY_TARGETS = ("bzimage",) + tuple(PY_SEEDS)


def tiny(log="lockless"):
    """The level-capable synthetic kernel cut down to the frames its readers need, with
    one of the three printk layouts."""
    s = build()
    if log == "lockless":
        S.lockless_log(s, [(1000000 * i, b"fuzz line %d" % i, 2) for i in range(4)])
    elif log == "structured":
        S.structured_log(s, [(1000000 * i, b"fuzz line %d" % i, b"") for i in range(4)])
    else:
        S.plain_log(s, b"".join(b"<6>fuzz line %d\n" % i for i in range(4)), buf_len=256)
    text = 0x1000000
    s.text_segment = (text, 16 * PAGE)
    s.ranges = [(0x200000, 0x200000 + 64 * PAGE), (text, text + 16 * PAGE),
                (0x10000000, 0x10000000 + 100 * PAGE)]
    s._starts_key = None
    return s


def write(out_dir):
    """Seeds for every target under out_dir/<target>/; returns {target: [paths]}."""
    shutil.rmtree(out_dir, ignore_errors=True)
    dirs = {t: os.path.join(out_dir, t) for t in TARGETS}
    for d in dirs.values():
        os.makedirs(d)
    work = os.path.join(out_dir, "work")
    os.makedirs(work)
    s = tiny()
    proc = s.write(os.path.join(work, "proc.elf"))
    forms = {"proc.elf": proc,
             "qemu.elf": s.write_qemu(os.path.join(work, "qemu.elf")),
             "qemu-xnum.elf": s.write_qemu(os.path.join(work, "qemu-xnum.elf"), xnum=True),
             "hvm.xc": s.write_xc_core(os.path.join(work, "hvm.xc"), pad=2),
             "pv.xc": s.write_xc_core(os.path.join(work, "pv.xc"), pv=True, pad=1)}
    for codec in ("none", "lzo", "zlib", "zstd", "snappy"):
        path = os.path.join(work, "d1.%s.kdump" % codec)
        vmcore.copy(proc, path, compression=codec, dump_level=1)
        forms[os.path.basename(path)] = path
    path = os.path.join(work, "d31.elf")
    vmcore.copy(proc, path, format="elf", dump_level=31)
    forms["d31.elf"] = path
    flat = os.path.join(work, "lzo.flat")
    with open(flat, "wb") as f:
        subprocess.run([vmcore.executable("vmcore-copy"), "-F", "-l", "-d", "31",
                        "--message-level", "0", proc], stdout=f, check=True)
    forms["lzo.flat"] = flat
    for log in ("structured", "plain"):
        name = log + ".kdump"
        forms[name] = os.path.join(work, name)
        vmcore.copy(tiny(log).write(os.path.join(work, log + ".elf")), forms[name],
                    compression="lzo", dump_level=1)
    pick = {"dump": list(forms), "copy": ["proc.elf", "qemu.elf", "hvm.xc", "pv.xc",
                                          "d1.lzo.kdump", "d31.elf"],
            "dmesg": ["d1.lzo.kdump", "structured.kdump", "plain.kdump", "proc.elf"],
            "flat": ["lzo.flat"]}
    for target, names in pick.items():
        for name in names:
            shutil.copyfile(forms[name], os.path.join(dirs[target], name))
    for name, data in (("empty", b""), ("text", b"kexec-py zstd seed\n" * 64),
                       ("binary", bytes(range(256)) * 64)):
        raw = os.path.join(work, name)
        with open(raw, "wb") as f:
            f.write(data)
        subprocess.run(["zstd", "-q", "-f", "-19", raw, "-o",
                        os.path.join(dirs["zstd"], name + ".zst")], check=True)
    shutil.rmtree(work)
    from tests.unit.conftest import make_bzimage
    PY_SEEDS["bzimage"] = [make_bzimage()[:8192], make_bzimage(version=0x0206)[:4096]]
    for target, blobs in PY_SEEDS.items():
        d = dirs[target] = os.path.join(out_dir, target)
        os.makedirs(d, exist_ok=True)
        for i, blob in enumerate(blobs):
            with open(os.path.join(d, "seed%d" % i), "wb") as f:
                f.write(blob)
    return {t: sorted(os.listdir(d)) for t, d in dirs.items()}
