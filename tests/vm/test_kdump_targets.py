"""Network and raw dump targets in the systemd guest (scenarios b and e).

b. ssh: an sshd started by this test on the host's 127.0.0.1 (a free port) with a
   temporary host key and authorized key; the guest reaches it as 10.0.2.2 through QEMU's
   user network, the port set in /root/.ssh/config as a user with another port would.
   `kdumpctl start` checks it, the capture kernel brings the interface up itself and
   streams the flattened dump; vmcore.flat arrives, `vmcore-copy -R` rebuilds a dump
   that drgn opens.
e. raw: the same guest then dumps over a raw disk; the next `kdumpctl start` in the
   first kernel recovers it into /var/crash/<date>/vmcore and zeroes the stream's header.
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

from .guest import SystemdGuest
from .test_dump_levels import check_drgn

SSH_ADDR = "10.0.2.2"   # QEMU user networking: the host's loopback


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    log = open(os.path.join(workdir, "sshd.log"), "w")
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", config], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, open(log.name).read()
            time.sleep(0.1)
        with open(host_key + ".pub") as f:
            known = "[%s]:%d %s" % (SSH_ADDR, port, " ".join(f.read().split()[:2]))
        yield port, client_key, known
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_ssh_then_raw_targets(tmp_path):
    remote = str(tmp_path / "remote")
    os.makedirs(remote)
    raw = str(tmp_path / "raw.img")
    subprocess.run(["truncate", "-s", "1G", raw], check=True)
    with sshd(str(tmp_path / "sshd")) as (port, key, known):
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
cat > /etc/kdump.conf <<EOF
ssh root@%(addr)s
path %(remote)s
EOF
record enable systemctl enable --now kdump
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
EOF
record restart kdumpctl restart
journalctl -b -u kdump --no-pager > "$OUT/journal2.txt" 2>&1
[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || exit 1
sync
crash
""")
        g.script(3, r"""
record start3 systemctl start kdump
journalctl -b -u kdump --no-pager > "$OUT/journal3.txt" 2>&1
record status3 kdumpctl status
ls /var/crash > "$OUT/crash-dirs.txt"
dd if=/dev/vdb bs=4096 count=1 2>/dev/null | od -An -c | head -2 > "$OUT/raw-head.txt"
poweroff
""")
        g.boot("crashkernel=256M", memory="768M", timeout=2400)

    rc, out = g.recorded("enable")
    g.expect(rc == 0, "enable --now kdump with the ssh target: %s\n%s"
             % (out, g.read("journal1.txt", "")))
    g.expect(g.boot_end(1) == "crash", "boot 1 ended %s" % g.boot_end(1))

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
    g.expect(rc == 0, "status after the ssh dump: %s" % out)

    # e. raw: dumped over /dev/vdb, recovered by the next start
    rc, out = g.recorded("restart")
    g.expect(rc == 0, "restart with the raw target: %s\n%s" % (out, g.read("journal2.txt", "")))
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
