"""kexec_py.cmdline: the kernel's quoting rules, edits by key, byte-identical print back."""
import pytest

from kexec_py.cmdline import CommandLine, Param, for_reuse, quote_param, split


@pytest.mark.parametrize("text,words", [
    ("ro quiet", ["ro", "quiet"]),
    ('key="a b c" x', ['key="a b c"', "x"]),
    ('"key=a b" x', ['"key=a b"', "x"]),
    ("  ro\t\troot=/dev/sda1 \n quiet  ", ["ro", "root=/dev/sda1", "quiet"]),
    ('a="x  y"  b', ['a="x  y"', "b"]),
    ('dyndbg="file a.c +p; file b.c +p"', ['dyndbg="file a.c +p; file b.c +p"']),
    ("", []),
    ("   ", []),
])
def test_split_follows_kernel_quoting(text, words):
    assert split(text) == words


def test_quoted_value_is_one_param_with_key_and_unquoted_value():
    c = CommandLine('ro kpy.test="a b c" loglevel=4')
    assert [p.key for p in c.params] == ["ro", "kpy.test", "loglevel"]
    assert c.get("kpy.test") == "a b c"
    assert c.params[1].raw == 'kpy.test="a b c"'


def test_whole_param_quoted():
    c = CommandLine('"key=a b" quiet')
    assert c.get("key") == "a b"
    assert "quiet" in c
    assert c.params[0] == Param('"key=a b"', "key", "a b")


def test_flag_has_no_value_and_empty_value_is_empty_string():
    c = CommandLine("quiet root= ")
    assert c.get("quiet") is None and "quiet" in c
    assert c.get("root") == ""
    assert c.get("missing", "dflt") == "dflt"


def test_last_occurrence_wins_and_get_all():
    c = CommandLine("console=tty0 console=ttyS0,115200")
    assert c.get("console") == "ttyS0,115200"
    assert c.get_all("console") == ["tty0", "ttyS0,115200"]


def test_init_args_after_double_dash_are_not_kernel_params():
    c = CommandLine("ro quiet -- single emergency=1")
    assert [p.key for p in c.params] == ["ro", "quiet"]
    assert c.init_args == ("single", "emergency=1")
    assert "single" not in c
    assert CommandLine("ro quiet").init_args is None


@pytest.mark.parametrize("text", [
    "ro  root=/dev/sda1   quiet",
    "  leading and trailing  ",
    'a="x  y"\tb\t\tc -- init  args',
    "BOOT_IMAGE=/vmlinuz-6.1 root=UUID=1 ro",
    "",
])
def test_untouched_line_prints_back_byte_identical(text):
    c = CommandLine(text)
    assert str(c) == text
    assert str(c.copy()) == text


def test_remove_nothing_keeps_original_text():
    text = "ro   quiet"
    c = CommandLine(text)
    assert c.remove("absent") == 0
    assert str(c) == text


def test_remove_by_key_removes_every_occurrence():
    c = CommandLine("ro crashkernel=256M quiet crashkernel=512M,high rhgb")
    assert c.remove("crashkernel") == 2
    assert str(c) == "ro quiet rhgb"


def test_remove_several_keys_and_flags():
    c = CommandLine('ro quiet rhgb splash="a b"')
    assert c.remove("quiet", "splash") == 2
    assert str(c) == "ro rhgb"


def test_remove_stops_at_double_dash():
    c = CommandLine("ro quiet -- quiet single")
    assert c.remove("quiet") == 1
    assert str(c) == "ro -- quiet single"


def test_set_replaces_first_in_place_and_drops_the_rest():
    c = CommandLine("a=1 console=tty0 b console=ttyS0 c")
    c.set("console", "ttyS1,9600")
    assert str(c) == "a=1 console=ttyS1,9600 b c"


def test_set_appends_when_absent_before_init_args():
    c = CommandLine("ro -- single")
    c.set("kpy.x", "a b")
    assert str(c) == 'ro kpy.x="a b" -- single'
    c.set("nomodeset")
    assert str(c) == 'ro kpy.x="a b" nomodeset -- single'


def test_append_parses_with_same_rules_and_goes_before_init_args():
    c = CommandLine("ro -- single")
    c.append('x="1 2" y')
    assert str(c) == 'ro x="1 2" y -- single'
    assert c.get("x") == "1 2"


def test_append_with_init_args_merges_them():
    c = CommandLine("ro -- a")
    c.append("quiet -- b")
    assert str(c) == "ro quiet -- a b"
    d = CommandLine("ro")
    d.append("quiet -- init=1")
    assert str(d) == "ro quiet -- init=1"
    assert d.init_args == ("init=1",)


def test_append_empty_text_leaves_line_untouched():
    c = CommandLine("ro   quiet")
    c.append("   ")
    assert str(c) == "ro   quiet"


@pytest.mark.parametrize("key,value,expected", [
    ("quiet", None, "quiet"),
    ("root", "/dev/sda1", "root=/dev/sda1"),
    ("x", "a b", 'x="a b"'),
    ("x", "a\tb", 'x="a\tb"'),
    ("x", "", 'x=""'),
])
def test_quote_param(key, value, expected):
    assert quote_param(key, value) == expected
    assert CommandLine(expected).get(key, "absent") == value


def test_quote_param_refuses_double_quote():
    with pytest.raises(ValueError):
        quote_param("x", 'a"b')


def test_equality_compares_text():
    assert CommandLine("a b") == CommandLine("a b")
    assert CommandLine("a b") != CommandLine("a  b")


def test_for_reuse_drops_boot_image_only():
    c = for_reuse("BOOT_IMAGE=/vmlinuz-6.1 root=/dev/vda1 ro crashkernel=256M quiet\n")
    assert str(c) == "root=/dev/vda1 ro crashkernel=256M quiet"


def test_for_reuse_with_panic_drops_crashkernel_too():
    c = for_reuse("BOOT_IMAGE=(hd0,gpt2)/vmlinuz ro crashkernel=1G-4G:192M,4G-:256M "
                  "crashkernel=128M,low quiet\n", panic=True)
    assert str(c) == "ro quiet"


def test_for_reuse_keeps_quotes_and_untouched_spacing():
    assert str(for_reuse('  ro   x="a  b"  \n')) == 'ro   x="a  b"'
    assert str(for_reuse('BOOT_IMAGE=/v ro x="a  b"')) == 'ro x="a  b"'


def test_for_reuse_keeps_init_args():
    assert str(for_reuse("BOOT_IMAGE=/v ro -- single", panic=True)) == "ro -- single"


def test_an_unterminated_quote_does_not_swallow_what_is_added():
    """Found by fuzzing: a line ending in an open quote (the kernel runs that parameter to
    the end of the line) swallowed a parameter set after it; it is closed when written."""
    c = CommandLine('ro "quiet')
    c.set("crashkernel", "256M")
    assert str(c) == 'ro "quiet" crashkernel=256M'
    again = CommandLine(str(c))
    assert again.get("crashkernel") == "256M" and [p.key for p in again.params] == \
        ["ro", "quiet", "crashkernel"]
    assert str(CommandLine('ro "quiet')) == 'ro "quiet'     # untouched lines stay as read
