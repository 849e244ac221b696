"""Executables and blobs built beside the cffi module (see setup.py's build_ext).

Each executable is compiled from C sources in csrc/ with the same compiler setuptools
uses, and lands in kexec_py/libexec/ so that it ships inside the package; the RPM also
installs it on PATH. An entry: name -> dict(sources=[...], libraries=[...], macros=[...]).
Sources are relative to csrc/.
"""
import ctypes.util
import os
import re
import shlex
import shutil
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.path.join(HERE, "include")

EXECUTABLES = {}

# The vmcore copier: reader, writers, codecs and thread pool (csrc/vmcore/); linked into
# both the cffi module (build_ffi.py) and the vmcore-copy executable.
VMCORE_SOURCES = ["vmcore/src.c", "vmcore/notes.c", "vmcore/elf_in.c", "vmcore/uts.c",
                  "vmcore/codec.c", "vmcore/batch.c", "vmcore/sink.c", "vmcore/kdump_out.c",
                  "vmcore/elf_out.c", "vmcore/pool.c", "vmcore/copy.c", "vmcore/kdump_in.c",
                  "vmcore/dump.c", "vmcore/flat.c", "vmcore/x86_64.c",
                  "vmcore/dmesg.c", "vmcore/filter.c", "vmcore/kdump_view.c",
                  "vmcore/xc_core.c", "vmcore/usage.c"]


def version():
    """The package version: the Version: line of kexec-tools.spec, its one statement
    (setup.py, kexec_py/_version.py, vmcore-copy --version and the RPM all take it)."""
    with open(os.path.join(os.path.dirname(HERE), "kexec-tools.spec")) as f:
        m = re.search(r"^Version:\s*(\S+)", f.read(), re.M)
    if not m:
        raise RuntimeError("kexec-tools.spec has no Version: line")
    return m.group(1)


def have_header(name):
    """True when the C compiler finds <name> (checks the real include path)."""
    cc = os.environ.get("CC", "cc").split()[0]
    if not shutil.which(cc):
        return False
    probe = subprocess.run(
        [cc, "-E", "-x", "c", "-"], input="#include <%s>\n" % name,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, universal_newlines=True)
    return probe.returncode == 0


def vmcore_features():
    """(macros, libraries) for the copier: zlib and lzo2 always; zstd and snappy when
    their headers and libraries are present at build time."""
    macros, libraries = [], ["z", "lzo2", "pthread"]
    if have_header("zstd.h") and ctypes.util.find_library("zstd"):
        macros.append(("KPY_HAVE_ZSTD", "1"))
        libraries.append("zstd")
    if have_header("snappy-c.h") and ctypes.util.find_library("snappy"):
        macros.append(("KPY_HAVE_SNAPPY", "1"))     # libsnappy.so.1 is dlopen()ed
        libraries.append("dl")
    return macros, libraries


_VMCORE_MACROS, _VMCORE_LIBS = vmcore_features()
# vmcore-copy needs no Python, so it can run in the capture initramfs
EXECUTABLES["vmcore-copy"] = dict(sources=["tools/vmcore_copy.c"] + VMCORE_SOURCES,
                                  macros=_VMCORE_MACROS + [("KPY_VERSION", '"%s"' % version())],
                                  libraries=_VMCORE_LIBS)

# vmcore-dmesg: the kernel log of an ELF or kdump-compressed dump, as kexec-tools prints it
EXECUTABLES["vmcore-dmesg"] = dict(sources=["tools/vmcore_dmesg.c"] + VMCORE_SOURCES,
                                   macros=_VMCORE_MACROS, libraries=_VMCORE_LIBS)

# kdump-insmod: the capture initramfs's module loader (no kmod, so no libcrypto there)
EXECUTABLES["kdump-insmod"] = dict(sources=["tools/kdump_insmod.c"], macros=[], libraries=[])

PURGATORY_SOURCES = ("purgatory/entry.S", "purgatory/purgatory.c", "purgatory/sha256.c")
PURGATORY_CFLAGS = (
    "-O2", "-Wall", "-Wextra", "-std=gnu11", "-ffreestanding", "-fno-builtin",
    "-fno-stack-protector", "-fpie", "-fvisibility=hidden", "-mno-red-zone",
    "-mgeneral-regs-only", "-fno-asynchronous-unwind-tables", "-fcf-protection=none",
    "-fno-jump-tables")


def _params_h(name):
    """A #define of csrc/purgatory/params.h, the one statement of the block's layout."""
    with open(os.path.join(HERE, "purgatory", "params.h")) as f:
        m = re.search(r"^#define %s (0x[0-9a-fA-F]+|\d+)" % name, f.read(), re.M)
    return int(m.group(1), 0)


PURGATORY_MAGIC = _params_h("PURGATORY_MAGIC")
PURGATORY_PARAMS_OFFSET = _params_h("PURGATORY_PARAMS_OFFSET")
# Relocations that would tie the blob to one load address.
ABSOLUTE_RELOCS = ("R_X86_64_64", "R_X86_64_32 ", "R_X86_64_32S", "R_X86_64_GOTPCREL",
                   "R_X86_64_GOT")


# KPY_SANITIZE=1: an ASan+UBSan build of the C library and tools (make test-sanitize
# builds a copy of the tree that way and runs the C-backed tests against it).
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer", "-g"]


def sanitize_flags():
    return list(SANITIZE_FLAGS) if os.environ.get("KPY_SANITIZE") == "1" else []


def build_executables(compiler, outdir, tmpdir):
    """Compile and link every entry of EXECUTABLES into outdir; returns the paths."""
    os.makedirs(outdir, exist_ok=True)
    built = []
    for name, spec in sorted(EXECUTABLES.items()):
        sources = [os.path.join(HERE, s) for s in spec["sources"]]
        objects = compiler.compile(
            sources, output_dir=os.path.join(tmpdir, name), macros=list(spec["macros"]),
            include_dirs=[INCLUDE],
            extra_postargs=["-O2", "-Wall", "-Wextra", "-std=gnu11"] + sanitize_flags())
        compiler.link_executable(objects, name, output_dir=outdir,
                                 libraries=list(spec["libraries"]),
                                 extra_postargs=sanitize_flags())
        built.append(os.path.join(outdir, name))
    return built


def _run(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if proc.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), proc.stdout))
    return proc.stdout


def build_purgatory(outdir, tmpdir, cc=None):
    """Build csrc/purgatory into a position-independent flat blob, outdir/purgatory.bin.

    The objects must carry no absolute relocation: the blob is copied to whatever
    address the loader picks and runs there unrelocated.
    """
    cc = shlex.split(cc or os.environ.get("CC") or "cc")
    work = os.path.join(tmpdir, "purgatory")
    os.makedirs(work, exist_ok=True)
    os.makedirs(outdir, exist_ok=True)
    objects = []
    for src in PURGATORY_SOURCES:
        obj = os.path.join(work, os.path.basename(src).rsplit(".", 1)[0] + ".o")
        _run(cc + list(PURGATORY_CFLAGS) + ["-c", os.path.join(HERE, src), "-o", obj])
        relocs = _run(["readelf", "-rW", obj])
        bad = [line for line in relocs.splitlines() if any(r in line + " " for r in ABSOLUTE_RELOCS)]
        if bad:
            raise RuntimeError("purgatory object %s has absolute relocations:\n%s"
                               % (obj, "\n".join(bad)))
        objects.append(obj)
    elf = os.path.join(work, "purgatory.elf")
    _run(cc + ["-nostdlib", "-static", "-Wl,-T," + os.path.join(HERE, "purgatory",
                                                                  "purgatory.lds"),
               "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-o", elf] + objects)
    blob = os.path.join(outdir, "purgatory.bin")
    _run(["objcopy", "-O", "binary", elf, blob])
    with open(blob, "rb") as f:
        head = f.read(PURGATORY_PARAMS_OFFSET + 8)
    magic = struct.unpack_from("<Q", head, PURGATORY_PARAMS_OFFSET)[0]
    if magic != PURGATORY_MAGIC:
        raise RuntimeError("purgatory.bin: no parameter block at offset %d"
                           % PURGATORY_PARAMS_OFFSET)
    return blob
