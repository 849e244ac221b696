"""crash.describe, the elfcorehdr lines of kexec -p --dry-run, reads back every program
header build_elf_core_header writes (found by fuzzing: it read e_shentsize as the count
and printed none)."""
from kexec_py.load import crash
from kexec_py.load.memory import MemRange


def test_every_program_header_is_described():
    notes = [crash.Note(0x7fe00000 + 0x1000 * i, 0x400, "cpu%d" % i) for i in range(2)]
    ram = [MemRange(0x100000, 0x7fffffff), MemRange(0x100000000, 0x17fffffff)]
    hdr = crash.build_elf_core_header(notes, (0xffffffff81000000, 32 << 20, 0x1000000), ram,
                                      0xffff888000000000)
    lines = crash.describe(hdr)
    assert len(lines) == 5
    assert lines[0] == "elfcorehdr phdr[0]: PT_NOTE paddr=0x7fe00000 vaddr=0x0 size=0x400"
    assert lines[2] == ("elfcorehdr phdr[2]: PT_LOAD paddr=0x1000000 vaddr=0xffffffff81000000 "
                        "size=0x2000000")
    assert lines[4] == ("elfcorehdr phdr[4]: PT_LOAD paddr=0x100000000 "
                        "vaddr=0xffff888100000000 size=0x80000000")
