"""cffi builder (out-of-line API mode) for kexec_py._native.

setup.py names this file in cffi_modules; setuptools then compiles the generated C with
the system compiler. The C sources live beside this file; the one public header is
csrc/include/kexecpy.h and the cdef below mirrors it.
"""
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_tools  # noqa: E402  (same directory; cffi runs this file without sys.path)

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

/* vmcore: the copier and the dump readers (kexecpy.h) */
#define KPY_FMT_KDUMP ...
#define KPY_FMT_ELF ...
#define KPY_CODEC_NONE ...
#define KPY_CODEC_ZLIB ...
#define KPY_CODEC_LZO ...
#define KPY_CODEC_SNAPPY ...
#define KPY_CODEC_ZSTD ...
#define KPY_DUMP_INCOMPLETE ...
#define KPY_MSG_LEN ...

typedef int (*kpy_progress_fn)(void *arg, uint64_t done_frames, uint64_t total_frames,
                               uint64_t bytes_out);

struct kpy_copy_opts {
    int format;
    int codec;
    int dump_level;
    int threads;
    int flattened;
    int no_mmap;
    uint64_t size_limit;
    kpy_progress_fn progress;
    void *progress_arg;
    uint64_t filter_window;
    const char *vmcoreinfo;
    size_t vmcoreinfo_len;
};

struct kpy_copy_stats {
    uint64_t pages_in;
    uint64_t pages_zero;
    uint64_t pages_excluded;
    uint64_t pages_written;
    uint64_t pages_lost;
    uint64_t bytes_out;
    uint64_t file_size;
    uint64_t elapsed_ns;
    uint32_t page_size;
    int incomplete;
    int err_in_output;
    uint64_t err_offset;
    char message[256];
};

int kpy_vmcore_copy(int in_fd, int out_fd, const struct kpy_copy_opts *opts,
                    struct kpy_copy_stats *stats);
int kpy_vmcore_codec_available(int codec);

struct kpy_flat_stats {
    uint64_t records;
    uint64_t bytes;
    uint64_t file_size;
    uint64_t err_offset;
    char message[256];
};
int kpy_flat_rearrange(int in_fd, int out_fd, struct kpy_flat_stats *stats);

struct kpy_dump;
struct kpy_dump_info {
    int format;
    int flattened;
    int codec;
    int incomplete;
    int dump_level;
    uint32_t page_size;
    uint64_t max_pfn;
    uint64_t nr_frames;
    uint64_t notes_size;
    uint64_t vmcoreinfo_size;
    uint64_t phys_base;
    uint16_t elf_machine;
    int nr_cpus;
    char machine[65];
    char release[65];
    uint64_t err_offset;
    char message[256];
};
int kpy_dump_open(int fd, struct kpy_dump **out, struct kpy_dump_info *info);
int kpy_dump_open_info(int fd, const char *vmcoreinfo, size_t vmcoreinfo_len,
                       struct kpy_dump **out, struct kpy_dump_info *info);
void kpy_dump_close(struct kpy_dump *d);
int kpy_dump_read_page(struct kpy_dump *d, uint64_t pfn, void *buf);
int kpy_dump_next_run(struct kpy_dump *d, uint64_t pfn, uint64_t *start, uint64_t *count);
int kpy_dump_notes(struct kpy_dump *d, void *buf, size_t len);
int kpy_dump_vmcoreinfo(struct kpy_dump *d, void *buf, size_t len);
uint64_t kpy_dump_error_offset(const struct kpy_dump *d);
const char *kpy_dump_error_message(const struct kpy_dump *d);
const char *kpy_codec_name(int codec);
extern const int kpy_codecs[];
int kpy_dump_vtop(struct kpy_dump *d, uint64_t vaddr, uint64_t *paddr);
int kpy_dump_read_virt(struct kpy_dump *d, uint64_t vaddr, void *buf, size_t len);
int kpy_dump_dmesg(struct kpy_dump *d, char **text, size_t *len);
void kpy_free(void *p);

struct kpy_verify_stats {
    uint64_t frames;
    uint64_t ok;
    uint64_t lost;
    uint64_t bad;
    uint64_t first_bad_pfn;
    uint64_t first_bad_offset;
};
int kpy_dump_verify(struct kpy_dump *d, struct kpy_verify_stats *st, kpy_progress_fn fn,
                    void *arg);

#define KPY_MU_CODECS ...
#define KPY_MU_UNCOMPRESSED ...
enum { KPY_MU_CACHE, KPY_MU_CACHE_PRIVATE, KPY_MU_USER, KPY_MU_FREE, KPY_MU_HWPOISON,
       KPY_MU_OFFLINE, KPY_MU_KERNEL, KPY_MU_NO_MEMMAP, KPY_MU_CLASSES };
struct kpy_usage_opts {
    int codecs;
    uint64_t sample_target;
    const char *vmcoreinfo;
    size_t vmcoreinfo_len;
    const char *iomem;
};
struct kpy_usage_stats {
    uint32_t page_size;
    uint64_t max_pfn;
    uint64_t notes_size;
    uint64_t pages_total;
    uint64_t nr_runs;
    uint64_t crash_reserved;
    uint64_t pages[...];
    uint64_t zero;
    uint64_t elf_zero_out;
    uint64_t stride;
    uint64_t sampled[...];
    uint64_t sampled_zero[...];
    int64_t sampled_bytes[...][5];
    int64_t zero_page_bytes[...];
    uint64_t elapsed_ns;
    uint64_t err_offset;
    char message[256];
};
int kpy_vmcore_mem_usage(int in_fd, const struct kpy_usage_opts *opts,
                         struct kpy_usage_stats *stats);
int64_t kpy_usage_predict(const struct kpy_usage_stats *stats, int dump_level, int format,
                          int codec);

extern "Python" int kpy_py_progress(void *, uint64_t, uint64_t, uint64_t);

/* purgatory's parameter block (csrc/purgatory/params.h) */
#define PURGATORY_PARAMS_OFFSET ...
#define PURGATORY_MAX_REGIONS ...
#define PURGATORY_PARAMS_SIZE ...
#define PP_OFF_MAGIC ...
#define PP_OFF_ENTRY ...
#define PP_OFF_BOOT_PARAMS ...
#define PP_OFF_SERIAL_PORT ...
#define PP_OFF_NO_CHECKS ...
#define PP_OFF_NR_REGIONS ...
#define PP_OFF_DIGEST ...
#define PP_OFF_REGIONS ...
static const uint64_t PURGATORY_MAGIC;
"""

SOURCES = ["kexec/syscalls.c", "kexec/decompress.c"] + build_tools.VMCORE_SOURCES


_have_header = build_tools.have_header


def make_builder():
    ffi = FFI()
    ffi.cdef(CDEF)
    # zstd (also used by kexec/decompress.c), snappy when present, zlib, lzo2, pthread
    macros, libraries = build_tools.vmcore_features()
    ffi.set_source(
        "kexec_py._native",
        '#include "kexecpy.h"\n#include "../purgatory/params.h"\n',
        sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
        include_dirs=[os.path.relpath(os.path.join(HERE, "include"))],
        define_macros=macros,
        libraries=libraries,
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11"]
        + build_tools.sanitize_flags(),
        extra_link_args=build_tools.sanitize_flags(),
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
