/*
 * vmcore.h - internal interfaces of the vmcore copier (not installed, not for cffi).
 *
 * Pieces, bottom up:
 *   src.c        a byte source: a plain file, or a flattened stream seen as the file
 *                it describes (an index of its records)
 *   elf_in.c     an ELF vmcore as a sorted list of page-frame runs (each frame once)
 *   notes.c      PT_NOTE blob: VMCOREINFO lookup, NT_PRSTATUS count
 *   codec.c      per-page compression and decompression (zlib, lzo, zstd, snappy)
 *   batch.c      filling a batch of frames (mmap window or read()) and compressing it
 *   sink.c       the output: a file (pwrite, size cap) or a flattened stream
 *   kdump_out.c  kdump-compressed writer; elf_out.c  ELF writer
 *   pool.c       worker threads and the in-order hand-over to the writer
 *   copy.c       kpy_vmcore_copy(): the whole copy
 *   kdump_in.c, dump.c   reading dumps back (Python open(), --verify)
 *   flat.c       flattened stream: rearrange (-R)
 *   kdump_view.c, xc_core.c   kdump-compressed and Xen xc_core inputs as runs of frames
 *   usage.c      --mem-usage: page classes counted, dump sizes predicted (no output)
 */
#ifndef KPY_VMCORE_H
#define KPY_VMCORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kexecpy.h"

#define KPY_BATCH_PAGES     512        /* most frames per batch */
#define KPY_BATCH_BYTES     (2u << 20) /* a batch covers at most 2 MiB (64 KiB pages: 32) */
#define KPY_ELF_EXCLUDE_RUN 256        /* zero runs this long leave an ELF PT_LOAD */
#define KPY_ELF_MAX_SPLITS  32768      /* PT_LOAD splits reserved for zero runs */
#define KPY_DESC_CHUNK      4096       /* page descriptors per table write */
#define KPY_FLAT_HDR_SIZE   4096
#define KPY_PAGE_ZERO       0x80000000u /* internal per-page flag: all-zero frame */

#define KPY_MSG(msgbuf, ...) snprintf((msgbuf), KPY_MSG_LEN, __VA_ARGS__)

/* ---- src.c ---- */
struct kpy_extent {
	uint64_t dst;   /* offset in the described file */
	uint64_t len;
	uint64_t src;   /* offset of the bytes in the stream file */
};

struct kpy_src {
	int fd;
	int is_reg;               /* regular file: size is known, mmap may work */
	int flattened;            /* reads go through ext[] */
	uint64_t size;            /* logical size (flattened: end of the highest record) */
	struct kpy_extent *ext;
	uint64_t *maxend;         /* running maximum of ext[i].dst + len */
	size_t next;
	uint64_t err_off;         /* logical offset of the last failed read */
};

int kpy_src_open(struct kpy_src *s, int fd, char *msg);
int kpy_src_pread(struct kpy_src *s, void *buf, size_t len, uint64_t off);
void kpy_src_close(struct kpy_src *s);
int kpy_flat_is_header(const unsigned char *buf, size_t len);

/* ---- notes.c ---- */
struct kpy_notes {
	unsigned char *buf;
	size_t size;
	size_t vmcoreinfo_off;     /* offset of the VMCOREINFO descriptor in buf */
	size_t vmcoreinfo_size;    /* 0: no VMCOREINFO note */
	int nr_prstatus;
};

void kpy_notes_scan(struct kpy_notes *n);
int kpy_notes_add_vmcoreinfo(struct kpy_notes *n, const char *text, size_t len, char *msg);
/* Value of KEY= in VMCOREINFO as a NUL-terminated string in out; 0 or -ENOENT. */
int kpy_vmcoreinfo_get(const struct kpy_notes *n, const char *key, char *out, size_t outlen);
int kpy_vmcoreinfo_u64(const struct kpy_notes *n, const char *key, int base, uint64_t *val);

/* ---- elf_in.c ---- */
enum { KPY_RUN_DIRECT = 0, KPY_RUN_ZERO = 1, KPY_RUN_MIXED = 2 };

struct kpy_run {           /* page frames [pfn, pfn + count) */
	uint64_t pfn, count;
	uint64_t off;          /* DIRECT: file offset of frame pfn */
	uint64_t vaddr;        /* virtual address of frame pfn (for ELF output) */
	int kind;
};

struct kpy_piece {         /* physical bytes [paddr, end) and where they are */
	uint64_t paddr, end, off, vaddr;
	int zero;              /* memsz beyond filesz: reads as zeros */
};

struct kpy_kdump_in;          /* dump.h */

struct kpy_elf {
	struct kpy_src src;
	uint16_t machine;
	uint32_t e_flags;
	uint32_t page_size;
	struct kpy_piece *pieces;
	size_t npieces;
	struct kpy_run *runs;
	size_t nruns;
	uint64_t nr_frames, max_pfn;
	struct kpy_notes notes;
	uint64_t kernel_vaddr, kernel_paddr;   /* the kernel-text PT_LOAD, if any */
	int have_kernel_text;
	struct kpy_kdump_in *kd;   /* the input is kdump-compressed (kdump_view.c) */
	pthread_mutex_t kd_lock;
	int kd_lock_ok;
	uint64_t kd_err_off;
	int xen;                   /* the input is a Xen xc_core dump (xc_core.c) */
	uint64_t *xen_m2p;         /* PV: {gmfn, pfn} pairs sorted by gmfn */
	size_t xen_nm2p;
};

enum { KPY_XEN_HVM = 1, KPY_XEN_PV = 2 };

int kpy_elf_open(struct kpy_elf *e, int fd, char *msg, uint64_t *err_off);
int kpy_elf_open_info(struct kpy_elf *e, int fd, const char *vmcoreinfo, size_t vmcoreinfo_len,
		      char *msg, uint64_t *err_off);
/* Same, from a source already opened (e takes it over). */
int kpy_elf_attach(struct kpy_elf *e, const struct kpy_src *src, char *msg, uint64_t *err_off);
/* Same, with a VMCOREINFO text (NULL: none) that replaces or supplies the dump's. */
int kpy_elf_attach_info(struct kpy_elf *e, const struct kpy_src *src, const char *vmcoreinfo,
			size_t vmcoreinfo_len, char *msg, uint64_t *err_off);
void kpy_elf_close(struct kpy_elf *e);
/* Read n frames of run r starting at frame pfn into buf (n * page_size bytes). */
int kpy_elf_read_frames(struct kpy_elf *e, const struct kpy_run *r, uint64_t pfn,
			uint64_t n, unsigned char *buf);
/* kdump_view.c: a kdump-compressed input in the same shape (runs of present frames). */
int kpy_elf_attach_kdump(struct kpy_elf *e, const char *vmcoreinfo, size_t vmcoreinfo_len,
			 char *msg, uint64_t *err_off);
int kpy_elf_read_kdump(struct kpy_elf *e, uint64_t pfn, uint64_t n, unsigned char *buf);
void kpy_elf_close_kdump(struct kpy_elf *e);
/* xc_core.c: a Xen domain dump (ELF with sections, no program headers). */
int kpy_elf_attach_xen(struct kpy_elf *e, const unsigned char *ehdr, char *msg,
		       uint64_t *err_off);
/* PV: machine frame -> pseudo-physical frame (a kpy_x86 m2p hook); 0 or -EFAULT. */
int kpy_elf_xen_m2p(void *elf, uint64_t mfn, uint64_t *pfn);
/* Run holding pfn, or NULL. */
const struct kpy_run *kpy_elf_find_run(const struct kpy_elf *e, uint64_t pfn);
int kpy_elf_read_vaddr(struct kpy_elf *e, uint64_t vaddr, void *buf, size_t len);

/* ---- x86_64.c: kernel virtual -> physical ---- */
#define KPY_X86_KERNEL_MAP 0xffffffff80000000ull   /* __START_KERNEL_map */
#define KPY_EM_X86_64 62                           /* e_machine */

/* Reads physical memory: 0, -ENOENT (not in the dump), other -errno. */
typedef int (*kpy_phys_read_fn)(void *ctx, uint64_t paddr, void *buf, size_t len);

struct kpy_x86 {
	kpy_phys_read_fn read;
	void *ctx;
	uint64_t phys_base, kernel_offset;
	uint64_t top_pgt_vaddr;            /* SYMBOL(init_top_pgt) */
	int levels;                        /* 4 or 5 (NUMBER(pgtable_l5_enabled)) */
	int have_phys_base, have_top_pgt, have_page_offset;
	uint64_t page_offset, direct_end;  /* direct map [page_offset, direct_end) */
	uint64_t tlb_vaddr, tlb_paddr, tlb_size;   /* last large leaf of a walk */
	/* Xen PV: page tables hold machine frames; translate them (NULL: identity) */
	int (*m2p)(void *m2p_ctx, uint64_t mfn, uint64_t *pfn);
	void *m2p_ctx;
};

int kpy_x86_init(struct kpy_x86 *x, const struct kpy_notes *n, kpy_phys_read_fn read,
		 void *ctx);
/* phys_base when VMCOREINFO lacks NUMBER(phys_base) (kernel-text PT_LOAD, kdump header) */
void kpy_x86_set_phys_base(struct kpy_x86 *x, uint64_t phys_base);
void kpy_x86_set_page_offset(struct kpy_x86 *x, uint64_t page_offset, uint64_t end);
/* Page-table walks translate machine frames through the input's m2p (Xen PV dumps). */
void kpy_x86_from_elf_input(struct kpy_x86 *x, struct kpy_elf *e);
/* 0, -ENOENT (no way to translate), -EFAULT (not mapped), or the reader's error */
int kpy_x86_vtop(struct kpy_x86 *x, uint64_t vaddr, uint64_t *paddr);
int kpy_x86_read(struct kpy_x86 *x, uint64_t vaddr, void *buf, size_t len);

/* ---- filter.c: dump levels 2-31 (page classification) ---- */
#define KPY_FILTER_WINDOW (1ull << 19)    /* frames per window (64 KiB of bitmap) */

struct kpy_filter {
	struct kpy_elf *in;
	struct kpy_x86 x86;
	int level;
	char *msg;
	uint64_t window, win_start, windows, unreadable;
	uint64_t *keep;                       /* window bitmap: 1 = keep */
	unsigned char *why;                   /* NULL, or per window frame: KPY_MU_* class */
	unsigned char *pages;                 /* struct pages being classified */
	unsigned char *frame;                 /* one input frame (page-table reads) */
	uint64_t frame_pfn;
	int frame_ok;
	/* SPARSEMEM */
	uint64_t mem_section, ms_size, ms_map_off, per_root;
	unsigned section_shift;               /* SECTION_SIZE_BITS - PAGE_SHIFT */
	uint64_t sec_nr, sec_map;
	int sec_valid;
	uint64_t memmap_end;                  /* frames from here on have no struct page */
	int memmap_end_known;
	/* struct page */
	uint64_t sp_size, off_flags, off_mapping, off_mapcount, off_private, off_head;
	uint64_t off_order, off_dtor, head_mask;
	int have_mapcount, have_private, have_head, have_order, have_dtor, have_head_mask;
	int64_t pg_lru, pg_private, pg_swapcache, pg_swapbacked, pg_slab, pg_hwpoison;
	int64_t hugetlb_dtor;
	int32_t buddy_val, offline_val, slab_val, hugetlb_val;
	int have_swapbacked, have_slab, have_slab_val, have_hwpoison, have_offline;
	int have_hugetlb_dtor, have_hugetlb_val;
};

/* Feature checks: -ENOTSUP with msg naming the VMCOREINFO key a requested bit needs. */
int kpy_filter_init(struct kpy_filter *f, struct kpy_elf *in, int level, uint64_t window,
		    int classes, char *msg);
void kpy_filter_fini(struct kpy_filter *f);
/* 1 keep frame pfn, 0 leave it out. Frames are best asked for in increasing order. */
int kpy_filter_keep(struct kpy_filter *f, uint64_t pfn);
/* With classes: KPY_MU_KERNEL (kept), the class of the rule that left pfn out, or
 * KPY_MU_NO_MEMMAP (above the last struct page: never part of a filtered dump). */
int kpy_filter_class(struct kpy_filter *f, uint64_t pfn);

/* ---- codec.c ---- */
struct kpy_codec {
	int codec;
	uint32_t page_size;
	void *zs;              /* z_stream */
	void *lzo_wrk;
	void *zcctx, *zdctx;   /* ZSTD_CCtx / ZSTD_DCtx */
	size_t bound;          /* worst-case compressed size of one page */
	unsigned char zero_out[64];  /* the codec's encoding of an all-zero page */
	size_t zero_len;             /* 0: none cached */
};

int kpy_codec_init(struct kpy_codec *c, int codec, uint32_t page_size);
void kpy_codec_fini(struct kpy_codec *c);
/* Compress one page into out (capacity >= c->bound). Returns the size, or 0 when the
 * result would not be smaller than a page (store raw), or -errno. */
long kpy_codec_compress(struct kpy_codec *c, const unsigned char *page, unsigned char *out);
/* Decode len bytes flagged with codec into a page; -EBADMSG unless exactly a page. */
int kpy_codec_decompress(struct kpy_codec *c, int flags, const unsigned char *in, size_t len,
			 unsigned char *page);
int kpy_codec_available(int codec);
const char *kpy_machine_name(uint16_t em);
void kpy_fill_utsname(struct kpy_elf *e, unsigned char uts[390]);
int kpy_page_is_zero(const unsigned char *p, size_t len);

/* ---- batch.c ---- */
enum { KPY_SLOT_FREE = 0, KPY_SLOT_READY, KPY_SLOT_BUSY, KPY_SLOT_DONE };

struct kpy_pmeta {
	uint32_t size;      /* bytes stored for the page (compressed or raw) */
	uint32_t flags;     /* codec flag, 0 = raw, KPY_PAGE_ZERO */
	uint32_t out_off;   /* offset in batch->out when compressed */
};

struct kpy_batch {
	uint64_t seq;
	const struct kpy_run *run;
	uint64_t pfn, n;
	const unsigned char *data;   /* n pages: mmap window or bounce */
	void *map;
	size_t map_len;
	unsigned char *bounce;
	unsigned char *out;
	size_t out_cap, out_len;
	struct kpy_pmeta *meta;
	int err;
	uint64_t err_off;
	int state;
};

struct kpy_copy_ctx;
static inline uint64_t kpy_batch_pages(uint32_t page_size)
{
	uint64_t n = KPY_BATCH_BYTES / page_size;

	return n > KPY_BATCH_PAGES ? KPY_BATCH_PAGES : n ? n : 1;
}

int kpy_batch_alloc(struct kpy_batch *b, uint32_t page_size, int compress, size_t bound);
void kpy_batch_free(struct kpy_batch *b);
void kpy_batch_release(struct kpy_batch *b);
void kpy_batch_process(struct kpy_copy_ctx *cx, struct kpy_codec *codec, struct kpy_batch *b);

/* ---- sink.c ---- */
struct kpy_sink {
	int fd;
	int flattened;
	uint64_t limit;          /* 0: none; else the file may not grow past it */
	uint64_t bytes;          /* bytes of payload written */
	uint64_t end;            /* highest offset + 1 written */
	uint64_t err_off;
};

int kpy_sink_start(struct kpy_sink *s);
int kpy_sink_writev(struct kpy_sink *s, const struct iovec *iov, int cnt, uint64_t off,
		    uint64_t *done);
int kpy_sink_pwrite(struct kpy_sink *s, const void *buf, size_t len, uint64_t off);
int kpy_sink_sync(struct kpy_sink *s);     /* fdatasync a file output */
int kpy_sink_reserve(struct kpy_sink *s, uint64_t len);
int kpy_sink_reserve_range(struct kpy_sink *s, uint64_t start, uint64_t len);
int kpy_sink_finish(struct kpy_sink *s);

/* ---- the copy context (copy.c) ---- */
struct kpy_writer_ops;

struct kpy_copy_ctx {
	struct kpy_elf in;
	struct kpy_sink out;
	struct kpy_copy_opts opts;
	struct kpy_copy_stats *st;
	uint32_t page_size;
	int use_mmap;
	size_t host_page;
	/* batch iterator */
	size_t run_idx;
	uint64_t run_pos;
	uint64_t frames_done;
	unsigned last_permille;
	struct kpy_filter *filter;   /* dump levels 2-31; NULL keeps every frame */
	int iter_err;                /* a filter failure seen by kpy_next_batch */
	/* writer state */
	const struct kpy_writer_ops *ops;
	void *w;
};

struct kpy_writer_ops {
	int (*begin)(struct kpy_copy_ctx *cx);
	int (*batch)(struct kpy_copy_ctx *cx, struct kpy_batch *b);
	int (*end)(struct kpy_copy_ctx *cx, int complete);
	void (*free)(struct kpy_copy_ctx *cx);
};

extern const struct kpy_writer_ops kpy_kdump_writer;
/* kdump_out.c's layout: blocks of the sub header with the notes, and of each bitmap */
void kpy_kdump_blocks(uint64_t bs, uint64_t notes_size, uint64_t max_pfn,
		      uint64_t *sub_blocks, uint64_t *bitmap_blocks);
extern const struct kpy_writer_ops kpy_elf_writer;

int kpy_next_batch(struct kpy_copy_ctx *cx, struct kpy_batch *b);
int kpy_run_pipeline(struct kpy_copy_ctx *cx);
int kpy_progress(struct kpy_copy_ctx *cx, uint64_t frames);
int kpy_space_error(int err);

/* ---- byte order helpers (dump files are written little-endian) ---- */
static inline void kpy_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void kpy_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void kpy_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint16_t kpy_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t kpy_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t kpy_get64(const unsigned char *p)
{
	return (uint64_t)kpy_get32(p) | ((uint64_t)kpy_get32(p + 4) << 32);
}

static inline void kpy_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static inline uint64_t kpy_get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int kpy_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* read() exactly len bytes (a pipe may return less per call); -ENODATA at end of input. */
int kpy_read_full(int fd, void *buf, size_t len);
int kpy_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
uint64_t kpy_now_ns(void);

#endif
