"""kexec's argparse-free fast path (kexec.fast_parse) against argparse (kexec_args): its
tables are the parser's options, its defaults the parser's, and on thousands of
generated command lines it either gives exactly argparse's result or steps aside (None),
so that argparse parses and reports them; it steps aside wherever argparse would fail."""
import contextlib
import io
import random

import pytest

from kexec_py.cli import kexec, kexec_args


def argparse_result(argv):
    """vars() of argparse's namespace, or None when argparse exits (error, help)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return vars(kexec_args.build_parser().parse_args(argv))
    except SystemExit:
        return None


def test_defaults_are_argparses():
    assert kexec.DEFAULTS == argparse_result([])


def test_the_option_table_is_the_parsers():
    want = {}
    for act in kexec_args.build_parser()._actions:
        name = type(act).__name__
        if name in ("_HelpAction", "_VersionAction") or not act.option_strings:
            continue
        kind = {"_StoreTrueAction": True, "_StoreAction": "value",
                "_AppendAction": "append"}.get(name) or "const:%s" % act.const
        for s in act.option_strings:
            want[s] = (act.dest, kind)
    assert kexec.OPTIONS == want


WORDS = list(kexec.OPTIONS) + [
    "vmlinuz", "/boot/vmlinuz-6.1", "initrd.img", "root=/dev/vda1 ro", "", "-", "--",
    "-1", "-h", "--help", "-v", "--version", "--dry", "--init", "-ls", "-sl", "-lp",
    "--initrd=/boot/i", "--initrd=", "--append=a=b c", "--command-line=x", "--root=/tmp",
    "--load=1", "-s=1", "--entry=0", "--ramdisk=r", "--bogus", "-Z", "--reuse", "x=y"]


@pytest.mark.parametrize("seed", range(8))
def test_generated_command_lines_agree_with_argparse(seed):
    rng = random.Random(seed)
    taken = 0
    for _ in range(600):
        argv = [rng.choice(WORDS) for _ in range(rng.randint(0, 6))]
        fast = kexec.fast_parse(argv)
        slow = argparse_result(argv)
        if fast is None:
            continue
        taken += 1
        assert slow is not None, ("argparse refuses what the fast path took", argv)
        assert vars(fast) == slow, argv
    assert taken > 50, "the generator hardly exercises the fast path"


@pytest.mark.parametrize("argv", [
    ["-s", "-l", "K", "--initrd", "I", "--dry-run"],
    ["-p", "K", "--initrd=I", "--initrd", "J", "--append=root=/dev/vda ro", "-c"],
    ["-l", "--default", "--reuse-cmdline", "--command-line", "quiet", "--root", "/r"],
    ["-e"], ["-u", "-p"], ["-S", "-l"], ["--list-entries", "--json", "--root=/x"],
    ["-f", "K", "-x", "-y", "-i", "--console-serial", "--reuse-video-type", "-d"],
])
def test_common_command_lines_take_the_fast_path(argv):
    fast = kexec.fast_parse(argv)
    assert fast is not None and vars(fast) == argparse_result(argv)


@pytest.mark.parametrize("argv", [
    ["--help"], ["-v"], ["-ls", "K"], ["--dry", "-l", "K"], ["-l", "K", "L"], ["--", "K"],
    ["--initrd"], ["--initrd", "-l"], ["--load=yes"], ["-l", ""], ["--append", "-1"]])
def test_unusual_command_lines_go_to_argparse(argv):
    assert kexec.fast_parse(argv) is None


def test_a_plain_load_does_not_import_argparse():
    import subprocess
    import sys
    code = ("import sys; from kexec_py.cli import kexec; "
            "kexec.parse_args(['-s', '-l', 'K', '--initrd', 'I', '--dry-run']); "
            "print('argparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout.strip()
    assert out == "False", "argparse was imported for a plain command line"


def test_the_iomem_line_parser_is_the_regular_expression_it_replaced():
    """state._iomem_line parses /proc/iomem without `re` (start-up); on random lines it
    agrees with the expression it replaced."""
    import re
    from kexec_py.load import state
    rx = re.compile(r"^(\s*)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$")
    rng = random.Random(5)
    alpha = " \t-:0123456789abcdefxABG_\r"
    for _ in range(30000):
        line = "".join(rng.choice(alpha) for _ in range(rng.randint(0, 14)))
        if rng.random() < 0.5:
            line = " " * rng.randint(0, 4) + "%x-%x : %s" % (
                rng.randint(0, 1 << 40), rng.randint(0, 1 << 40), line)
        m = rx.match(line)
        want = (len(m.group(1)), int(m.group(2), 16), int(m.group(3), 16), m.group(4)) \
            if m else None
        assert state._iomem_line(line) == want, line
