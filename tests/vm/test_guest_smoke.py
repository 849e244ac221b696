"""The systemd guest harness itself (guest.py): a Debian 12 root with systemd as PID 1
reaches a running system, kexec-py is installed in it from the kpyinstall share, and a
`reboot` comes back through QEMU's -kernel/-append into the first kernel, where the
driver runs the next boot's script and sees what the previous boot wrote to the disk."""
import secrets

from .guest import SystemdGuest


def test_systemd_guest_boots_installs_and_survives_a_reboot(tmp_path):
    g = SystemdGuest(str(tmp_path / "guest"))
    token = secrets.token_hex(8)
    g.script(1, """
record sysrun timeout 180 systemctl is-system-running --wait
systemctl --failed --no-legend --plain > "$OUT/failed.txt" 2>&1
record kdumpctl kdumpctl --help
record vmcorecopy vmcore-copy --help
record native python3 -c 'import kexec_py._native'
result kexec "$(command -v kexec)"
result kdumpunit "$(systemctl show -p LoadState --value kdump.service)"
echo %s > /var/tmp/kpy-smoke
sync
reboot
""" % token)
    g.script(2, """
result persisted "$(cat /var/tmp/kpy-smoke)"
result counter "$(cat /var/lib/kpy-boot)"
poweroff
""")
    g.boot(timeout=420)

    rc, out = g.recorded("sysrun")
    g.expect(out is not None and out.strip() in ("running", "degraded"),
             "is-system-running --wait: %r (rc %s)" % (out, rc))
    failed = g.read("failed.txt", "").strip()
    print("systemctl --failed: %s" % (failed or "(none)"))
    for name in ("kdumpctl", "vmcorecopy", "native"):
        rc, out = g.recorded(name)
        g.expect(rc == 0, "%s exited %s:\n%s" % (name, rc, out))
    g.expect("usage: kdumpctl" in g.recorded("kdumpctl")[1], "kdumpctl --help printed no usage")
    g.expect(g.result("kexec") == "/usr/sbin/kexec", "kexec on PATH: %r" % g.result("kexec"))
    if g.installed_by == "make":  # make install brings kdump.service: daemon-reload saw it
        g.expect(g.result("kdumpunit") == "loaded",
                 "kdump.service LoadState %r" % g.result("kdumpunit"))
    g.expect(g.boot_end(1) == "reboot" and g.boot_rc(1) == 0,
             "boot 1 ended %s (rc %s)" % (g.boot_end(1), g.boot_rc(1)))
    g.expect(g.result("persisted") == token,
             "boot 2 did not see boot 1's /var/tmp file: %r" % g.result("persisted"))
    g.expect(g.result("counter") == "2", "boot counter in boot 2: %r" % g.result("counter"))
    g.expect(g.read("boot1.cmdline") == g.read("boot2.cmdline"),
             "the reboot changed the command line: %r -> %r"
             % (g.read("boot1.cmdline"), g.read("boot2.cmdline")))
    g.expect(g.boot_end(2) == "poweroff", "boot 2 ended %s" % g.boot_end(2))
    g.expect(g.read("boot3.start") is None, "a third boot started")

    # The same facts read back from the overlay after QEMU exited, without mounting it.
    assert g.read_file(None, "/var/tmp/kpy-smoke").decode().strip() == token
    assert g.read_file(None, "/var/lib/kpy-boot").decode().strip() == "2"
    installed = g.read_file(None, "/var/lib/kpy-installed").decode()
    assert "./usr/sbin/vmcore-copy" in installed, installed[:500]
    dumped = g.rdump(None, "/var/lib/kpy-boot", str(tmp_path / "rdump"))
    assert open(dumped).read().strip() == "2"

    print("base image %s (key %s): %s" % (
        g.base.path, g.base.key, "built in %.0f s" % g.base.built_seconds
        if g.base.built_seconds else "cached (built in %s s)" % g.base.info["build_seconds"]))
    print("installed by: %s" % g.installed_by)
    print("QEMU run: %.0f s for two boots" % g.seconds)
    for n in (1, 2):
        print("boot %d: driver started at guest uptime %.1f s, %s s after QEMU started"
              % (n, g.driver_uptime(n), g.driver_seen.get(n)))
