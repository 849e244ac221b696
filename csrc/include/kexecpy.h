/*
 * kexecpy.h - the one public header of kexec-py's C library.
 *
 * Conventions: no globals, no printing, no exit(). Every function returns 0 (or a
 * non-negative count) on success and -errno on failure, so callers (the cffi module,
 * the executables) decide how to report.
 */
#ifndef KEXECPY_H
#define KEXECPY_H

#include <stddef.h>
#include <stdint.h>

/* kexec_file_load(2) flags, include/uapi/linux/kexec.h */
#define KPY_KEXEC_FILE_UNLOAD       0x00000001UL
#define KPY_KEXEC_FILE_ON_CRASH     0x00000002UL
#define KPY_KEXEC_FILE_NO_INITRAMFS 0x00000004UL
#define KPY_KEXEC_FILE_DEBUG        0x00000008UL

/* kexec_load(2) flags */
#define KPY_KEXEC_ON_CRASH          0x00000001UL
#define KPY_KEXEC_PRESERVE_CONTEXT  0x00000002UL
#define KPY_KEXEC_UPDATE_ELFCOREHDR 0x00000004UL
#define KPY_KEXEC_ARCH_X86_64       (62UL << 16)
#define KPY_KEXEC_SEGMENT_MAX       16

/* One kexec_load segment, the same layout as the kernel's struct kexec_segment. */
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
/* reboot(LINUX_REBOOT_CMD_KEXEC): only returns on failure. */
int kpy_reboot_kexec(void);

/*
 * Decompress a whole zstd stream from in_fd into out_fd (both positioned by the caller).
 * Returns 0, -errno for I/O errors, -EBADMSG for corrupt data, -EFBIG when the output
 * would exceed max_out bytes, -ENOTSUP when built without libzstd.
 */
int kpy_zstd_decompress_fd(int in_fd, int out_fd, uint64_t max_out);
/* write() all len bytes, retrying short writes and EINTR; 0 or -errno. */
int kpy_write_full(int fd, const void *buf, size_t len);
/* A whole file of at most max bytes into *buf (NUL-terminated, free with kpy_free):
 * 0, -EFBIG when it is bigger, or -errno. */
int kpy_read_file(const char *path, size_t max, char **buf, size_t *len);
/* The biggest VMCOREINFO text accepted (--vmcoreinfo FILE, a dump's own). */
#define KPY_VMCOREINFO_MAX (1u << 20)

/* 1 when built with libzstd, else 0. */
int kpy_have_zstd(void);

/* ---- vmcore: copying /proc/vmcore into dump files, reading dumps back ---- */

/* Output formats */
#define KPY_FMT_KDUMP 0    /* kdump-compressed (diskdump), the default */
#define KPY_FMT_ELF   1    /* ELF core, zero runs of 256+ pages left out at dump level 1 */

/* Codecs: the kdump-compressed per-page flag bits */
#define KPY_CODEC_NONE   0x00
#define KPY_CODEC_ZLIB   0x01
#define KPY_CODEC_LZO    0x02
#define KPY_CODEC_SNAPPY 0x04
#define KPY_CODEC_ZSTD   0x20
#define KPY_DUMP_INCOMPLETE 0x08   /* kdump status bit; ELF: e_flags bit 0 */

#define KPY_MSG_LEN 256

/* Progress: called by the writer as frames are written. Nonzero cancels the copy. */
typedef int (*kpy_progress_fn)(void *arg, uint64_t done_frames, uint64_t total_frames,
			       uint64_t bytes_out);

struct kpy_copy_opts {
	int format;            /* KPY_FMT_* */
	int codec;             /* KPY_CODEC_* (kdump only) */
	int dump_level;        /* bits: 1 zero, 2 cache, 4 cache+private, 8 user, 16 free */
	int threads;           /* workers; 0 or 1 = everything on the calling thread */
	int flattened;         /* write the flattened stream format to the output fd */
	int no_mmap;           /* read the input with pread() instead of mmap windows */
	uint64_t size_limit;   /* 0 = none; else stop (incomplete dump) at this file size */
	kpy_progress_fn progress;
	void *progress_arg;
	uint64_t filter_window;  /* levels 2-31: frames classified at once (0 = default) */
	const char *vmcoreinfo;  /* NULL, or VMCOREINFO text (makedumpfile -g/-i format) that */
	size_t vmcoreinfo_len;   /* supplies or replaces the input's (ELF input only) */
};

struct kpy_copy_stats {
	uint64_t pages_in;        /* RAM page frames in the input */
	uint64_t pages_zero;      /* of those, all-zero */
	uint64_t pages_excluded;  /* left out of the dump (ELF zero runs) */
	uint64_t pages_written;   /* in the dump: own data or the shared zero page */
	uint64_t pages_lost;      /* not written because the dump was cut short */
	uint64_t bytes_out;       /* bytes written (flattened: payload bytes) */
	uint64_t file_size;       /* size of the dump file (flattened: of the rebuilt file) */
	uint64_t elapsed_ns;
	uint32_t page_size;
	int incomplete;           /* the dump was closed with the incomplete flag */
	int err_in_output;        /* the failure was writing (1) or reading (0) */
	uint64_t err_offset;      /* file offset where it failed */
	char message[KPY_MSG_LEN];  /* what went wrong, when a call failed */
};

/*
 * Copy the ELF vmcore open on in_fd into a dump on out_fd (a regular file, or with
 * opts->flattened any stream). Returns 0 when the dump is complete; -ENOSPC, -EFBIG
 * (size_limit) or -ECANCELED (progress) with stats->incomplete = 1 when a readable but
 * incomplete dump was closed; other -errno on failure (stats->message says why, and
 * stats->incomplete tells whether the output is a valid, incomplete dump).
 */
int kpy_vmcore_copy(int in_fd, int out_fd, const struct kpy_copy_opts *opts,
		    struct kpy_copy_stats *stats);
/* 1 when the codec was built in. */
int kpy_vmcore_codec_available(int codec);

/*
 * Memory usage (makedumpfile --mem-usage): classify every RAM frame of a vmcore - or of
 * the running system's /proc/kcore - as dump level 31 would, count the classes, and
 * compress a sample of each class to predict a dump's size at any level and codec.
 */
enum {
	KPY_MU_CACHE,           /* page cache without PG_private (dump level bit 2) */
	KPY_MU_CACHE_PRIVATE,   /* page cache with PG_private (bit 4) */
	KPY_MU_USER,            /* anonymous and hugetlb pages (bit 8) */
	KPY_MU_FREE,            /* the buddy allocator's free blocks (bit 16) */
	KPY_MU_HWPOISON,        /* left out at every filtering level */
	KPY_MU_OFFLINE,
	KPY_MU_KERNEL,          /* kept at level 31: kernel data, and the ZERO pages among it */
	KPY_MU_NO_MEMMAP,       /* above the last struct page: left out at levels 2-31, and
				   not in makedumpfile's total (a QEMU dump's VRAM, mem=) */
	KPY_MU_CLASSES
};
#define KPY_MU_CODECS 5         /* slots: none, zlib, lzo, zstd, snappy (kpy_codecs order) */
#define KPY_MU_UNCOMPRESSED 0x40000000   /* in kpy_usage_opts.codecs: no codec but none */

struct kpy_usage_opts {
	int codecs;               /* KPY_CODEC_* bits to sample (KPY_MU_UNCOMPRESSED alone:
				     none); 0: every available codec */
	uint64_t sample_target;   /* about this many frames sampled (0: 16384) */
	const char *vmcoreinfo;   /* NULL, or VMCOREINFO text that supplies or replaces the */
	size_t vmcoreinfo_len;    /* input's */
	/* A /proc/iomem-format file whose "Crash kernel" ranges are left out, as the capture
	 * kernel's /proc/vmcore leaves them out; NULL: /proc/iomem when the input is on
	 * procfs (/proc/kcore), else none */
	const char *iomem;
};

struct kpy_usage_stats {
	uint32_t page_size;
	uint64_t max_pfn;         /* frames a dump's bitmaps cover */
	uint64_t notes_size;      /* bytes of PT_NOTE a kdump dump's sub header carries */
	uint64_t pages_total;     /* frames below the last struct page (makedumpfile's total) */
	uint64_t nr_runs;         /* runs of present frames (an ELF dump's PT_LOADs, about) */
	uint64_t crash_reserved;  /* frames left out: the capture kernel's reserve */
	uint64_t pages[KPY_MU_CLASSES];
	uint64_t zero;            /* all-zero frames among KPY_MU_KERNEL (makedumpfile's ZERO) */
	uint64_t elf_zero_out;    /* of them, those an ELF dump at level 31 leaves out (runs
				     of KPY_ELF_EXCLUDE_RUN, and zeros that end a segment) */
	uint64_t stride;          /* every stride-th frame was sampled */
	uint64_t sampled[KPY_MU_CLASSES];        /* frames sampled per class */
	uint64_t sampled_zero[KPY_MU_CLASSES];   /* of them all-zero */
	/* compressed bytes of the sampled non-zero frames per codec slot (a page when the
	 * codec does not shrink it, as the writer stores it raw); -1: codec not sampled */
	int64_t sampled_bytes[KPY_MU_CLASSES][KPY_MU_CODECS];
	int64_t zero_page_bytes[KPY_MU_CODECS];  /* the codec's size of an all-zero page */
	uint64_t elapsed_ns;
	uint64_t err_offset;
	char message[KPY_MSG_LEN];
};

/* 0, or -errno with stats->message (-ENOTSUP: no VMCOREINFO or not x86_64). */
int kpy_vmcore_mem_usage(int in_fd, const struct kpy_usage_opts *opts,
			 struct kpy_usage_stats *stats);
/* Predicted size in bytes of a dump written at dump_level with codec (KPY_CODEC_*) in
 * format (KPY_FMT_*); -1 when that codec was not sampled. */
int64_t kpy_usage_predict(const struct kpy_usage_stats *stats, int dump_level, int format,
			  int codec);
/* The codec slot (0..KPY_MU_CODECS-1) of a KPY_CODEC_* value, or -1. */
int kpy_usage_codec_slot(int codec);

/* Rebuild the file a flattened stream describes: records from in_fd to out_fd. */
struct kpy_flat_stats {
	uint64_t records;
	uint64_t bytes;
	uint64_t file_size;
	uint64_t err_offset;      /* stream offset of a bad record */
	char message[KPY_MSG_LEN];
};
int kpy_flat_rearrange(int in_fd, int out_fd, struct kpy_flat_stats *stats);

/* Reading dumps: ELF, kdump-compressed, either of them flattened. */
struct kpy_dump;

struct kpy_dump_info {
	int format;               /* KPY_FMT_* */
	int flattened;
	int codec;                /* kdump: status codec bits */
	int incomplete;
	int dump_level;           /* kdump: from the sub header; ELF: -1 */
	uint32_t page_size;
	uint64_t max_pfn;
	uint64_t nr_frames;       /* frames present in the dump */
	uint64_t notes_size;
	uint64_t vmcoreinfo_size;
	uint64_t phys_base;
	uint16_t elf_machine;
	int nr_cpus;
	char machine[65];
	char release[65];
	uint64_t err_offset;      /* when kpy_dump_open fails: where */
	char message[KPY_MSG_LEN];
};

/* Open a dump (fd stays the caller's; keep it open until kpy_dump_close). */
int kpy_dump_open(int fd, struct kpy_dump **out, struct kpy_dump_info *info);
/* Same, with VMCOREINFO text (makedumpfile -g/-i format) that supplies or replaces the
 * dump's (ELF dumps only: -ENOTSUP for kdump-compressed ones, which carry their own). */
int kpy_dump_open_info(int fd, const char *vmcoreinfo, size_t vmcoreinfo_len,
		       struct kpy_dump **out, struct kpy_dump_info *info);
void kpy_dump_close(struct kpy_dump *d);
/* One frame into buf (page_size bytes): 0, -ENOENT (not in the dump), -ENODATA (lost:
 * the dump is incomplete), -EBADMSG (does not decode), -EIO. */
int kpy_dump_read_page(struct kpy_dump *d, uint64_t pfn, void *buf);
/* First run of present frames at or after pfn: 0 and start, count; or -ENOENT. */
int kpy_dump_next_run(struct kpy_dump *d, uint64_t pfn, uint64_t *start, uint64_t *count);
/* Copy up to len bytes of the notes (PT_NOTE blob) or of the VMCOREINFO text. */
int kpy_dump_notes(struct kpy_dump *d, void *buf, size_t len);
int kpy_dump_vmcoreinfo(struct kpy_dump *d, void *buf, size_t len);
/* Physical bytes across frames: 0, or kpy_dump_read_page's errors. */
int kpy_dump_read_phys(struct kpy_dump *d, uint64_t paddr, void *buf, size_t len);
/* Kernel virtual addresses (x86_64: kernel text, direct map, page-table walk from
 * init_top_pgt): 0, -ENOTSUP (not x86_64 or no VMCOREINFO), -EFAULT (not mapped). */
int kpy_dump_vtop(struct kpy_dump *d, uint64_t vaddr, uint64_t *paddr);
int kpy_dump_read_virt(struct kpy_dump *d, uint64_t vaddr, void *buf, size_t len);
/* The kernel log as kexec-tools' vmcore-dmesg prints it: *text (free with kpy_free) and
 * *len; -ENOENT when VMCOREINFO lacks a key (kpy_dump_error_message names it). */
int kpy_dump_dmesg(struct kpy_dump *d, char **text, size_t *len);
void kpy_free(void *p);

/* File offset and message of the last failure. */
uint64_t kpy_dump_error_offset(const struct kpy_dump *d);
const char *kpy_dump_error_message(const struct kpy_dump *d);
/* "zlib", "lzo", "zstd", "snappy" or "none" for a KPY_CODEC_* value. */
const char *kpy_codec_name(int codec);
/* Every codec of the kdump format, in the order the tools list them, ended by -1: the
 * one table Python's names come from (with kpy_codec_name). */
extern const int kpy_codecs[];

struct kpy_verify_stats {
	uint64_t frames;          /* frames the dump lists */
	uint64_t ok;
	uint64_t lost;            /* descriptor zero (incomplete dump) */
	uint64_t bad;             /* does not decode to a page */
	uint64_t first_bad_pfn;
	uint64_t first_bad_offset;
};
/* Decode every page; 0 when all listed pages decode (lost ones are counted). */
int kpy_dump_verify(struct kpy_dump *d, struct kpy_verify_stats *st, kpy_progress_fn fn,
		    void *arg);

#endif
