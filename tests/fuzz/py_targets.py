"""Coverage-guided fuzzing of kexec-py's Python parsers with atheris (issue 11).

    python -m tests.fuzz.py_targets TARGET [libFuzzer options] [CORPUS_DIR...]

Each target takes the fuzzer's bytes and drives one parser the way the CLIs do. A parser
may refuse its input only with KexecError (the one-line message a user sees, exit 1);
any other exception is a finding. Where a round trip exists it is checked too: what the
cpio writer writes, the reader reads back; what the ELF core header builder writes, the
describer reads back; a command line that was edited parses to the edited parameters.
tests/fuzz/run.py runs these next to the C targets and prints them in the same table.
"""
import atexit
import contextlib
import io
import os
import shutil
import struct
import sys
import tempfile

import atheris

# KPY_FUZZ_PLAIN=1: import without atheris' bytecode instrumentation (replaying a finding
# to tell a parser's defect from an instrumentation artefact)
with (contextlib.nullcontext() if os.environ.get("KPY_FUZZ_PLAIN")
      else atheris.instrument_imports()):
    from kexec_py import cmdline as C
    from kexec_py.boot import bls, grub2, grub_legacy, grubenv
    from kexec_py.cpio import CpioWriter, iter_members
    from kexec_py.errors import KexecError
    from kexec_py.kdump import config, crashkernel, sysconfig
    from kexec_py.load import bzimage, crash, image
    from kexec_py.load.memory import MemRange
    from kexec_py.vmcore import vmcoreinfo

SCRATCH = tempfile.mkdtemp(prefix="kexec-py-fuzz-", dir="/dev/shm"
                           if os.path.isdir("/dev/shm") else None)
atexit.register(shutil.rmtree, SCRATCH, True)


def _text(data):
    return data.decode("utf-8", "replace")


def t_bzimage(data):
    """The setup header and everything kexec derives from it; open_kernel on the file
    (format detection, decompression of compressed kernels, size checks)."""
    if bzimage.is_bzimage(data):
        hdr = bzimage.parse_setup_header(data)
        bzimage.kernel_version_string(data, hdr)
        bzimage.kexec_load_problem(hdr)
        bzimage.kernel_memsz(hdr, len(bzimage.kernel_payload(data, hdr)))
        if len(data) >= bzimage.header_end(data):
            bp, _ = bzimage.build_boot_params(data, cmd_line_ptr=0x1000)
            assert len(bp) == bzimage.BOOT_PARAMS_SIZE
    image.describe_unknown(data[:64])
    path = os.path.join(SCRATCH, "kernel")
    with open(path, "wb") as f:
        f.write(data)
    try:
        k = image.open_kernel(path)
    except KexecError:
        return
    close = getattr(k, "close", None)
    if close:
        close()


def t_bls(data):
    try:
        fields = bls.parse_entry_text(_text(data))
    except KexecError:
        return
    assert "linux" in fields or "efi" in fields or "uki" in fields


def _root_with(path, data):
    """A scratch root holding one boot loader file (the readers take a root prefix)."""
    full = os.path.join(SCRATCH, "root", path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)
    return os.path.join(SCRATCH, "root")


def t_grub2(data):
    """grub.cfg as kexec --list-entries reads it: parse, flatten submenus, expand
    variables from a grubenv, resolve paths, pick the default."""
    root = _root_with("/boot/grub2/grub.cfg", data)
    try:
        entries, spec, _ = grub2.read_entries(root, {"saved_entry": "1>0", "extra": "x"})
    except KexecError:
        return
    i = grub2.match_default(entries, spec)
    assert i is None or 0 <= i < len(entries)


def t_grub_legacy(data):
    root = _root_with("/boot/grub/grub.conf", data)
    try:
        grub_legacy.read_entries(root)
    except KexecError:
        return


def t_grubenv(data):
    text = _text(data)
    env = grubenv.parse_grubenv(text)
    for value in list(env.values())[:8]:
        grubenv.expand_vars(value, env)
    grubenv.expand_vars(text, env)


def t_cmdline(data):
    """Parse, edit, print and parse again: the edit survives, the rest is kept."""
    text = _text(data)
    c = C.CommandLine(text)
    before = [p for p in c.params if p.key not in ("fuzzkey", "crashkernel")]
    c.remove("crashkernel")
    c.set("fuzzkey", "a b")
    again = C.CommandLine(str(c))
    assert again.get_all("fuzzkey")[-1] == "a b", (text, str(c))
    assert [p.key for p in again.params if p.key not in ("fuzzkey", "crashkernel")] == \
        [p.key for p in before], (text, str(c))
    C.for_reuse(text)
    C.for_reuse(text, panic=True)
    try:
        crashkernel.choose(crashkernel.from_cmdline(text))
    except KexecError:
        pass


def t_crashkernel(data):
    text = _text(data)
    try:
        ck = crashkernel.parse(text)
    except KexecError:
        return
    for ram in (0, 1 << 30, 64 << 30, 1 << 50):
        size_for = getattr(ck, "size_for", None)
        if size_for:
            size_for(ram)
    try:
        crashkernel.add_to_sizes(text, 64 << 20)
    except KexecError:
        pass


def t_kdump_conf(data):
    try:
        config.parse(_text(data), root=SCRATCH)
    except KexecError:
        return


def t_sysconfig(data):
    try:
        sysconfig.parse(_text(data))
    except KexecError:
        return


def t_vmcoreinfo(data):
    info = vmcoreinfo.parse(_text(data))
    for key in list(info)[:16]:
        name = key.partition("(")[2].rstrip(")")
        for fn in (vmcoreinfo.symbol, vmcoreinfo.number, vmcoreinfo.size):
            try:
                fn(info, name)
            except ValueError:
                pass     # a value that is not a number: callers treat it as absent


def t_cpio(data):
    """Writer round trip: members made from the input come back from the reader with the
    same names and bytes; then the input itself is read as an initramfs."""
    fdp = atheris.FuzzedDataProvider(data)
    members = {}
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = "".join(c for c in fdp.ConsumeUnicodeNoSurrogates(12)
                       if c not in "/\0" and c.isprintable()) or "x"
        members["d/" + name] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 600))
    buf = io.BytesIO()
    w = CpioWriter(buf, mtime=0)
    w.mkdir("d")
    for name, blob in members.items():
        w.add_file(name, blob)
    w.close()
    path = os.path.join(SCRATCH, "initrd")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    got = {m.name: m.data for m in iter_members(path, want=lambda n: True)
           if m.name.startswith("d/")}
    assert got == members, (members, got)
    with open(path, "wb") as f:
        f.write(fdp.ConsumeBytes(fdp.remaining_bytes()))
    try:
        for _ in iter_members(path, want=lambda n: True):
            pass
    except KexecError:
        pass


def t_elfcore(data):
    """ELF core header builder: what it writes for any notes and RAM ranges reads back."""
    fdp = atheris.FuzzedDataProvider(data)
    notes = [crash.Note(fdp.ConsumeIntInRange(0, (1 << 52) - 1), fdp.ConsumeIntInRange(0, 1 << 16),
                        "cpu")
             for _ in range(fdp.ConsumeIntInRange(0, 8))]
    ram = []
    for _ in range(fdp.ConsumeIntInRange(0, 64)):
        start = fdp.ConsumeIntInRange(0, (1 << 46) - 1) & ~0xfff
        ram.append(MemRange(start, start + fdp.ConsumeIntInRange(1, 1 << 36) * 4096 - 1))
    text = (0xffffffff81000000, 32 << 20, 0x1000000) if fdp.ConsumeBool() else None
    hdr = crash.build_elf_core_header(notes, text, ram, 0xffff888000000000)
    lines = crash.describe(hdr)
    assert len(lines) == len(notes) + len(ram) + (text is not None)
    assert struct.unpack_from("<H", hdr, 56)[0] == len(lines)
    for line, r in zip(lines[len(lines) - len(ram):], ram):
        assert "paddr=%#x" % r.start in line and "size=%#x" % r.size in line, (line, r)


TARGETS = {name[2:].replace("_", "-"): fn for name, fn in globals().items()
           if name.startswith("t_")}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit("usage: python -m tests.fuzz.py_targets {%s} [libFuzzer options]"
                         % ",".join(TARGETS))
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
