/*
 * elf_out.c - the ELF dump writer (makedumpfile -E): Ehdr, program headers (PT_NOTE
 * first), the notes, then segment data packed in frame order.
 *
 * At dump level 1 a run of KPY_ELF_EXCLUDE_RUN or more zero frames ends a PT_LOAD: its
 * p_memsz covers the run (readers zero-fill it) and the next PT_LOAD starts at the next
 * non-zero frame. Shorter runs are written. Frames the page filter leaves out (levels
 * 2-31) end a PT_LOAD too, with nothing in p_memsz for them: they are not in the dump.
 * Room for the program headers is reserved right after the Ehdr (where crash looks for
 * them): one per run of frames the filter keeps (counted in a first pass over the
 * filter, as makedumpfile does) plus the zero-run splits; when the splits' share is used
 * up, further zero runs are written instead. Past 65534 program headers e_phnum is
 * PN_XNUM and the count is in section header 0's sh_info.
 * The Ehdr and program headers are written last; until then e_flags bit 0 says the dump
 * is incomplete, and a dump cut short keeps only segments whose data is in the file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define SHDR_SIZE 64
#define PN_XNUM 0xffff
#define ZERO_BUF (64 * 1024)

struct seg { uint64_t off, vaddr, paddr, filesz, memsz; };

struct elf_w {
	uint64_t reserve, shdr_off, notes_off, data_start, data_off, pending;
	struct seg *segs;
	size_t nsegs, splits_left;
	int open;
	struct seg cur;
	uint64_t next_pfn, zrun;
	struct iovec *iov;
	int niov, iov_cap, nomem;
	unsigned char *zero;
};

/* Runs of consecutive frames the dump will hold: the input's, cut where the filter
 * (levels 2-31) leaves frames out. 0 and *groups, or -errno. */
static int count_groups(struct kpy_copy_ctx *cx, uint64_t *groups)
{
	const struct kpy_elf *e = &cx->in;
	uint64_t g = 0, next = UINT64_MAX;

	for (size_t i = 0; i < e->nruns; i++) {
		const struct kpy_run *r = &e->runs[i];
		if (!cx->filter) {             /* the whole run is kept */
			g += r->pfn != next;
			next = r->pfn + r->count;
			continue;
		}
		for (uint64_t pfn = r->pfn; pfn < r->pfn + r->count; pfn++) {
			int k = kpy_filter_keep(cx->filter, pfn);
			if (k < 0)
				return k;
			if (k) {
				g += pfn != next;
				next = pfn + 1;
			}
		}
	}
	*groups = g;
	return 0;
}

static void build_ehdr(struct kpy_copy_ctx *cx, unsigned char *h, uint64_t phnum, int done,
		       uint64_t shdr_off)
{
	memset(h, 0, EHDR_SIZE);
	memcpy(h, "\177ELF\2\1\1", 7);
	kpy_put16(h + 16, 4);                 /* ET_CORE */
	kpy_put16(h + 18, cx->in.machine);
	kpy_put32(h + 20, 1);
	kpy_put64(h + 32, EHDR_SIZE);         /* e_phoff */
	kpy_put32(h + 48, done ? 0 : 1);      /* e_flags bit 0: incomplete */
	kpy_put16(h + 52, EHDR_SIZE);
	kpy_put16(h + 54, PHDR_SIZE);
	kpy_put16(h + 56, phnum >= PN_XNUM ? PN_XNUM : (uint16_t)phnum);
	if (phnum >= PN_XNUM) {
		kpy_put64(h + 40, shdr_off);      /* e_shoff: section header 0 holds the count */
		kpy_put16(h + 58, SHDR_SIZE);
		kpy_put16(h + 60, 1);
	}
}

static void put_phdr(unsigned char *p, uint32_t type, const struct seg *s)
{
	memset(p, 0, PHDR_SIZE);
	kpy_put32(p, type);
	kpy_put32(p + 4, type == 1 ? 7 : 0);  /* PT_LOAD: RWX, as the kernel writes them */
	kpy_put64(p + 8, s->off);
	kpy_put64(p + 16, s->vaddr);
	kpy_put64(p + 24, s->paddr);
	kpy_put64(p + 32, s->filesz);
	kpy_put64(p + 40, s->memsz);
}

static int el_begin(struct kpy_copy_ctx *cx)
{
	struct elf_w *w = calloc(1, sizeof(*w));
	uint64_t ps = cx->page_size, splits = cx->in.nr_frames / (KPY_ELF_EXCLUDE_RUN + 1) + 1;
	unsigned char eh[EHDR_SIZE];
	int ret;

	if (!w)
		return -ENOMEM;
	cx->w = w;
	uint64_t groups;

	if (!(cx->opts.dump_level & 1))
		splits = 0;
	if (splits > KPY_ELF_MAX_SPLITS)
		splits = KPY_ELF_MAX_SPLITS;
	if ((ret = count_groups(cx, &groups)))
		return ret;
	w->splits_left = splits;
	w->reserve = 1 + groups + splits;
	if (w->reserve > UINT32_MAX)   /* sh_info is 32 bits */
		return -E2BIG;
	w->shdr_off = EHDR_SIZE + w->reserve * PHDR_SIZE;
	w->notes_off = w->shdr_off + (w->reserve >= PN_XNUM ? SHDR_SIZE : 0);
	w->data_start = (w->notes_off + cx->in.notes.size + ps - 1) / ps * ps;
	w->data_off = w->data_start;
	w->iov_cap = 2 * KPY_BATCH_PAGES + 8;
	w->segs = calloc(w->reserve, sizeof(*w->segs));
	w->iov = malloc((size_t)w->iov_cap * sizeof(*w->iov));
	w->zero = calloc(1, ZERO_BUF);
	if (!w->segs || !w->iov || !w->zero)
		return -ENOMEM;
	if ((ret = kpy_sink_reserve(&cx->out, w->data_start)))
		return ret;
	build_ehdr(cx, eh, 0, 0, 0);
	if ((ret = kpy_sink_pwrite(&cx->out, eh, EHDR_SIZE, 0)))
		return ret;
	return kpy_sink_pwrite(&cx->out, cx->in.notes.buf, cx->in.notes.size, w->notes_off);
}

static void queue(struct elf_w *w, const void *p, uint64_t len)
{
	if (w->niov == w->iov_cap) {
		struct iovec *n = realloc(w->iov, 2 * (size_t)w->iov_cap * sizeof(*n));
		if (!n) {
			w->nomem = 1;
			return;
		}
		w->iov = n;
		w->iov_cap *= 2;
	}
	if (w->niov && (const unsigned char *)w->iov[w->niov - 1].iov_base +
		       w->iov[w->niov - 1].iov_len == p) {
		w->iov[w->niov - 1].iov_len += len;
		return;
	}
	w->iov[w->niov++] = (struct iovec){ (void *)p, len };
}

/* Queue n zero frames as data, from the shared zero buffer. */
static void queue_zeros(struct elf_w *w, uint64_t bytes)
{
	while (bytes) {
		uint64_t n = bytes < ZERO_BUF ? bytes : ZERO_BUF;
		queue(w, w->zero, n);
		bytes -= n;
	}
}

static void close_seg(struct elf_w *w)
{
	if (!w->open)
		return;
	w->segs[w->nsegs++] = w->cur;     /* trailing zeros stay in p_memsz only */
	w->open = 0;
	w->zrun = 0;
}

static void open_seg(struct kpy_copy_ctx *cx, struct elf_w *w, const struct kpy_batch *b,
		     uint64_t i)
{
	w->cur = (struct seg){ w->data_off + w->pending,
			       b->run->vaddr + (b->pfn + i - b->run->pfn) * cx->page_size,
			       (b->pfn + i) * cx->page_size, 0, 0 };
	w->open = 1;
	w->zrun = 0;
}

static void add_frame(struct kpy_copy_ctx *cx, struct elf_w *w, struct kpy_batch *b,
		      uint64_t i)
{
	uint64_t ps = cx->page_size, pfn = b->pfn + i;
	int zero = (cx->opts.dump_level & 1) && (b->meta[i].flags & KPY_PAGE_ZERO);

	if (w->open && pfn != w->next_pfn)
		close_seg(w);
	if (!w->open)
		open_seg(cx, w, b, i);
	w->next_pfn = pfn + 1;
	w->cur.memsz += ps;
	if (zero) {
		w->zrun++;
		return;
	}
	if (w->zrun >= KPY_ELF_EXCLUDE_RUN && w->splits_left) {
		w->cur.memsz -= ps;
		close_seg(w);
		w->splits_left--;
		open_seg(cx, w, b, i);
		w->cur.memsz = ps;
	} else if (w->zrun) {
		queue_zeros(w, w->zrun * ps);
		w->cur.filesz += w->zrun * ps;
		w->pending += w->zrun * ps;
		w->zrun = 0;
	}
	queue(w, b->data + i * ps, ps);
	w->cur.filesz += ps;
	w->pending += ps;
}

static int el_batch(struct kpy_copy_ctx *cx, struct kpy_batch *b)
{
	struct elf_w *w = cx->w;
	uint64_t done = 0;
	int ret = 0;

	w->niov = 0;
	w->pending = 0;
	for (uint64_t i = 0; i < b->n; i++)
		add_frame(cx, w, b, i);
	if (w->nomem)
		return -ENOMEM;
	if (w->niov)
		ret = kpy_sink_writev(&cx->out, w->iov, w->niov, w->data_off, &done);
	w->data_off += done;
	w->pending = 0;
	return ret;
}

/* Keep what is in the file: segments past the last whole written page go, one is cut. */
static void cut_to_written(struct elf_w *w, uint64_t ps)
{
	uint64_t end = w->data_off / ps * ps;     /* segment data starts page aligned */

	for (size_t i = 0; i < w->nsegs; i++) {
		struct seg *s = &w->segs[i];
		if (s->off + s->filesz <= end)
			continue;
		if (s->off < end) {
			s->filesz = s->memsz = end - s->off;
			i++;
		}
		w->nsegs = i;
		return;
	}
}

static void count_pages(struct kpy_copy_ctx *cx, struct elf_w *w)
{
	uint64_t ps = cx->page_size, written = 0, excluded = 0;

	for (size_t i = 0; i < w->nsegs; i++) {
		written += w->segs[i].filesz / ps;
		excluded += (w->segs[i].memsz - w->segs[i].filesz) / ps;
	}
	cx->st->pages_written = written;
	cx->st->pages_excluded += excluded;   /* the filter counted its own */
}

static int el_end(struct kpy_copy_ctx *cx, int complete)
{
	struct elf_w *w = cx->w;
	size_t len = (1 + w->nsegs) * PHDR_SIZE;
	unsigned char *ph, eh[EHDR_SIZE];
	struct seg note = { w->notes_off, 0, 0, cx->in.notes.size, cx->in.notes.size };
	int ret;

	close_seg(w);
	if (!complete)
		cut_to_written(w, cx->page_size);
	count_pages(cx, w);
	len = (1 + w->nsegs) * PHDR_SIZE;
	if (!(ph = malloc(len)))
		return -ENOMEM;
	put_phdr(ph, 4, &note);
	for (size_t i = 0; i < w->nsegs; i++)
		put_phdr(ph + (i + 1) * PHDR_SIZE, 1, &w->segs[i]);
	ret = kpy_sink_pwrite(&cx->out, ph, len, EHDR_SIZE);
	free(ph);
	if (!ret && 1 + w->nsegs >= PN_XNUM) {
		unsigned char sh[SHDR_SIZE] = { 0 };
		kpy_put32(sh + 44, (uint32_t)(1 + w->nsegs));     /* sh_info: e_phnum */
		ret = kpy_sink_pwrite(&cx->out, sh, SHDR_SIZE, w->shdr_off);
	}
	build_ehdr(cx, eh, 1 + w->nsegs, complete, w->shdr_off);
	if (!ret && complete)          /* the Ehdr that lists the segments goes last */
		ret = kpy_sink_sync(&cx->out);
	if (!ret)
		ret = kpy_sink_pwrite(&cx->out, eh, EHDR_SIZE, 0);
	return ret;
}

static void el_free(struct kpy_copy_ctx *cx)
{
	struct elf_w *w = cx->w;

	if (!w)
		return;
	free(w->segs);
	free(w->iov);
	free(w->zero);
	free(w);
	cx->w = NULL;
}

const struct kpy_writer_ops kpy_elf_writer = { el_begin, el_batch, el_end, el_free };
