"""cffi builder (out-of-line API mode) for kexec_py._native.

setup.py names this file in cffi_modules; setuptools then compiles the generated C with
the system compiler. The C sources live beside this file; the one public header is
csrc/include/kexecpy.h and the cdef below mirrors it.
"""
import ctypes.util
import os
import shutil
import subprocess

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

CDEF = """
struct kpy_segment {
    const void *buf;
    size_t bufsz;
    unsigned long mem;
    size_t memsz;
};

int kpy_kexec_file_load(int kernel_fd, int initrd_fd, const char *cmdline,
                        unsigned long cmdline_len, unsigned long flags);
int kpy_kexec_load(unsigned long entry, unsigned long nr_segments,
                   const struct kpy_segment *segments, unsigned long flags);
int kpy_reboot_kexec(void);
int kpy_zstd_decompress_fd(int in_fd, int out_fd, uint64_t max_out);
int kpy_have_zstd(void);
"""

SOURCES = ["kexec/syscalls.c", "kexec/decompress.c"]


def _have_header(name):
    """True when the C compiler finds <name> (checks the real include path)."""
    cc = os.environ.get("CC", "cc").split()[0]
    if not shutil.which(cc):
        return False
    probe = subprocess.run(
        [cc, "-E", "-x", "c", "-"], input="#include <%s>\n" % name,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, universal_newlines=True)
    return probe.returncode == 0


def make_builder():
    ffi = FFI()
    ffi.cdef(CDEF)
    macros, libraries = [], []
    if _have_header("zstd.h") and ctypes.util.find_library("zstd"):
        macros.append(("KPY_HAVE_ZSTD", "1"))
        libraries.append("zstd")
    ffi.set_source(
        "kexec_py._native",
        '#include "kexecpy.h"\n',
        sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
        include_dirs=[os.path.relpath(os.path.join(HERE, "include"))],
        define_macros=macros,
        libraries=libraries,
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
