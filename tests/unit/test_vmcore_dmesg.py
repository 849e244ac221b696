"""vmcore-dmesg on synthetic dumps: the 3.5-5.9 record format (log_first_idx / log_buf,
with a wrap marker) and the 5.10+ lockless ring (committed, finalized, reserved, reusable,
stale and data-less descriptors; a text block that wraps). The expected text is built
here from the records; Debian's /usr/sbin/vmcore-dmesg must print the same for the ELF
vmcore; ours must print it for the ELF vmcore and for our kdump-compressed copy (which
kexec-tools cannot read), through kexec_py.vmcore.dmesg() and the executable."""
import os
import subprocess

import pytest

from kexec_py import vmcore
from tests import vmcore_synth
from tests.vmcore_synth import Synth
from tests.vmcore_testlib import run

PEER = "/usr/sbin/vmcore-dmesg"
TEXTS = [b"Linux version 5.4.0-synthetic", b"tab\there and a bell \x07 del \x7f",
         b"high bytes \xc3\xa9\xff and NUL \x00 end", b"multi\nline\rrecord\x0b\x0c",
         b"", b"x" * 300]


def expect_line(ts, text):
    out = "[%5d.%06d] " % (ts // 10**9, ts % 10**9 // 1000)
    for c in text:
        printable = 0x20 <= c < 0x7f or c in b" \t\n\v\f\r"
        out += chr(c) if printable else "\\x%02x" % c
    return out + "\n"


def structured_records(n=40):
    return [(1234567890 * i + 999, TEXTS[i % len(TEXTS)] + b" #%d" % i,
             b"SUBSYSTEM=pci" if i % 3 else b"") for i in range(n)]


def executable():
    return vmcore.executable("vmcore-dmesg")


def make(tmp_path, build):
    s = Synth.standard()
    build(s)
    elf = s.write(str(tmp_path / "vmcore"))
    kd = str(tmp_path / "dump.kdump")
    run("-l", "-d", "1", "--message-level", "0", elf, kd, check=0)
    return elf, kd


def ours(path):
    proc = subprocess.run([executable(), path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("ascii")
    assert vmcore.dmesg(path) == text
    return text


def peer(path):
    assert os.access(PEER, os.X_OK), "kexec-tools' vmcore-dmesg is missing"
    proc = subprocess.run([PEER, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode("ascii")


def test_structured_log_with_wrap(tmp_path):
    recs = structured_records()
    elf, kd = make(tmp_path, lambda s: vmcore_synth.structured_log(s, recs))
    want, idx = "", 5000
    for ts, text, dict_ in recs:
        size = -(-(16 + len(text) + len(dict_)) // 8) * 8
        if idx + size + 16 > 8192:
            want += expect_line(0, b"")      # the wrap marker is printed, as kexec-tools does
            idx = 0
        want += expect_line(ts, text)
        idx += size
    assert "[    0.000000] \n" in want and want.count("\n") > len(recs)
    assert peer(elf) == want
    assert ours(elf) == want
    assert ours(kd) == want


LOCKLESS = [(10**9 * i + 7654321, TEXTS[i % len(TEXTS)] + b" <%d>" % i,
             (1, 2, 2, 0, 2, 3, "stale", "dataless", 2, 1)[i % 10]) for i in range(14)]


def lockless_expected():
    return "".join(expect_line(ts, b"" if st == "dataless" else text)
                   for ts, text, st in LOCKLESS if st in (1, 2, "dataless"))


def test_lockless_ring(tmp_path):
    elf, kd = make(tmp_path, lambda s: vmcore_synth.lockless_log(s, LOCKLESS))
    want = lockless_expected()
    assert sum(st in (1, 2, "dataless") for _, _, st in LOCKLESS) == 10 and "<6>" not in want
    assert peer(elf) == want
    assert ours(elf) == want
    assert ours(kd) == want


def test_flattened_stream_is_read_too(tmp_path):
    elf, _ = make(tmp_path, lambda s: vmcore_synth.lockless_log(s, LOCKLESS))
    stream = tmp_path / "stream"
    with open(stream, "wb") as f:
        run("-F", "-z", "-d", "1", "--message-level", "0", elf, stdout=f, check=0)
    assert ours(str(stream)) == lockless_expected()


def test_lockless_block_that_wraps(tmp_path):
    recs = [(i * 1000, b"w" * 90 + b"%d" % i, 2) for i in range(8)]   # 104-byte blocks
    elf, kd = make(tmp_path, lambda s: vmcore_synth.lockless_log(s, recs, size_bits=10,
                                                                 first_lpos=900))
    want = "".join(expect_line(ts, t) for ts, t, _ in recs)
    assert peer(elf) == want
    assert ours(kd) == want


@pytest.mark.parametrize("length", [1000, 4096 + 1500])
def test_plain_ring_before_3_5(tmp_path, length):
    """The pre-3.5 character ring: all of it before it fills, the last log_buf_len
    characters in order once it has wrapped."""
    text = b"".join(b"<6>plain line %04d\n" % i for i in range(length // 19 + 1))[:length]
    elf, kd = make(tmp_path, lambda s: vmcore_synth.plain_log(s, text))
    want = text[-4096:].decode("ascii")
    assert peer(elf) == want
    assert ours(elf) == want
    assert ours(kd) == want


def test_missing_key_is_named(tmp_path):
    def build(s):
        vmcore_synth.structured_log(s, structured_records(3))
        s.extra_info.remove("OFFSET(printk_log.text_len)=10")
    elf, _ = make(tmp_path, build)
    with pytest.raises(vmcore.VmcoreError, match=r"OFFSET\(log.text_len\)"):
        vmcore.dmesg(elf)
    proc = subprocess.run([executable(), elf], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"lacks OFFSET(log.text_len)" in proc.stderr
    assert proc.stdout == b""


def test_not_a_dump(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"hello" * 100)
    proc = subprocess.run([executable(), str(bad)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"not a dump" in proc.stderr
    proc = subprocess.run([executable()], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"usage" in proc.stderr


def test_console_script_runs_the_executable(tmp_path):
    elf, _ = make(tmp_path, lambda s: vmcore_synth.lockless_log(s, LOCKLESS))
    proc = subprocess.run([os.path.join(os.path.dirname(os.path.abspath(
        __import__("sys").executable)), "vmcore-dmesg"), elf], stdout=subprocess.PIPE)
    assert proc.returncode == 0 and proc.stdout.decode() == lockless_expected()
