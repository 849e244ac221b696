/*
 * kdump_out.c - the kdump-compressed ("diskdump") writer. Layout in blocks of one page
 * (docs/formats/kdump-compressed.md):
 *
 *   0              main header (status says which codec; incomplete until the end)
 *   1 ..           sub header, then the input's PT_NOTE blob
 *   bitmap1_off    1st bitmap: frame is RAM;  bitmap2_off: frame is in the dump
 *   table_off      one 24-byte page descriptor per frame in the 2nd bitmap, frame order
 *   data_start     the shared zero page (dump level 1), then page data in frame order
 *
 * Memory stays flat: bitmaps are generated a chunk at a time from the input's runs, and
 * descriptors are written to the table in chunks, each only after the data it points at
 * has been written - so a dump cut short by a full disk lists only pages that are there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

#define SUB_HDR_SIZE 104
#define DESC_SIZE 24
#define BITMAP_CHUNK 65536

struct kdump_w {
	uint64_t bs, sub_blocks, bitmap_bytes, bitmap_blocks;
	uint64_t bitmap1_off, bitmap2_off, table_off, data_start, data_off;
	unsigned char zero_desc[DESC_SIZE];
	int share_zero;
	unsigned char *chunk;          /* descriptors not yet in the table */
	size_t chunk_n;
	uint64_t chunk_first;          /* index of chunk[0] in the table */
	struct iovec *iov;
	uint64_t *page_end;            /* per page of a batch: data bytes up to its end */
	unsigned char *block;
};

static void build_main_header(struct kpy_copy_ctx *cx, struct kdump_w *w, unsigned char *b,
			      uint32_t status)
{
	uint64_t crashtime = 0;

	memset(b, 0, w->bs);
	memcpy(b, "KDUMP   ", 8);
	kpy_put32(b + 8, 6);
	kpy_fill_utsname(&cx->in, b + 12);
	kpy_vmcoreinfo_u64(&cx->in.notes, "CRASHTIME", 10, &crashtime);
	kpy_put64(b + 408, crashtime);
	kpy_put32(b + 424, status);
	kpy_put32(b + 428, (uint32_t)w->bs);
	kpy_put32(b + 432, (uint32_t)w->sub_blocks);
	kpy_put32(b + 436, (uint32_t)(2 * w->bitmap_blocks));
	kpy_put32(b + 440, cx->in.max_pfn > UINT32_MAX ? UINT32_MAX : (uint32_t)cx->in.max_pfn);
	kpy_put32(b + 460, (uint32_t)cx->in.notes.nr_prstatus);
}

static uint64_t phys_base(struct kpy_elf *e)
{
	char buf[32];

	if (kpy_vmcoreinfo_get(&e->notes, "NUMBER(phys_base)", buf, sizeof(buf)) == 0)
		return (uint64_t)strtoll(buf, NULL, 0);
	if (e->have_kernel_text)
		return e->kernel_paddr - (e->kernel_vaddr - 0xffffffff80000000ull);
	return 0;
}

static int write_sub_header(struct kpy_copy_ctx *cx, struct kdump_w *w)
{
	size_t len = (size_t)(w->sub_blocks * w->bs);
	unsigned char *b = calloc(1, len);
	const struct kpy_notes *n = &cx->in.notes;
	int ret;

	if (!b)
		return -ENOMEM;
	kpy_put64(b + 0, phys_base(&cx->in));
	kpy_put32(b + 8, (uint32_t)cx->opts.dump_level);
	if (n->vmcoreinfo_size) {
		kpy_put64(b + 32, w->bs + SUB_HDR_SIZE + n->vmcoreinfo_off);
		kpy_put64(b + 40, n->vmcoreinfo_size);
	}
	kpy_put64(b + 48, w->bs + SUB_HDR_SIZE);
	kpy_put64(b + 56, n->size);
	kpy_put64(b + 96, cx->in.max_pfn);
	if (n->size)          /* an input with no notes (xc_core) has no buffer at all */
		memcpy(b + SUB_HDR_SIZE, n->buf, n->size);
	ret = kpy_sink_pwrite(&cx->out, b, len, w->bs);
	free(b);
	return ret;
}

/* Bitmap bytes [lo, lo + len) for the frames of every run. */
static void bitmap_chunk(const struct kpy_elf *e, unsigned char *buf, uint64_t lo, size_t len)
{
	uint64_t first = lo * 8, last = (lo + len) * 8;

	memset(buf, 0, len);
	for (size_t i = 0; i < e->nruns; i++) {
		uint64_t a = e->runs[i].pfn, b = a + e->runs[i].count;
		if (b <= first || a >= last)
			continue;
		if (a < first)
			a = first;
		if (b > last)
			b = last;
		for (uint64_t p = a - first; p < b - first; p++)
			buf[p >> 3] |= (unsigned char)(1u << (p & 7));
	}
}

/* The 2nd bitmap's chunk: RAM frames the filter keeps; counts them into *kept. */
static int filter_chunk(struct kpy_copy_ctx *cx, unsigned char *buf, uint64_t lo, size_t len,
			uint64_t *kept)
{
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			if (!(buf[i] & (1u << bit)))
				continue;
			int k = kpy_filter_keep(cx->filter, (lo + i) * 8 + (uint64_t)bit);
			if (k < 0)
				return k;
			if (k)
				(*kept)++;
			else
				buf[i] &= (unsigned char)~(1u << bit);
		}
	}
	return 0;
}

/* Both bitmaps, a chunk at a time; *kept = frames set in the 2nd. */
static int write_bitmaps(struct kpy_copy_ctx *cx, struct kdump_w *w, uint64_t *kept)
{
	unsigned char *buf = malloc(BITMAP_CHUNK);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	*kept = cx->in.nr_frames;
	if (cx->filter)
		*kept = 0;
	for (uint64_t lo = 0; lo < w->bitmap_bytes && !ret; lo += BITMAP_CHUNK) {
		size_t len = w->bitmap_bytes - lo < BITMAP_CHUNK ? (size_t)(w->bitmap_bytes - lo)
								  : BITMAP_CHUNK;
		bitmap_chunk(&cx->in, buf, lo, len);
		ret = kpy_sink_pwrite(&cx->out, buf, len, w->bitmap1_off + lo);
		/* dump levels 0 and 1 keep every RAM frame: both bitmaps are the same */
		if (!ret && cx->filter)
			ret = filter_chunk(cx, buf, lo, len, kept);
		if (!ret)
			ret = kpy_sink_pwrite(&cx->out, buf, len, w->bitmap2_off + lo);
	}
	free(buf);
	return ret;
}

void kpy_kdump_blocks(uint64_t bs, uint64_t notes_size, uint64_t max_pfn,
		      uint64_t *sub_blocks, uint64_t *bitmap_blocks)
{
	*sub_blocks = (SUB_HDR_SIZE + notes_size + bs - 1) / bs;
	*bitmap_blocks = ((max_pfn + 7) / 8 + bs - 1) / bs;
}

static void layout(struct kpy_copy_ctx *cx, struct kdump_w *w)
{
	w->bs = cx->page_size;
	w->bitmap_bytes = (cx->in.max_pfn + 7) / 8;
	kpy_kdump_blocks(w->bs, cx->in.notes.size, cx->in.max_pfn, &w->sub_blocks,
			 &w->bitmap_blocks);
	w->bitmap1_off = (1 + w->sub_blocks) * w->bs;
	w->bitmap2_off = w->bitmap1_off + w->bitmap_blocks * w->bs;
	w->table_off = w->bitmap2_off + w->bitmap_blocks * w->bs;
	w->share_zero = cx->opts.dump_level & 1;
}

static int write_zero_page(struct kpy_copy_ctx *cx, struct kdump_w *w)
{
	unsigned char *zero = calloc(1, w->bs);
	int ret;

	if (!zero)
		return -ENOMEM;
	ret = kpy_sink_pwrite(&cx->out, zero, w->bs, w->data_start);
	free(zero);
	kpy_put64(w->zero_desc, w->data_start);
	kpy_put32(w->zero_desc + 8, (uint32_t)w->bs);
	w->data_off = w->data_start + w->bs;
	return ret;
}

static int kd_begin(struct kpy_copy_ctx *cx)
{
	struct kdump_w *w = calloc(1, sizeof(*w));
	uint64_t kept;
	int ret;

	if (!w)
		return -ENOMEM;
	cx->w = w;
	layout(cx, w);
	w->chunk = malloc((KPY_DESC_CHUNK + KPY_BATCH_PAGES) * DESC_SIZE);
	w->iov = malloc(KPY_BATCH_PAGES * sizeof(*w->iov));
	w->page_end = malloc(KPY_BATCH_PAGES * sizeof(*w->page_end));
	w->block = malloc(w->bs);
	if (!w->chunk || !w->iov || !w->page_end || !w->block)
		return -ENOMEM;
	/* the bitmaps first: with a page filter they say how long the table is */
	if ((ret = kpy_sink_reserve(&cx->out, w->table_off)) ||
	    (ret = write_bitmaps(cx, w, &kept)))
		return ret;
	w->data_start = w->table_off + kept * DESC_SIZE;
	if ((ret = kpy_sink_reserve_range(&cx->out, w->table_off,
					  w->data_start + (w->share_zero ? w->bs : 0))))
		return ret;
	build_main_header(cx, w, w->block, (uint32_t)cx->opts.codec | KPY_DUMP_INCOMPLETE);
	if ((ret = kpy_sink_pwrite(&cx->out, w->block, w->bs, 0)) ||
	    (ret = write_sub_header(cx, w)))
		return ret;
	w->data_off = w->data_start;
	return w->share_zero ? write_zero_page(cx, w) : 0;
}

static int flush_descs(struct kpy_copy_ctx *cx, struct kdump_w *w)
{
	int ret = 0;

	if (w->chunk_n)
		ret = kpy_sink_pwrite(&cx->out, w->chunk, w->chunk_n * DESC_SIZE,
				      w->table_off + w->chunk_first * DESC_SIZE);
	w->chunk_first += w->chunk_n;
	w->chunk_n = 0;
	return ret;
}

/* iov entries and descriptors (in the chunk, not yet counted) for a batch's pages */
static int build_batch(struct kpy_copy_ctx *cx, struct kdump_w *w, struct kpy_batch *b)
{
	uint64_t pos = 0;
	int niov = 0;

	for (uint64_t i = 0; i < b->n; i++) {
		const struct kpy_pmeta *m = &b->meta[i];
		unsigned char *d = w->chunk + (w->chunk_n + i) * DESC_SIZE;
		const unsigned char *src;

		if ((m->flags & KPY_PAGE_ZERO) && w->share_zero) {
			memcpy(d, w->zero_desc, DESC_SIZE);
			w->page_end[i] = pos;
			continue;
		}
		uint32_t codec = m->flags & ~KPY_PAGE_ZERO;
		src = codec ? b->out + m->out_off : b->data + i * cx->page_size;
		memset(d, 0, DESC_SIZE);
		kpy_put64(d, w->data_off + pos);
		kpy_put32(d + 8, m->size);
		kpy_put32(d + 12, codec);
		if (niov && (const unsigned char *)w->iov[niov - 1].iov_base +
			    w->iov[niov - 1].iov_len == src)
			w->iov[niov - 1].iov_len += m->size;
		else
			w->iov[niov++] = (struct iovec){ (void *)src, m->size };
		pos += m->size;
		w->page_end[i] = pos;
	}
	return niov;
}

static int kd_batch(struct kpy_copy_ctx *cx, struct kpy_batch *b)
{
	struct kdump_w *w = cx->w;
	int niov = build_batch(cx, w, b), ret = 0;
	uint64_t done = 0, ok = 0;

	if (niov)
		ret = kpy_sink_writev(&cx->out, w->iov, niov, w->data_off, &done);
	while (ok < b->n && w->page_end[ok] <= done)
		ok++;                        /* pages whose data is all on disk */
	w->chunk_n += ok;
	w->data_off += done;
	cx->st->pages_written += ok;
	if (w->chunk_n >= KPY_DESC_CHUNK || ret) {
		int fret = flush_descs(cx, w);
		if (!ret)
			ret = fret;
	}
	return ret;
}

static int kd_end(struct kpy_copy_ctx *cx, int complete)
{
	struct kdump_w *w = cx->w;
	int ret = flush_descs(cx, w);

	if (!ret && complete && !(ret = kpy_sink_sync(&cx->out))) {
		/* the incomplete flag goes only once every other byte is on disk */
		build_main_header(cx, w, w->block, (uint32_t)cx->opts.codec);
		ret = kpy_sink_pwrite(&cx->out, w->block, w->bs, 0);
	}
	return ret;
}

static void kd_free(struct kpy_copy_ctx *cx)
{
	struct kdump_w *w = cx->w;

	if (!w)
		return;
	free(w->chunk);
	free(w->iov);
	free(w->page_end);
	free(w->block);
	free(w);
	cx->w = NULL;
}

const struct kpy_writer_ops kpy_kdump_writer = { kd_begin, kd_batch, kd_end, kd_free };
