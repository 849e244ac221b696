"""Capture footprint and capture time of the kdump service (issue 9, item 4); not in CI.

    make bench-kdump            (about 40 minutes under TCG)
    .venv/bin/python -m benchmarks.kdump_footprint [--lo 48] [--hi 256] [--step 4]
        [--skip-debian] [--json FILE] [WORKDIR]

In the systemd guest of the VM tests (Debian 12, 768M of RAM, scenario c's configuration:
`path /var/crash` and the shipped collector, `makedumpfile -l --message-level 7 -d 31`):

1. Ours at crashkernel=256M: `systemctl enable --now kdump`, `kdumpctl estimate`, a sysrq
   crash; the time from the panic to the first kernel's test driver running again (host
   clock: the mtime of the file the guest writes just before the crash, on the 9p share,
   against the moment the next boot's driver file appears there).
2. The smallest crashkernel= with which the capture still saves a complete dump, by
   bisection between --lo and --hi (MiB, --step resolution): each trial is one QEMU run
   of the same disk (the capture initramfs is built once, in step 1), booted with
   crashkernel=<size>M; the trial passes when the next boot finds a success record and a
   vmcore that `vmcore-copy --verify` accepts.
3. The peer: Debian's own kdump-tools (kexec-tools, makedumpfile, an initramfs-tools
   initrd that boots the full root file system into kdump-tools-dump.service), installed
   with apt in a fresh copy of the same guest image without kexec-py, at crashkernel=256M,
   timed the same way.

Prints a table and writes the figures as JSON (--json).
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time

from tests.vm.guest import SystemdGuest
from tests.vm.harness import GuestFailure

MEMORY = "768M"
TRIAL_TIMEOUT = 480

T = 't() { date +%s.%N > "$OUT/t.$1"; }\n'

OURS_SETUP = T.replace("%", "%%") + r"""
sed -i 's|^path .*|path /var/crash|' /etc/kdump.conf
grep -q '^path /var/crash' /etc/kdump.conf || echo 'path /var/crash' >> /etc/kdump.conf
t enable
record enable systemctl enable --now kdump
t enabled
record estimate kdumpctl estimate
cat /sys/kernel/kexec_crash_size > "$OUT/crash_size.%(n)d"
du -b /boot/initramfs-$(uname -r)kdump.img > "$OUT/capture-image-size"
sync
: > "$OUT/crash.%(n)d"
crash
"""

# a trial: clean what an earlier trial left, load, crash
TRIAL = r"""
rm -rf /var/crash/* /var/lib/kdump/last-dump.json
record start.%(n)d systemctl start kdump
cat /sys/kernel/kexec_crash_size > "$OUT/crash_size.%(n)d"
if [ "$(cat /sys/kernel/kexec_crash_loaded)" != 1 ]; then
    echo "not loaded" > "$OUT/trial.%(n)d"
    poweroff
fi
sync
: > "$OUT/crash.%(n)d"
crash
"""

CHECK = r"""
: > "$OUT/back.%(c)d"
if [ -f /var/lib/kdump/last-dump.json ]; then
    cp /var/lib/kdump/last-dump.json "$OUT/record.%(c)d"
fi
for d in /var/crash/*/; do
    [ -f "$d/vmcore" ] && record verify.%(c)d vmcore-copy --verify "$d/vmcore"
done
poweroff
"""

DEBIAN_SETUP = r"""
export DEBIAN_FRONTEND=noninteractive
record apt-update apt-get update
# initramfs-tools-core: kdump-tools builds its capture initrd with mkinitramfs (apt would
# otherwise take the dracut-core already in the image as the alternative)
record apt-install apt-get install -y --no-install-recommends kdump-tools \
    initramfs-tools-core makedumpfile
sed -i 's/^USE_KDUMP=.*/USE_KDUMP=1/' /etc/default/kdump-tools
grep -q '^USE_KDUMP=1' /etc/default/kdump-tools || echo USE_KDUMP=1 >> /etc/default/kdump-tools
ls -l /boot > "$OUT/boot.txt"
# the guest's kernel was not installed by dpkg: run the hook its postinst would run
record hook sh -x /etc/kernel/postinst.d/kdump-tools $(uname -r)
ls -l /var/lib/kdump >> "$OUT/boot.txt" 2>&1
record load kdump-config load
record status kdump-config status
cat /sys/kernel/kexec_crash_loaded > "$OUT/loaded"
sync
: > "$OUT/crash.1"
crash
"""

DEBIAN_CHECK = r"""
: > "$OUT/back.2"
find /var/crash -type f -printf '%s %p\n' > "$OUT/debian-files.txt"
for f in /var/crash/*/dump.*; do
    [ -f "$f" ] && record verify.2 vmcore-copy --verify "$f"
done
poweroff
"""


def mtime(g, name):
    try:
        return os.stat(os.path.join(g.ctl, name)).st_mtime
    except OSError:
        return None


def span(g, crash_name, back_name):
    a, b = mtime(g, crash_name), mtime(g, back_name)
    return None if a is None or b is None else round(b - a, 1)


def next_boot(g):
    """The boot number the guest's driver runs next (the counter is on its disk)."""
    seen = [int(m.group(1)) for m in (re.match(r"^boot(\d+)\.start$", f)
                                      for f in os.listdir(g.ctl)) if m]
    return max(seen, default=0) + 1


def record_of(g, n):
    try:
        return json.loads(g.read("record.%d" % n) or "null")
    except ValueError:
        return None


def ours_first(g):
    g.script(1, OURS_SETUP % {"n": 1})
    g.script(2, CHECK % {"c": 2})
    g.boot("crashkernel=256M", memory=MEMORY, timeout=1800)
    rc, out = g.recorded("enable")
    if rc != 0:
        raise SystemExit("enable --now kdump failed:\n%s" % out)
    est = g.recorded("estimate")[1] or ""
    m = re.search(r"Recommended crashkernel:\s*(\d+)M", est)
    rec = record_of(g, 2) or {}
    return {"estimate_text": est, "recommended_mib": int(m.group(1)) if m else None,
            "capture_image_bytes": int((g.read("capture-image-size") or "0").split()[0]),
            "panic_to_back_s": span(g, "crash.1", "back.2"),
            "enable_s": _tdiff(g, "enable", "enabled"),
            "record": rec, "verified": g.recorded("verify.2")[0] == 0}


def _tdiff(g, a, b):
    ta, tb = g.read("t." + a), g.read("t." + b)
    return round(float(tb) - float(ta), 1) if ta and tb else None


def trial(g, size_mib):
    """One QEMU run at crashkernel=<size>M; (passed, facts)."""
    n = next_boot(g)
    g.script(n, TRIAL % {"n": n})
    g.script(n + 1, CHECK % {"c": n + 1})
    started = time.monotonic()
    try:
        g.boot("crashkernel=%dM" % size_mib, memory=MEMORY, timeout=TRIAL_TIMEOUT)
        killed = False
    except GuestFailure:
        killed = True
    rec = record_of(g, n + 1) or {}
    loaded = g.read("trial.%d" % n) is None
    passed = (not killed and loaded and rec.get("status") == "success"
              and g.recorded("verify.%d" % (n + 1))[0] == 0)
    facts = {"size_mib": size_mib, "passed": passed, "loaded": loaded, "killed": killed,
             "reserved": int((g.read("crash_size.%d" % n) or "0").strip() or 0),
             "panic_to_back_s": span(g, "crash.%d" % n, "back.%d" % (n + 1)),
             "wall_s": round(time.monotonic() - started, 1),
             "status": rec.get("status"), "message": rec.get("message")}
    print("  crashkernel=%dM: %s (%s)" % (size_mib, "saved" if passed else "FAILED",
          facts["message"] or ("not loaded" if not loaded else
                               "killed after %ds" % TRIAL_TIMEOUT if killed else "no record")),
          flush=True)
    return passed, facts


def bisect(g, lo, hi, step):
    """Smallest size in (lo, hi] that passes, assuming hi passes and lo fails."""
    trials = []
    while hi - lo > step:
        mid = (lo + hi) // 2
        mid -= mid % step
        if mid <= lo:
            mid = lo + step
        ok, facts = trial(g, mid)
        trials.append(facts)
        if ok:
            hi = mid
        else:
            lo = mid
    return hi, trials


def debian_peer(workdir):
    g = SystemdGuest(os.path.join(workdir, "debian"), install=False)
    g.script(1, DEBIAN_SETUP)
    g.script(2, DEBIAN_CHECK)
    g.boot("crashkernel=256M", memory=MEMORY, timeout=2400)
    files = (g.read("debian-files.txt") or "").split("\n")
    return {"installed": g.recorded("apt-install")[0] == 0,
            "load": g.recorded("load"), "loaded": (g.read("loaded") or "").strip() == "1",
            "panic_to_back_s": span(g, "crash.1", "back.2"),
            "files": [f for f in files if f],
            "verified": g.recorded("verify.2")[0] == 0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdir", nargs="?")
    ap.add_argument("--lo", type=int, default=48, help="a size (MiB) assumed to fail")
    ap.add_argument("--hi", type=int, default=256, help="a size (MiB) known to pass")
    ap.add_argument("--step", type=int, default=4, help="resolution (MiB)")
    ap.add_argument("--skip-debian", action="store_true")
    ap.add_argument("--only-debian", action="store_true",
                    help="the peer's run alone (its figures, no bisection)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="kexec-py-footprint.")
    print("work directory: %s" % workdir, flush=True)
    if args.only_debian:
        deb = debian_peer(workdir)
        print(json.dumps({k: v for k, v in deb.items()}, indent=2, default=str))
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump({"debian": deb}, f, indent=2, default=str)
        return 0
    g = SystemdGuest(os.path.join(workdir, "ours"))
    first = ours_first(g)
    print("ours at 256M: panic -> back %.1f s, estimate %sM, capture image %d bytes"
          % (first["panic_to_back_s"] or -1, first["recommended_mib"],
             first["capture_image_bytes"]), flush=True)
    lo_ok, lo_facts = trial(g, args.lo)
    trials = [lo_facts]
    if lo_ok:
        minimum = args.lo
    else:
        minimum, more = bisect(g, args.lo, args.hi, args.step)
        trials += more
    result = {"memory": MEMORY, "ours": first, "minimum_mib": minimum, "trials": trials}
    if not args.skip_debian:
        result["debian"] = debian_peer(workdir)
    est = first["recommended_mib"]
    print()
    print("| | ours (kexec-py) | Debian kdump-tools |")
    print("|---|---|---|")
    deb = result.get("debian") or {}
    print("| panic -> dump saved -> first kernel's driver (s) | %s | %s |"
          % (first["panic_to_back_s"], deb.get("panic_to_back_s", "-")))
    print("| smallest crashkernel= that saves a complete dump | %dM | - |" % minimum)
    print("| `kdumpctl estimate` recommended | %sM (%s above the minimum) | - |"
          % (est, "%+.0f%%" % (100.0 * (est - minimum) / minimum) if est else "?"))
    if deb.get("panic_to_back_s") and first["panic_to_back_s"]:
        print("\nratio ours / Debian: %.2f" % (first["panic_to_back_s"] / deb["panic_to_back_s"]))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
