"""Network and raw dump targets in the systemd guest (scenarios b and e), one guest.

b. ssh (dracut's shell init: dracut_args adds a dracut module): an sshd started by this
   test on the host's 127.0.0.1 (a free port) with a temporary host key and authorized
   key; the guest reaches it as 10.0.2.2 through QEMU's user network, the port set in
   /root/.ssh/config as a user with another port would.
   `kdumpctl start` checks it, the capture kernel brings the interface up itself and
   streams the flattened dump; vmcore.flat arrives, `vmcore-copy -R` rebuilds a dump
   that drgn opens.
e. raw: the same guest then dumps over a raw disk; the next `kdumpctl start` in the
   first kernel recovers it into /var/crash/<date>/vmcore and zeroes the stream's header.
   This image is a systemd initramfs (dracut_args --add "systemd"): the capture runs as
   kexec-py-kdump-capture.service of the image's own default target, not as a hook.
e. nfs: then to an NFSv4 export served by nfs-ganesha (userspace, started by this test on
   127.0.0.1, a free port); the guest mounts it with port= as a user would, mkdumprd
   carries those options into the capture kernel (the own init: no udev), whose script
   brings the interface up and mounts the export itself.
"""
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time

from kexec_py import vmcore
from kexec_py.cpio import list_names

from .guest import SystemdGuest
from .test_dump_levels import check_drgn

SSH_ADDR = "10.0.2.2"   # QEMU user networking: the host's loopback


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(argv, port, log_path):
    """Run a server (argv, output to log_path) until the block ends; wait until it
    accepts connections on 127.0.0.1:port first."""
    with open(log_path, "a") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "%s exited:\n%s" % (argv[0], open(log_path).read())
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def sshd(workdir):
    """sshd on 127.0.0.1:PORT taking only a key made here; yields (port, key, known line)."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    assert os.access(sshd_bin, os.X_OK), "sshd is missing (make test installs openssh-server)"
    os.makedirs(workdir)
    host_key = os.path.join(workdir, "host_key")
    client_key = os.path.join(workdir, "kdump_id")
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    shutil.copy(client_key + ".pub", os.path.join(workdir, "authorized_keys"))
    os.chmod(os.path.join(workdir, "authorized_keys"), 0o600)
    port = free_port()
    config = os.path.join(workdir, "sshd_config")
    with open(config, "w") as f:
        f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\n"
                "PidFile %s\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
                "PermitRootLogin prohibit-password\nAllowUsers root\n"
                % (port, host_key, os.path.join(workdir, "authorized_keys"),
                   os.path.join(workdir, "sshd.pid")))
    os.makedirs("/run/sshd", exist_ok=True)   # sshd's privilege separation directory
    with open(host_key + ".pub") as f:
        known = "[%s]:%d %s" % (SSH_ADDR, port, " ".join(f.read().split()[:2]))
    with serving([sshd_bin, "-D", "-e", "-f", config], port,
                 os.path.join(workdir, "sshd.log")):
        yield port, client_key, known


GANESHA_CONF = """NFS_CORE_PARAM {
    NFS_Port = %(port)d; Bind_addr = 127.0.0.1; Protocols = 4;
    Enable_NLM = false; Enable_RQUOTA = false;
}
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = "%(dir)s/recovery"; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
    Export_Id = 1; Path = "%(export)s"; Pseudo = /export;
    Access_Type = RW; Squash = No_Root_Squash; SecType = sys;
    Protocols = 4; Transports = TCP;
    FSAL { Name = VFS; }
}
"""


@contextlib.contextmanager
def nfs_server(workdir):
    """nfs-ganesha (FSAL VFS) exporting workdir/export as /export over NFSv4 on
    127.0.0.1:PORT with no grace period; yields (port, export directory)."""
    ganesha = shutil.which("ganesha.nfsd") or "/usr/bin/ganesha.nfsd"
    assert os.access(ganesha, os.X_OK), \
        "ganesha.nfsd is missing (make test installs nfs-ganesha and nfs-ganesha-vfs)"
    export = os.path.join(workdir, "export")
    os.makedirs(export)
    os.makedirs(os.path.join(workdir, "recovery"))
    port = free_port()
    config = os.path.join(workdir, "ganesha.conf")
    with open(config, "w") as f:
        f.write(GANESHA_CONF % {"port": port, "dir": workdir, "export": export})
    log = os.path.join(workdir, "ganesha.log")
    with serving([ganesha, "-F", "-L", log, "-f", config,
                  "-p", os.path.join(workdir, "ganesha.pid")], port, log):
        yield port, export


def rearm(name, journal, then=""):
    """Guest script lines: `kdumpctl restart` for the new kdump.conf (recorded as name,
    the journal kept), the lines `then`, and a crash once the capture kernel is loaded."""
    return """record %s kdumpctl restart
journalctl -b -u kdump --no-pager > "$OUT/%s" 2>&1
%s[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || exit 1
sync
crash
""" % (name, journal, then)


def test_ssh_raw_and_nfs_targets(tmp_path):
    remote = str(tmp_path / "remote")
    os.makedirs(remote)
    raw = str(tmp_path / "raw.img")
    subprocess.run(["truncate", "-s", "1G", raw], check=True)
    with sshd(str(tmp_path / "sshd")) as (port, key, known), \
            nfs_server(str(tmp_path / "nfs")) as (nfs_port, export):
        g = SystemdGuest(str(tmp_path / "guest"))
        g.add_disk(raw)                                           # /dev/vdb
        shutil.copy(key, os.path.join(g.ctl, "kdump_id"))
        with open(os.path.join(g.ctl, "known_hosts"), "w") as f:
            f.write(known + "\n")
        with open(os.path.join(g.ctl, "ssh_config"), "w") as f:
            f.write("Host %s\n    Port %d\n" % (SSH_ADDR, port))
        g.script(1, r"""
mkdir -p -m 0700 /root/.ssh
install -m 0600 "$OUT/kdump_id" /root/.ssh/kdump_id_rsa
cp "$OUT/known_hosts" /root/.ssh/known_hosts
cp "$OUT/ssh_config" /root/.ssh/config
# any dracut module that dracut_args adds selects dracut's shell init (base, udev) over
# kexec-py's own: this leg covers that image, with the capture as a pre-mount hook
cat > /etc/kdump.conf <<EOF
ssh root@%(addr)s
path %(remote)s
dracut_args --add "bash"
EOF
record enable systemctl enable --now kdump
cp /boot/initramfs-$(uname -r)kdump.img "$OUT/capture-ssh.img"
journalctl -b -u kdump --no-pager > "$OUT/journal1.txt" 2>&1
record status1 kdumpctl status
[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || exit 1
sync
crash
""" % {"addr": SSH_ADDR, "remote": remote})
        g.script(2, r"""
record start2 systemctl start kdump
record status2 kdumpctl status
cat > /etc/kdump.conf <<'EOF'
raw /dev/vdb
dracut_args --add "systemd"
EOF
""" + rearm("restart", "journal2.txt",
            'cp /boot/initramfs-$(uname -r)kdump.img "$OUT/capture-systemd.img"\n'))
        g.script(3, r"""
record start3 systemctl start kdump
journalctl -b -u kdump --no-pager > "$OUT/journal3.txt" 2>&1
record status3 kdumpctl status
ls /var/crash > "$OUT/crash-dirs.txt"
dd if=/dev/vdb bs=4096 count=1 2>/dev/null | od -An -c | head -2 > "$OUT/raw-head.txt"
# e. nfs: the export mounted as a user would (its port in the options), then the target
mkdir -p /mnt/nfs
record nfsmount mount -t nfs4 -o vers=4.1,port=%(nfs_port)d %(addr)s:/export /mnt/nfs
mkdir -p /mnt/nfs/var/crash
cat > /etc/kdump.conf <<'EOF'
nfs %(addr)s:/export
path /var/crash
EOF
""" % {"addr": SSH_ADDR, "nfs_port": nfs_port} + rearm("restart3", "journal3b.txt"))
        g.script(4, r"""
record start4 systemctl start kdump
record status4 kdumpctl status
poweroff
""")
        g.boot("crashkernel=256M", memory="768M", timeout=3000)

    rc, out = g.recorded("enable")
    g.expect(rc == 0, "enable --now kdump with the ssh target: %s\n%s"
             % (out, g.read("journal1.txt", "")))
    g.expect(g.boot_end(1) == "crash", "boot 1 ended %s" % g.boot_end(1))

    names = set(list_names(os.path.join(g.ctl, "capture-ssh.img")))
    for name in ("lib/dracut/hooks/pre-mount/90-kdump-capture-hook.sh", "bin/udevadm",
                 "bin/ssh"):
        g.expect([n for n in names if n.endswith(name)],
                 "%s is not in dracut's shell-init capture image" % name)
    g.expect("etc/kdump/modules" not in names, "dracut's image has the own init's list")

    # b. ssh: what arrived on the host
    dirs = [d for d in os.listdir(remote) if not d.startswith(".")]
    assert len(dirs) == 1, (dirs, g.read("journal1.txt"))
    d = os.path.join(remote, dirs[0])
    assert re.match(r"^10\.0\.2\.15-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$", dirs[0]), dirs[0]
    names = sorted(os.listdir(d))
    assert names == ["kdump-result.json", "kexec-dmesg.log", "vmcore-dmesg.txt", "vmcore.flat"], \
        names
    assert "sysrq triggered crash" in open(os.path.join(d, "vmcore-dmesg.txt")).read()
    rebuilt = str(tmp_path / "from-ssh.vmcore")
    with open(os.path.join(d, "vmcore.flat"), "rb") as f:
        subprocess.run([vmcore.executable(), "-R", rebuilt], stdin=f, check=True)
    check_drgn(rebuilt)
    record = json.load(open(os.path.join(d, "kdump-result.json")))
    assert record["status"] == "success" and record["dump_level"] == 31, record
    rc, out = g.recorded("status2")
    g.expect(rc == 0 and "Last dump: saved %s/10.0.2.15-" % remote in out,
             "status after the ssh dump: %s" % out)

    # e. raw: dumped over /dev/vdb by a systemd capture initramfs, recovered by the next start
    rc, out = g.recorded("restart")
    g.expect(rc == 0, "restart with the raw target: %s\n%s" % (out, g.read("journal2.txt", "")))
    names = set(list_names(os.path.join(g.ctl, "capture-systemd.img")))
    for name in ("systemd/system/kexec-py-kdump-capture.service",
                 "systemd/system/kexec-py-kdump.target", "lib/systemd/systemd"):
        g.expect([n for n in names if n.endswith(name)],
                 "%s is not in the systemd capture initramfs" % name)
    g.expect(not [n for n in names if "hooks/pre-mount" in n and "kdump" in n],
             "the systemd capture initramfs still has the pre-mount hook")
    g.expect(g.boot_end(2) == "crash", "boot 2 ended %s" % g.boot_end(2))
    journal3 = g.read("journal3.txt", "")
    g.expect("Dump saved to /var/crash/" in journal3, "no raw recovery:\n%s" % journal3)
    (date,) = g.read("crash-dirs.txt", "").split()
    assert re.match(r"^\d{4}-\d\d-\d\d-\d\d:\d\d$", date), date
    g.expect(set(g.read("raw-head.txt", "").split()) == {"\\0", "*"} or
             set(g.read("raw-head.txt", "").split()) == {"\\0"},
             "the raw header was not zeroed: %r" % g.read("raw-head.txt"))
    got = g.rdump(None, "/var/crash/" + date, str(tmp_path / "raw"))
    check_drgn(os.path.join(got, "vmcore"))
    rc, out = g.recorded("status3")
    g.expect(rc == 0 and "Kdump is operational" in out, "status after recovery: %s" % out)

    # e. nfs: the dump arrived in the export through the capture kernel's own mount
    rc, out = g.recorded("nfsmount")
    g.expect(rc == 0, "the guest cannot mount the export: %s" % out)
    rc, out = g.recorded("restart3")
    g.expect(rc == 0, "restart with the nfs target: %s\n%s" % (out, g.read("journal3b.txt", "")))
    g.expect(g.boot_end(3) == "crash", "boot 3 ended %s" % g.boot_end(3))
    dirs = os.listdir(os.path.join(export, "var/crash"))
    assert len(dirs) == 1 and re.match(r"^10\.0\.2\.15-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$",
                                       dirs[0]), dirs
    d = os.path.join(export, "var/crash", dirs[0])
    assert sorted(os.listdir(d)) == ["kdump-result.json", "kexec-dmesg.log", "vmcore",
                                     "vmcore-dmesg.txt"], os.listdir(d)
    assert "sysrq triggered crash" in open(os.path.join(d, "vmcore-dmesg.txt")).read()
    record = json.load(open(os.path.join(d, "kdump-result.json")))
    assert record["status"] == "success" and record["target"] == "nfs %s:/export" % SSH_ADDR, \
        record
    check_drgn(os.path.join(d, "vmcore"))
    rc, out = g.recorded("status4")
    g.expect(rc == 0 and "Last dump: saved /var/crash/10.0.2.15-" in out,
             "status after the nfs dump: %s" % out)
