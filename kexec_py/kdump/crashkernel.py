"""crashkernel=: parse it, see what the running kernel reserved, say why not, estimate.

The kernel's syntax (kernel/crash_reserve.c, admin-guide/kdump):

    crashkernel=size[@offset]
    crashkernel=start-[end]:size[,start-[end]:size...][@offset]   start <= RAM < end
    crashkernel=size,high    (above 4G; a low part is reserved as well)
    crashkernel=size,low     (sizes that low part; alone it reserves nothing)
    crashkernel=size,cma     (Linux 6.16+: an extra CMA area)
    crashkernel=auto         (RHEL 6/7/8 kernels only; upstream never had it and RHEL 9's
                              kernel rejects it)

Sizes take K, M, G, T, P or E (either case). For range expressions the kernel rounds the
RAM total up to 128M before the lookup (kdumpctl does the same). Of several crashkernel=
on one command line, the last one without a suffix wins; only when there is none does
the kernel use the last `,high` together with the last `,low`.

Everything that reads the machine takes a root prefix.
"""
import os
import re
import struct
from dataclasses import dataclass

from .. import cpio, rootfs
from ..cmdline import CommandLine
from ..errors import FormatError, KexecError
from ..load import bzimage
from ..load.state import iomem_ranges

MiB = 1 << 20
GiB = 1 << 30
TABLE_ALIGN = 128 * MiB
_UNITS = "KMGTPE"

# RHEL's defaults for x86_64 (and s390x): kdump-utils since March 2025 (RHEL 10, Fedora)
DEFAULT_TABLE = "2G-64G:256M,64G-:512M"
# RHEL 8.5+ and RHEL 9 (kexec-tools), and RHEL 6/7 hosts (their kernels accept ranges too)
DEFAULT_TABLE_RHEL9 = "1G-4G:192M,4G-64G:256M,64G-:512M"
# RHEL 5's 2.6.18 kernel predates the range syntax; its knowledge base used this
DEFAULT_RHEL5 = "128M@16M"
SME_SEV_EXTRA = 64 * MiB
RUNTIME_RESERVATION = 16 * MiB
LOAD_EXTRA = 1 * MiB            # purgatory, boot parameters, ELF core header
ESTIMATE_ROUND = 8 * MiB
PAGE = 4096
LUKS_OVERHEAD = 20 * MiB
LARGE_MODULE = 1 * MiB
HOSTONLY_MODULES = "usr/lib/dracut/hostonly-kernel-modules.txt"
_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst", ".ko.bz2")


class CrashkernelError(KexecError):
    exit_code = 1


# sizes

def parse_size(text, what="size"):
    """Bytes from a kernel memory size as memparse() reads it: decimal, 0x hex or
    0-prefixed octal, with an optional K..E suffix ('09M' is refused: the kernel would
    stop at the 9 and read 0)."""
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([KkMmGgTtPpEe]?)", text)
    if not m:
        raise CrashkernelError("%r is not a memory %s (expected e.g. 256M, 2G or 0x1000000)"
                               % (text, what))
    digits = m.group(1)
    number = int(digits, 16 if digits[1:2] in ("x", "X") else 8 if digits[0] == "0" else 10)
    unit = m.group(2).upper()
    return number << (10 * (_UNITS.index(unit) + 1)) if unit else number


def format_size(n):
    """The shortest exact form: 268435456 -> '256M', 1 << 30 -> '1G', 1000 -> '1000'."""
    unit = ""
    for u in _UNITS:
        if n == 0 or n % 1024:
            break
        n //= 1024
        unit = u
    return "%d%s" % (n, unit)


def _mb(n):
    return "%dM" % (n // MiB)


# the value itself

@dataclass(frozen=True)
class Range:
    start: int
    end: int      # exclusive; None when open-ended
    size: int

    def holds(self, ram):
        return ram >= self.start and (self.end is None or ram < self.end)

    def __str__(self):
        end = "" if self.end is None else format_size(self.end)
        return "%s-%s" % (format_size(self.start), end)


@dataclass(frozen=True)
class Crashkernel:
    """One crashkernel= value."""

    text: str
    kind: str               # "size", "ranges", "high", "low", "cma" or "auto"
    size: int = 0           # for size, high, low, cma
    offset: int = None      # @offset, when given
    ranges: tuple = ()      # Range, in the order written

    @property
    def suffixed(self):
        return self.kind in ("high", "low", "cma")

    def size_for(self, ram_bytes):
        """(size, offset) the kernel reserves on a machine with this much RAM.

        None when no range holds the RAM, and for `auto` (the RHEL 6/7/8 kernel picks
        that size itself). The RAM is rounded up to 128M first, as the kernel does.
        """
        if self.kind == "auto":
            return None
        if self.kind != "ranges":
            return self.size, self.offset
        ram = ram_for_table(ram_bytes)
        for r in self.ranges:
            if r.holds(ram):
                return r.size, self.offset
        return None

    def __str__(self):
        return self.text


def parse(value):
    """Parse a crashkernel= value; raises CrashkernelError saying what is wrong."""
    text = value
    value = (value or "").strip()
    if not value:
        raise CrashkernelError("crashkernel= has no value (expected e.g. crashkernel=256M or "
                               "crashkernel=%s)" % DEFAULT_TABLE)
    if value == "auto":
        return Crashkernel(text, "auto")
    try:
        for suffix in ("high", "low", "cma"):
            if value.endswith("," + suffix):
                if ":" in value or "@" in value:
                    raise CrashkernelError("',%s' takes a plain size, not ranges or @offset"
                                           % suffix)
                size = parse_size(value[:-len(suffix) - 1])
                return Crashkernel(text, suffix, size=size)
        body, at, off = value.partition("@")
        offset = parse_size(off, "offset") if at else None
        if ":" not in body and "-" in body.lstrip("-"):
            raise CrashkernelError("%r is not start-[end]:size" % body)
        if ":" not in body:
            return Crashkernel(text, "size", size=parse_size(body), offset=offset)
        return Crashkernel(text, "ranges", offset=offset, ranges=_parse_ranges(body))
    except CrashkernelError as e:
        raise CrashkernelError("invalid crashkernel=%s: %s" % (value, e)) from None


def _parse_ranges(body):
    ranges = []
    for item in body.split(","):
        span, colon, size = item.partition(":")
        if not colon or "-" not in span:
            raise CrashkernelError("%r is not start-[end]:size" % item)
        start_text, _, end_text = span.partition("-")
        start = parse_size(start_text, "range start")
        end = parse_size(end_text, "range end") if end_text else None
        if end is not None and end <= start:
            raise CrashkernelError("range %s ends before it starts" % span)
        ranges.append(Range(start, end, parse_size(size)))
    return tuple(ranges)


def from_cmdline(text):
    """The crashkernel= values on a command line, in order (CrashkernelError if bad)."""
    return [parse(v if v is not None else "")
            for v in CommandLine(text or "").get_all("crashkernel")]


def choose(values):
    """(main, low) as the kernel picks them from several crashkernel= values.

    main is the last value without a suffix; when there is none, the last `,high` (and
    low the last `,low`, or None for the kernel's default low part). A `,low` without a
    `,high` reserves nothing: (None, low).
    """
    plain = [v for v in values if not v.suffixed]
    lows = [v for v in values if v.kind == "low"]
    if plain:
        return plain[-1], None
    highs = [v for v in values if v.kind == "high"]
    if highs:
        return highs[-1], (lows[-1] if lows else None)
    return None, (lows[-1] if lows else None)


# the machine

def _iomem(root):
    """[(start, end, name, depth)], or None when /proc/iomem is missing or unreadable."""
    if rootfs.read_text(root, "/proc/iomem") is None:
        return None
    ranges = iomem_ranges(root)
    if not ranges or all(s == 0 and e == 0 for s, e, _, _ in ranges):
        return None   # non-root users read every address as zero
    return ranges


def system_ram(root="/"):
    """Bytes of "System RAM" in /proc/iomem, or None when it cannot be read (not root)."""
    ranges = _iomem(root)
    if ranges is None:
        return None
    return sum(e - s + 1 for s, e, name, _ in ranges if name == "System RAM")


def ram_for_table(ram_bytes):
    """The RAM figure range expressions are matched against: rounded up to 128M."""
    return -(-ram_bytes // TABLE_ALIGN) * TABLE_ALIGN


@dataclass(frozen=True)
class Reserve:
    """What the running kernel reserved for the capture kernel."""

    size: int                 # bytes (kexec_crash_size, as kdumpctl reports it)
    ranges: tuple             # ((start, end_inclusive), ...) "Crash kernel" in /proc/iomem
    sysfs_size: int = None    # /sys/kernel/kexec_crash_size, None when absent
    iomem_readable: bool = True

    @property
    def exists(self):
        return self.size > 0 or bool(self.ranges)

    def describe(self):
        if self.exists:
            where = ", ".join("%#x-%#x" % r for r in self.ranges)
            return "%s reserved%s" % (_mb(self.size), " at " + where if where else "")
        if self.sysfs_size is None and not self.iomem_readable:
            return "unreadable without root"
        return "not reserved"


def reserved(root="/"):
    """The crash kernel reserve (see Reserve)."""
    iomem = _iomem(root)
    ranges = tuple((s, e) for s, e, name, _ in (iomem or ()) if name == "Crash kernel" and e > s)
    sysfs = None
    text = rootfs.read_first_line(root, "/sys/kernel/kexec_crash_size")
    if text:
        try:
            sysfs = int(text)
        except ValueError:
            sysfs = None
    size = sysfs if sysfs is not None else sum(e - s + 1 for s, e in ranges)
    return Reserve(size, ranges, sysfs, iomem is not None)


def showmem_line(root="/"):
    """kdumpctl showmem's line."""
    res = reserved(root)
    if res.exists and res.size:
        return "Reserved %dMB memory for crash kernel" % (res.size // MiB)
    if res.sysfs_size is None and not res.iomem_readable:
        return ("Cannot tell the memory reserved for crash kernel: "
                "/sys/kernel/kexec_crash_size is missing and /proc/iomem needs root")
    return "No memory reserved for crash kernel"


# why nothing was reserved

_FIX = ("run `kdumpctl reset-crashkernel` (or set crashkernel=$(kdumpctl "
        "get-default-crashkernel) on the kernel command line) and reboot")


def diagnose(root="/"):
    """None when a reserve exists; otherwise a sentence saying why there is none."""
    res = reserved(root)
    if res.exists:
        return None
    cmdline = rootfs.read_text(root, "/proc/cmdline") or ""
    raw = CommandLine(cmdline.strip()).get_all("crashkernel")
    if not raw:
        return ("The kernel was booted without crashkernel=, so no memory is reserved for "
                "the crash kernel: %s." % _FIX)
    values = []
    for text in raw:
        try:
            values.append(parse(text if text is not None else ""))
        except CrashkernelError as e:
            return "The kernel command line has an %s, so nothing was reserved: %s." % (e, _FIX)
    main, low = choose(values)
    if main is None:
        return ("crashkernel=%s only sizes the low part of a crashkernel=SIZE,high "
                "reservation; without a crashkernel=SIZE,high (or a plain crashkernel=) "
                "the kernel reserves nothing: %s." % (low.text, _FIX))
    if main.kind == "auto":
        return ("crashkernel=auto is understood only by RHEL 6, 7 and 8 kernels (and there "
                "only with enough RAM: 2G on x86_64 for RHEL 7); this kernel reserved "
                "nothing: %s." % _FIX)
    iomem = _iomem(root)
    if iomem is None:
        return ("crashkernel=%s is on the kernel command line but nothing is reserved; "
                "/proc/iomem reads as zeros without root, so the reason cannot be told: "
                "run this as root (or see `dmesg | grep -i crash`)." % main.text)
    ram = sum(e - s + 1 for s, e, name, _ in iomem if name == "System RAM")
    return _why(main, ram, iomem, cmdline)


def _why(ck, ram, iomem, cmdline):
    got = ck.size_for(ram)
    ram_text = "%s of RAM (%s when rounded up to 128M)" % (_mb(ram),
                                                           format_size(ram_for_table(ram)))
    if got is None:
        return ("crashkernel=%s reserves nothing on this machine: it has %s, which lies in "
                "none of the ranges %s (start inclusive, end exclusive): add a range that "
                "holds it, or %s." % (ck.text, ram_text, ", ".join(str(r) for r in ck.ranges),
                                      _FIX))
    size, offset = got
    if size == 0:
        return ("crashkernel=%s gives size 0 for this machine's %s, so nothing is reserved: "
                "%s." % (ck.text, ram_text, _FIX))
    if size >= ram:
        return ("crashkernel=%s asks for %s but the machine has only %s, so nothing could "
                "be reserved: use a smaller size, or %s." % (ck.text, format_size(size),
                                                            ram_text, _FIX))
    if offset is not None:
        conflicts = fixed_offset_conflicts(iomem, offset, size)
        plain = ck.text.rpartition("@")[0]
        if conflicts:
            hint = ""
            if any(c.startswith("Kernel ") for c, _, _ in conflicts) and \
                    "nokaslr" in CommandLine(cmdline.strip()):
                hint = " (booted with nokaslr, the kernel sits at its default address, 16M)"
            named = "; ".join("%s [%#x-%#x]" % c for c in conflicts[:3])
            return ("crashkernel=%s asks for [%#x-%#x], which overlaps %s%s, so the fixed "
                    "offset cannot be honoured: drop the @offset (crashkernel=%s) or use "
                    "the range expression from `kdumpctl get-default-crashkernel`, and reboot."
                    % (ck.text, offset, offset + size - 1, named, hint, plain))
        return ("crashkernel=%s: [%#x-%#x] is free RAM in /proc/iomem now, but the kernel "
                "could not reserve it at boot (something else used it early): drop the "
                "@offset (crashkernel=%s) and reboot." % (ck.text, offset, offset + size - 1,
                                                         plain))
    where = " above 4G" if ck.kind == "high" else ""
    return ("crashkernel=%s: the kernel found no free block of %s%s at boot, so nothing is "
            "reserved (see `dmesg | grep -i crash`): try a smaller size, or %s."
            % (ck.text, format_size(size), where, _FIX))


def fixed_offset_conflicts(iomem, offset, size):
    """[(what, start, end)] that keep [offset, offset+size) from being reserved.

    Anything that is not free System RAM: a top-level range that is not System RAM, a
    gap no System RAM covers, or a range inside System RAM (the kernel's own code, data
    and bss, or other reservations).
    """
    end = offset + size - 1
    out = []
    ram = sorted((s, e) for s, e, name, depth in iomem if depth == 0 and name == "System RAM")
    for s, e, name, depth in iomem:
        if e < offset or s > end or name == "Crash kernel":
            continue
        if depth == 0 and name == "System RAM":
            continue
        if depth > 0 and not _inside(ram, s, e):
            continue   # a child of a non-RAM range: its parent is reported already
        out.append((name, s, e))
    at = offset      # gaps that no top-level range covers
    for s, e in sorted((s, e) for s, e, _, depth in iomem if depth == 0):
        if e < at:
            continue
        if s > at:
            out.append(("a hole with no System RAM", at, min(s - 1, end)))
        at = e + 1
        if at > end:
            break
    if at <= end:
        out.append(("a hole with no System RAM", at, end))
    out.sort(key=lambda c: c[1])
    return out


def _inside(ram, s, e):
    return any(rs <= s and e <= re_ for rs, re_ in ram)


# defaults

def _os_release(root):
    text = (rootfs.read_text(root, "/etc/os-release")
            or rootfs.read_text(root, "/usr/lib/os-release"))
    fields = {}
    for line in (text or "").split("\n"):
        key, eq, value = line.strip().partition("=")
        if eq and key and not key.startswith("#"):
            fields[key] = value.strip().strip("\"'")
    return fields


_RHEL_LIKE = ("rhel", "centos", "almalinux", "rocky", "ol", "circle", "eurolinux",
              "scientific", "virtuozzo", "cloudlinux")


def host_release(root="/"):
    """("rhel"-like, major) or (ID, major) from os-release (or /etc/redhat-release)."""
    fields = _os_release(root)
    if not fields:
        text = rootfs.read_first_line(root, "/etc/redhat-release") or ""
        m = re.search(r"release (\d+)", text)
        return ("rhel", int(m.group(1))) if m else ("", None)
    ident = fields.get("ID", "")
    like = fields.get("ID_LIKE", "").split()
    m = re.match(r"(\d+)", fields.get("VERSION_ID", ""))
    major = int(m.group(1)) if m else None
    if ident == "fedora":
        return "fedora", major
    if ident in _RHEL_LIKE or "rhel" in like:
        return "rhel", major
    return ident, major


def memory_encryption_active(root="/"):
    """True when AMD SME or SEV encrypts this machine's memory.

    RHEL asks the journal for the boot message "Memory Encryption Features active: AMD
    SME|SEV". Under a root prefix the same fact is read from /proc/cpuinfo: the kernel
    keeps the `sme` flag only when it turned SME on (it clears it otherwise), and a SEV
    guest shows `sev` next to `hypervisor` (a host shows `sev` only as a capability for
    its guests, without `hypervisor`).
    """
    text = rootfs.read_text(root, "/proc/cpuinfo") or ""
    for line in text.split("\n"):
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            return "sme" in flags or ("sev" in flags and "hypervisor" in flags)
    return False


def add_to_sizes(expr, delta):
    """Each size in a crashkernel value plus delta bytes (kdump-lib's _crashkernel_add)."""
    ck = parse(expr)
    if ck.kind == "ranges":
        body = ",".join("%s:%s" % (r, format_size(r.size + delta)) for r in ck.ranges)
    elif ck.kind == "auto":
        return expr
    else:
        body = format_size(ck.size + delta)
        if ck.suffixed:
            body += "," + ck.kind
    if ck.offset is not None:
        body += "@" + format_size(ck.offset)
    return body


def default_crashkernel(root="/"):
    """The crashkernel= value RHEL's kdumpctl get-default-crashkernel prints for this host.

    RHEL 10+, Fedora, and every other distribution (Debian included): the newest table,
    2G-64G:256M,64G-:512M. RHEL 6 to 9 and their rebuilds: 1G-4G:192M,4G-64G:256M,64G-:512M.
    RHEL 5: 128M@16M (its kernel has no range syntax). 64M more per size under SME/SEV.
    """
    family, major = host_release(root)
    if family == "rhel" and major is not None and major <= 5:
        return DEFAULT_RHEL5
    table = DEFAULT_TABLE
    if family == "rhel" and major is not None and major < 10:
        table = DEFAULT_TABLE_RHEL9
    if memory_encryption_active(root):
        table = add_to_sizes(table, SME_SEV_EXTRA)
    return table


def default_size(root="/", ram_bytes=None):
    """Bytes the default table gives this machine (0 when no range holds its RAM)."""
    if ram_bytes is None:
        ram_bytes = system_ram(root)
        if ram_bytes is None:
            raise CrashkernelError("cannot read /proc/iomem to count RAM: run as root")
    got = parse(default_crashkernel(root)).size_for(ram_bytes)
    return got[0] if got else 0


# estimate

@dataclass(frozen=True)
class Estimate:
    reserved: int
    recommended: int
    baseline: int               # the default table's size for this RAM
    kernel_size: int
    modules_size: int
    initramfs_size: int
    runtime_size: int
    unpacked_size: int = 0      # what the initramfs unpacks to
    luks_size: int = 0
    large_modules: tuple = ()   # ((name, bytes), ...), largest first
    notes: tuple = ()           # things the figures could not include
    kernel_from: str = ""       # where the kernel size came from
    load_size: int = 0          # the room the kernel needs to be loaded (init_size)

    @property
    def short(self):
        return self.reserved < self.recommended

    def lines(self):
        out = ["Note: %s" % n for n in self.notes]
        if self.luks_size:
            out += ["Encrypted kdump target requires extra memory, assuming using the keyslot "
                    "with maximum memory requirement", ""]
        elif out:
            out.append("")
        out += [
            "Reserved crashkernel:    %s" % _mb(self.reserved),
            "Recommended crashkernel: %s" % _mb(self.recommended),
            "",
            "Kernel image size:   %s" % _mb(self.kernel_size),
        ]
        if self.load_size and self.load_size != self.kernel_size:
            out.append("Kernel load size:    %s" % _mb(self.load_size))
        out += [
            "Kernel modules size: %s" % _mb(self.modules_size),
            "Initramfs size:      %s" % _mb(self.initramfs_size),
            "Initramfs unpacked:  %s" % _mb(self.unpacked_size),
            "Runtime reservation: %s" % _mb(self.runtime_size),
        ]
        if self.luks_size:
            out.append("LUKS required size:  %s" % _mb(self.luks_size))
        if self.large_modules:
            out.append("Large modules:")
            out += ["    %s: %d" % m for m in self.large_modules]
        else:
            out.append("Large modules: <none>")
        if self.short:
            out.append("WARNING: Current crashkernel size is lower than recommended size %s."
                       % _mb(self.recommended))
        return out


def proc_modules(root="/"):
    """{module name: bytes} from /proc/modules."""
    out = {}
    for line in (rootfs.read_text(root, "/proc/modules") or "").split("\n"):
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _module_name(member):
    base = os.path.basename(member)
    for suffix in _MODULE_SUFFIXES:
        if base.endswith(suffix):
            return base[:-len(suffix)].replace("-", "_")
    return None


def initramfs_contents(path):
    """(module names, unpacked bytes) of an initramfs.

    Names as /proc/modules spells them: the .ko files it holds; when it holds none,
    dracut's list of host-only modules (a squashed image keeps its modules inside
    squash-root.img, where the list still tells; otherwise the list names every module
    the first kernel had, not what the image carries). Unpacked bytes: what its files
    take in the capture kernel's rootfs, each rounded up to a page.
    """
    names, listed, unpacked = set(), set(), 0
    want = (lambda n: n.lstrip("./") == HOSTONLY_MODULES)
    for m in cpio.iter_members(path, want=want):
        unpacked += -(-m.size // PAGE) * PAGE
        name = _module_name(m.name) if m.is_file else None
        if name:
            names.add(name)
        if m.data is not None:
            for line in m.data.decode("utf-8", "replace").split("\n"):
                if line.strip():
                    listed.add(line.strip().replace("-", "_"))
    return names or listed, unpacked


def initramfs_modules(path):
    """Names (as /proc/modules spells them) of the kernel modules in an initramfs."""
    return initramfs_contents(path)[0]


def kernel_image_size(root, kernel_path):
    """(bytes, how) the kernel takes in memory.

    A bzImage says so in its setup header (init_size: the decompressed kernel with its
    bss and decompression room); a vmlinux by its ELF PT_LOAD segments. Otherwise the
    running kernel's "Kernel code/rodata/data/bss" in /proc/iomem.
    """
    try:
        with open(kernel_path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError:
        head = None
    if head and bzimage.is_bzimage(head) and len(head) >= 0x26C:
        hdr = bzimage.parse_setup_header(head)
        if hdr.init_size:
            return hdr.init_size, "init_size in the bzImage setup header"
    if head and head[:4] == b"\x7fELF":
        size = _elf_load_size(head)
        if size:
            return size, "PT_LOAD segments of the ELF kernel"
    ranges = _iomem(root) or ()
    size = sum(e - s + 1 for s, e, name, _ in ranges
               if name in ("Kernel code", "Kernel rodata", "Kernel data", "Kernel bss"))
    return size, "the running kernel's ranges in /proc/iomem"


def kernel_runtime_size(root, kernel_path):
    """(bytes, how) the kernel keeps after it has started (its text through bss, with the
    gaps between them), when the capture kernel is the running one: /proc/iomem's Kernel
    code..Kernel bss span. (None, reason) otherwise: a bzImage says only how much room
    it needs to decompress itself (init_size), not what stays."""
    try:
        with open(kernel_path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError:
        return None, "the kernel cannot be read"
    if not (bzimage.is_bzimage(head) and len(head) >= 0x26C):
        return None, "not a bzImage"
    words = bzimage.kernel_version_string(head, bzimage.parse_setup_header(head)).split()
    if not words or words[0] != rootfs.running_release(root):
        return None, "not the running kernel"
    spans = [(s, e) for s, e, name, _ in (_iomem(root) or ())
             if name in ("Kernel code", "Kernel rodata", "Kernel data", "Kernel bss")]
    if not spans:
        return None, "no Kernel ranges in /proc/iomem"
    return (max(e for _, e in spans) - min(s for s, _ in spans) + 1,
            "the running kernel's Kernel code..bss span in /proc/iomem")


def _elf_load_size(head):
    if len(head) < 64 or head[4] != 2:     # ELFCLASS64 only
        return 0
    endian = "<" if head[5] == 1 else ">"
    phoff, = struct.unpack_from(endian + "Q", head, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", head, 0x36)
    total = 0
    for i in range(phnum):
        at = phoff + i * phentsize
        if phentsize < 56 or at + 56 > len(head):
            break
        p_type, = struct.unpack_from(endian + "I", head, at)
        if p_type == 1:
            total += struct.unpack_from(endian + "Q", head, at + 40)[0]
    return total


def estimate(root, kernel_path, initrd_path, luks_keyslot_mem=0):
    """RHEL's `kdumpctl estimate`: the reserve this capture set-up needs.

    recommended = max(default table size for this RAM, what loading needs, what running
    needs), rounded up to 8M, where
      loading = the room the kernel decompresses itself in (init_size) + the initramfs
                file + 1M (purgatory, boot parameters, ELF core header);
      running = the kernel in memory + sizes (from /proc/modules) of the modules in the
                capture initramfs + the initramfs file + what it unpacks to + 16M runtime
                + (largest LUKS2 keyslot memory + 20M when there is one).
    The kernel in memory is the running kernel's text..bss span from /proc/iomem when it
    is the capture kernel, else init_size (which includes the decompressor's room, 13 MB
    more for Debian 12's 6.1). RHEL counts init_size once and 3 x the file for the
    initramfs; the file stays in memory while it is unpacked, and a zstd image unpacks to
    three times its size or more, so kexec-py reads the archive and counts both (measured
    in benchmarks/kdump_footprint.py: docs/kdump.md).
    luks_keyslot_mem is in bytes. A missing initramfs counts as 0, with a note.
    """
    ram = system_ram(root)
    if ram is None:
        raise CrashkernelError("cannot read /proc/iomem to count RAM: run kdumpctl estimate "
                               "as root")
    notes = []
    baseline = default_size(root, ram)
    load_size, kernel_from = kernel_image_size(root, kernel_path)
    kernel_size, runtime_from = kernel_runtime_size(root, kernel_path)
    if kernel_size is None:
        kernel_size = load_size
    else:
        kernel_from = runtime_from
    if not os.path.exists(kernel_path):
        notes.append("kernel %s does not exist; its size is taken from %s"
                     % (kernel_path, kernel_from))
    loaded = proc_modules(root)
    initrd_size, names, unpacked = 0, set(), 0
    if initrd_path and os.path.isfile(initrd_path):
        initrd_size = os.path.getsize(initrd_path)
        try:
            names, unpacked = initramfs_contents(initrd_path)
        except FormatError as e:
            unpacked = 2 * initrd_size
            notes.append("cannot list the capture initramfs (%s); its modules count as 0 "
                         "and its unpacked size as twice the file" % e)
    else:
        notes.append("capture initramfs %s does not exist (run `kdumpctl rebuild`); its size "
                     "and its modules count as 0" % initrd_path)
    mods = {n: loaded[n] for n in names if n in loaded}
    modules_size = sum(mods.values())
    large = tuple(sorted(((n, s) for n, s in mods.items() if s >= LARGE_MODULE),
                         key=lambda m: (-m[1], m[0])))
    luks = luks_keyslot_mem + LUKS_OVERHEAD if luks_keyslot_mem else 0
    running = kernel_size + modules_size + initrd_size + unpacked + RUNTIME_RESERVATION + luks
    estimated = max(running, load_size + initrd_size + LOAD_EXTRA)
    estimated = -(-estimated // ESTIMATE_ROUND) * ESTIMATE_ROUND
    return Estimate(
        reserved=reserved(root).size, recommended=max(baseline, estimated),
        baseline=baseline, kernel_size=kernel_size, load_size=load_size,
        modules_size=modules_size,
        initramfs_size=initrd_size, unpacked_size=unpacked,
        runtime_size=RUNTIME_RESERVATION, luks_size=luks,
        large_modules=large, notes=tuple(notes), kernel_from=kernel_from)
