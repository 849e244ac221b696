/*
 * batch.c - the unit of work: up to kpy_batch_pages() consecutive frames of one run
 * (2 MiB, at most 512 frames).
 *
 * The main thread cuts the input into batches (kpy_next_batch); a worker (or the main
 * thread when single-threaded) fills a batch - an mmap window on the input, or pread()
 * into the batch's own buffer when mmap is not possible - then finds the zero pages and
 * compresses the rest into the batch's output buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmcore.h"

/*
 * A slot's buffers are touched once here, so memory use is the same from the first
 * batch to the last: peak RSS does not depend on the dump's size or contents.
 */
static void touch(unsigned char *p, size_t len)
{
	volatile unsigned char *v = p;    /* not folded into calloc by the compiler */

	for (size_t i = 0; i < len; i += 4096)
		v[i] = 0;
}

int kpy_batch_alloc(struct kpy_batch *b, uint32_t page_size, int compress, size_t bound)
{
	size_t bytes = (size_t)kpy_batch_pages(page_size) * page_size;

	memset(b, 0, sizeof(*b));
	if (!(b->meta = calloc(KPY_BATCH_PAGES, sizeof(*b->meta))) || !(b->bounce = malloc(bytes)))
		return -ENOMEM;
	touch(b->bounce, bytes);
	if (compress) {
		b->out_cap = bytes + bound;
		if (!(b->out = malloc(b->out_cap)))
			return -ENOMEM;
		touch(b->out, b->out_cap);
	}
	return 0;
}

void kpy_batch_release(struct kpy_batch *b)
{
	if (b->map)
		munmap(b->map, b->map_len);
	b->map = NULL;
	b->data = NULL;
}

void kpy_batch_free(struct kpy_batch *b)
{
	kpy_batch_release(b);
	free(b->meta);
	free(b->out);
	free(b->bounce);
	memset(b, 0, sizeof(*b));
}

/* Dump levels 2-31: skip the left-out frames at the start of the rest of the run, then
 * cut the batch at the next left-out frame. 0, or -errno. */
static int filter_batch(struct kpy_copy_ctx *cx, const struct kpy_run *r, uint64_t *n)
{
	uint64_t skip = 0, keep = 0;
	int k = 0;

	while (cx->run_pos + skip < r->count &&
	       (k = kpy_filter_keep(cx->filter, r->pfn + cx->run_pos + skip)) == 0)
		skip++;
	if (k < 0)
		return k;
	cx->run_pos += skip;
	cx->st->pages_excluded += skip;
	cx->frames_done += skip;
	while (keep < *n && cx->run_pos + keep < r->count &&
	       (k = kpy_filter_keep(cx->filter, r->pfn + cx->run_pos + keep)) == 1)
		keep++;
	*n = keep;
	return k < 0 ? k : 0;
}

/* Describe the next batch (frames only; no data yet). 0, or -ENOENT at the end (and
 * cx->iter_err when the page filter failed). */
int kpy_next_batch(struct kpy_copy_ctx *cx, struct kpy_batch *b)
{
	const struct kpy_run *r;
	uint64_t n = kpy_batch_pages(cx->page_size);

	for (;;) {
		while (cx->run_idx < cx->in.nruns &&
		       cx->run_pos == cx->in.runs[cx->run_idx].count) {
			cx->run_idx++;
			cx->run_pos = 0;
		}
		if (cx->run_idx == cx->in.nruns || cx->iter_err)
			return -ENOENT;
		r = &cx->in.runs[cx->run_idx];
		n = kpy_batch_pages(cx->page_size);
		if (!cx->filter)
			break;
		if ((cx->iter_err = filter_batch(cx, r, &n)))
			return -ENOENT;
		if (n)
			break;
	}
	b->run = r;
	b->pfn = r->pfn + cx->run_pos;
	b->n = r->count - cx->run_pos;
	if (b->n > n)
		b->n = n;
	cx->run_pos += b->n;
	b->err = 0;
	b->out_len = 0;
	return 0;
}

static int map_window(struct kpy_copy_ctx *cx, struct kpy_batch *b)
{
	uint64_t ps = cx->page_size;
	uint64_t off = b->run->off + (b->pfn - b->run->pfn) * ps;
	uint64_t aligned = off & ~((uint64_t)cx->host_page - 1);
	size_t len = (size_t)(b->n * ps + (off - aligned));
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, cx->in.src.fd, (off_t)aligned);

	if (m == MAP_FAILED)
		return -errno;
	b->map = m;
	b->map_len = len;
	b->data = (const unsigned char *)m + (off - aligned);
	return 0;
}

static int fill(struct kpy_copy_ctx *cx, struct kpy_batch *b)
{
	int ret;

	uint64_t end = b->run->off + (b->pfn - b->run->pfn + b->n) * cx->page_size;

	/* never map past the end of the file (a dump cut short: SIGBUS on access); read()
	 * then reports the missing bytes and the copy ends as an incomplete one */
	if (b->run->kind == KPY_RUN_DIRECT && __atomic_load_n(&cx->use_mmap, __ATOMIC_RELAXED) &&
	    cx->in.src.is_reg && !cx->in.src.flattened && end <= cx->in.src.size) {
		if (map_window(cx, b) == 0)
			return 0;
		/* fall back to read() from now on */
		__atomic_store_n(&cx->use_mmap, 0, __ATOMIC_RELAXED);
	}
	if (!b->bounce &&
	    !(b->bounce = malloc((size_t)kpy_batch_pages(cx->page_size) * cx->page_size)))
		return -ENOMEM;
	ret = kpy_elf_read_frames(&cx->in, b->run, b->pfn, b->n, b->bounce);
	if (ret) {
		b->err_off = b->run->kind == KPY_RUN_DIRECT ?
			b->run->off + (b->pfn - b->run->pfn) * cx->page_size : 0;
		return ret;
	}
	b->data = b->bounce;
	return 0;
}

static void compress_page(struct kpy_copy_ctx *cx, struct kpy_codec *c, struct kpy_batch *b,
			  uint64_t i, int zero)
{
	struct kpy_pmeta *m = &b->meta[i];
	unsigned char *dst = b->out + b->out_len;
	long n;

	if (zero && c->zero_len) {
		memcpy(dst, c->zero_out, c->zero_len);
		n = (long)c->zero_len;
	} else {
		n = kpy_codec_compress(c, b->data + i * cx->page_size, dst);
	}
	if (n > 0) {
		m->size = (uint32_t)n;
		m->flags |= (uint32_t)c->codec;
		m->out_off = (uint32_t)b->out_len;
		b->out_len += (size_t)n;
	}
}

/*
 * Pages the writer takes as they are (raw) must not be written straight from an mmap of
 * /proc/vmcore: its old-memory mapping has no struct pages, and file systems that pin
 * user pages for I/O (9p, NFS, O_DIRECT) fail such writes with EFAULT. Copy them into
 * the batch's own buffer first; compressed pages are in b->out already.
 */
static int unmap_raw_pages(struct kpy_copy_ctx *cx, struct kpy_batch *b, int share_zero)
{
	size_t ps = cx->page_size;

	if (!b->map)
		return 0;
	if (!b->bounce && !(b->bounce = malloc((size_t)kpy_batch_pages(cx->page_size) * ps)))
		return -ENOMEM;
	for (uint64_t i = 0; i < b->n; i++) {
		const struct kpy_pmeta *m = &b->meta[i];
		if ((m->flags & ~KPY_PAGE_ZERO) || ((m->flags & KPY_PAGE_ZERO) && share_zero))
			continue;
		memcpy(b->bounce + i * ps, b->data + i * ps, ps);
	}
	b->data = b->bounce;
	return 0;
}

void kpy_batch_process(struct kpy_copy_ctx *cx, struct kpy_codec *c, struct kpy_batch *b)
{
	int compress = cx->opts.format == KPY_FMT_KDUMP && cx->opts.codec != KPY_CODEC_NONE;
	int share_zero = cx->opts.dump_level & 1;

	if ((b->err = fill(cx, b)))
		return;
	for (uint64_t i = 0; i < b->n; i++) {
		const unsigned char *page = b->data + i * cx->page_size;
		int zero = kpy_page_is_zero(page, cx->page_size);
		struct kpy_pmeta *m = &b->meta[i];

		m->size = cx->page_size;
		m->flags = zero ? KPY_PAGE_ZERO : 0;
		m->out_off = 0;
		if (compress && !(zero && share_zero))
			compress_page(cx, c, b, i, zero);
	}
	b->err = unmap_raw_pages(cx, b, share_zero);
}
