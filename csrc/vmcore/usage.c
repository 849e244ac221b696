/*
 * usage.c - makedumpfile's --mem-usage: what each dump level would keep of a vmcore, or
 * of the running system through /proc/kcore (its RAM PT_LOADs carry physical addresses;
 * the others, p_paddr -1, are skipped by elf_in.c; since Linux 4.19 its notes hold the
 * running kernel's VMCOREINFO).
 *
 * Every frame below the last struct page is classified as dump level 31 would (filter.c,
 * first rule wins, as makedumpfile counts); the frames level 31 keeps are read whole to
 * count the all-zero ones (makedumpfile's ZERO). Every stride-th frame of any class is
 * also read and compressed with the codecs asked for: the per-class means predict the
 * size of a dump at any level, codec and format (kpy_usage_predict) without writing it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "vmcore.h"

#define READ_FRAMES 64            /* frames read at once */
#define SAMPLE_TARGET 16384
#define ELF_PHDR 56
#define ELF_EHDR 64
#define KDUMP_DESC 24
#define PROC_SUPER_MAGIC 0x9fa0
#define MAX_RESERVES 16

struct usage {
	struct kpy_elf in;
	struct kpy_filter filter;
	struct kpy_usage_stats *st;
	struct kpy_codec codec[KPY_MU_CODECS];
	int have_codec[KPY_MU_CODECS];
	unsigned char *buf, *out;
	size_t out_cap;
	/* frames waiting to be read: [pfn, pfn + n) of run r, with their classes */
	const struct kpy_run *r;
	uint64_t pfn, n;
	uint64_t last_kept, zrun;     /* the ELF writer's zero runs among kept frames */
	uint64_t reserve[MAX_RESERVES][2];   /* frames [lo, hi) of the crash kernel's reserve */
	int nreserve;
	unsigned char cls[READ_FRAMES], sample[READ_FRAMES];
};

int kpy_usage_codec_slot(int codec)
{
	for (int i = 0; kpy_codecs[i] >= 0; i++)
		if (kpy_codecs[i] == codec)
			return i < KPY_MU_CODECS ? i : -1;
	return -1;
}

static int codecs_init(struct usage *u, int want)
{
	struct kpy_usage_stats *st = u->st;
	unsigned char *zero = calloc(1, u->in.page_size);
	int ret = zero ? 0 : -ENOMEM;

	for (int s = 0; s < KPY_MU_CODECS; s++) {
		int c = kpy_codecs[s];
		st->zero_page_bytes[s] = -1;
		for (int k = 0; k < KPY_MU_CLASSES; k++)
			st->sampled_bytes[k][s] = -1;
		if (ret || (c != KPY_CODEC_NONE && ((want && !(want & c)) ||
						     !kpy_codec_available(c))))
			continue;
		for (int k = 0; k < KPY_MU_CLASSES; k++)
			st->sampled_bytes[k][s] = 0;
		st->zero_page_bytes[s] = u->in.page_size;
		if (c == KPY_CODEC_NONE)
			continue;
		if ((ret = kpy_codec_init(&u->codec[s], c, u->in.page_size)))
			break;
		u->have_codec[s] = 1;
		if (u->codec[s].bound > u->out_cap) {       /* compress() writes up to bound */
			unsigned char *out = realloc(u->out, u->codec[s].bound);
			if (!out) {
				ret = -ENOMEM;
				break;
			}
			u->out = out;
			u->out_cap = u->codec[s].bound;
		}
		long n = kpy_codec_compress(&u->codec[s], zero, u->out);
		if (n < 0)
			ret = (int)n;
		else if (n > 0)
			st->zero_page_bytes[s] = n;
	}
	free(zero);
	return ret;
}

static int sample_page(struct usage *u, int cls, const unsigned char *page, int zero)
{
	struct kpy_usage_stats *st = u->st;

	st->sampled[cls]++;
	if (zero) {
		st->sampled_zero[cls]++;
		return 0;
	}
	for (int s = 0; s < KPY_MU_CODECS; s++) {
		if (st->sampled_bytes[cls][s] < 0)
			continue;
		long n = u->in.page_size;
		if (u->have_codec[s]) {
			n = kpy_codec_compress(&u->codec[s], page, u->out);
			if (n < 0)
				return (int)n;
			if (n == 0)
				n = u->in.page_size;    /* stored raw */
		}
		st->sampled_bytes[cls][s] += n;
	}
	return 0;
}

/* A frame level 31 keeps, in frame order: the ELF writer (elf_out.c) leaves out a run of
 * KPY_ELF_EXCLUDE_RUN zero frames or more, and the zeros that end a segment. */
static void elf_runs(struct usage *u, uint64_t pfn, int zero)
{
	if (pfn != u->last_kept + 1) {
		u->st->elf_zero_out += u->zrun;      /* the segment ended */
		u->zrun = 0;
	}
	u->last_kept = pfn;
	if (zero) {
		u->st->zero++;
		u->zrun++;
		return;
	}
	if (u->zrun >= KPY_ELF_EXCLUDE_RUN)
		u->st->elf_zero_out += u->zrun;
	u->zrun = 0;
}

/* Read the pending frames and count or sample each. */
static int flush(struct usage *u)
{
	uint32_t ps = u->in.page_size;
	int ret;

	if (!u->n)
		return 0;
	if ((ret = kpy_elf_read_frames(&u->in, u->r, u->pfn, u->n, u->buf))) {
		u->st->err_offset = u->in.kd ? u->in.kd_err_off : u->in.src.err_off;
		KPY_MSG(u->st->message, "reading frame %#llx failed (offset %#llx): %s",
			(unsigned long long)u->pfn, (unsigned long long)u->st->err_offset,
			ret == -ENODATA ? "the file is truncated" : strerror(-ret));
		return ret;
	}
	for (uint64_t i = 0; i < u->n && !ret; i++) {
		const unsigned char *page = u->buf + i * ps;
		int zero = kpy_page_is_zero(page, ps);
		if (u->cls[i] == KPY_MU_KERNEL)
			elf_runs(u, u->pfn + i, zero);
		if (u->sample[i])
			ret = sample_page(u, u->cls[i], page, zero);
	}
	u->n = 0;
	return ret;
}

static int want_frame(struct usage *u, const struct kpy_run *r, uint64_t pfn, int cls,
		      int sample)
{
	int ret = 0;

	if (u->n && (u->r != r || u->pfn + u->n != pfn || u->n == READ_FRAMES))
		ret = flush(u);
	if (ret)
		return ret;
	if (!u->n) {
		u->r = r;
		u->pfn = pfn;
	}
	u->cls[u->n] = (unsigned char)cls;
	u->sample[u->n] = (unsigned char)sample;
	u->n++;
	return 0;
}

/* The "Crash kernel" ranges of an iomem-format file (hex start-end, inclusive). Lines
 * that do not parse are skipped; a reader without root sees 0-0 ranges, which leave out
 * nothing. */
static int read_reserves(struct usage *u, const char *path)
{
	char *text = NULL, *line, *save = NULL;
	size_t len;
	int ret = kpy_read_file(path, 1u << 20, &text, &len);

	if (ret) {
		KPY_MSG(u->st->message, "cannot read %s (the crash kernel's reserve): %s", path,
			strerror(-ret));
		return ret;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, b;
		int n = 0;
		if (sscanf(line, " %llx-%llx : %n", &a, &b, &n) != 2 || !n ||
		    strcmp(line + n, "Crash kernel") || b <= a || u->nreserve == MAX_RESERVES)
			continue;
		u->reserve[u->nreserve][0] = a / u->in.page_size;
		u->reserve[u->nreserve][1] = b / u->in.page_size + 1;
		u->nreserve++;
	}
	kpy_free(text);
	return 0;
}

static int reserved(const struct usage *u, uint64_t pfn)
{
	for (int i = 0; i < u->nreserve; i++)
		if (pfn >= u->reserve[i][0] && pfn < u->reserve[i][1])
			return 1;
	return 0;
}

static int scan(struct usage *u)
{
	struct kpy_usage_stats *st = u->st;
	uint64_t idx = 0;
	int ret = 0;

	for (size_t k = 0; k < u->in.nruns && !ret; k++) {
		const struct kpy_run *r = &u->in.runs[k];
		for (uint64_t pfn = r->pfn; pfn < r->pfn + r->count && !ret; pfn++, idx++) {
			if (u->nreserve && reserved(u, pfn)) {
				st->crash_reserved++;
				continue;
			}
			int cls = kpy_filter_class(&u->filter, pfn);
			int sample = idx % st->stride == 0;
			st->pages[cls]++;
			if (cls == KPY_MU_KERNEL || sample)
				ret = want_frame(u, r, pfn, cls, sample);
		}
	}
	if (!ret)
		ret = flush(u);
	st->elf_zero_out += u->zrun;
	for (int c = 0; c < KPY_MU_CLASSES; c++)
		if (c != KPY_MU_NO_MEMMAP)
			st->pages_total += st->pages[c];
	return ret;
}

static int setup(struct usage *u, int fd, const struct kpy_usage_opts *o)
{
	struct kpy_usage_stats *st = u->st;
	int ret;

	if ((ret = kpy_elf_open_info(&u->in, fd, o->vmcoreinfo, o->vmcoreinfo_len, st->message,
				     &st->err_offset)))
		return ret;
	if (!u->in.notes.vmcoreinfo_size) {
		KPY_MSG(st->message, "no VMCOREINFO: /proc/kcore has the running kernel's only since "
			"Linux 4.19, and a vmcore without one needs --vmcoreinfo FILE");
		return -ENOTSUP;
	}
	if ((ret = kpy_filter_init(&u->filter, &u->in, 31, 0, 1, st->message)))
		return ret;
	struct statfs sfs;
	const char *iomem = o->iomem;
	if (!iomem && fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC)
		iomem = "/proc/iomem";
	if (iomem && (ret = read_reserves(u, iomem)))
		return ret;
	st->page_size = u->in.page_size;
	st->max_pfn = u->in.max_pfn;
	st->notes_size = u->in.notes.size;
	st->nr_runs = u->in.nruns;
	uint64_t target = o->sample_target ? o->sample_target : SAMPLE_TARGET;
	st->stride = u->in.nr_frames / target > 1 ? u->in.nr_frames / target : 1;
	u->buf = malloc((size_t)READ_FRAMES * u->in.page_size);
	u->out_cap = 2 * (size_t)u->in.page_size;
	u->out = malloc(u->out_cap);
	if (!u->buf || !u->out)
		return -ENOMEM;
	return codecs_init(u, o->codecs);
}

int kpy_vmcore_mem_usage(int in_fd, const struct kpy_usage_opts *opts,
			 struct kpy_usage_stats *st)
{
	struct kpy_usage_opts none = { 0 };
	struct usage *u = calloc(1, sizeof(*u));
	uint64_t t0 = kpy_now_ns();
	int ret;

	memset(st, 0, sizeof(*st));
	if (!u)
		return -ENOMEM;
	u->st = st;
	u->in.src.fd = -1;
	u->last_kept = UINT64_MAX - 1;
	if (!(ret = setup(u, in_fd, opts ? opts : &none)))
		ret = scan(u);
	if (ret == -ENOMEM && !st->message[0])
		KPY_MSG(st->message, "out of memory");
	for (int s = 0; s < KPY_MU_CODECS; s++)
		if (u->have_codec[s])
			kpy_codec_fini(&u->codec[s]);
	kpy_filter_fini(&u->filter);
	kpy_elf_close(&u->in);
	free(u->buf);
	free(u->out);
	free(u);
	st->elapsed_ns = kpy_now_ns() - t0;
	return ret;
}

/* ---- prediction ---- */

static int excluded(int cls, int level)
{
	if (level < 2)
		return 0;          /* levels 0 and 1 run no page classification */
	switch (cls) {
	case KPY_MU_CACHE: return (level & 6) != 0;
	case KPY_MU_CACHE_PRIVATE: return (level & 4) != 0;
	case KPY_MU_USER: return (level & 8) != 0;
	case KPY_MU_FREE: return (level & 16) != 0;
	case KPY_MU_KERNEL: return 0;
	default: return 1;     /* hwpoison, offline, and frames with no struct page */
	}
}

/* Zero frames of a class: counted for the frames level 31 keeps, else sampled (a class
 * with no sample takes the fraction of every sample). */
static double zero_frames(const struct kpy_usage_stats *st, int cls)
{
	uint64_t n = 0, z = 0;

	if (cls == KPY_MU_KERNEL)
		return (double)st->zero;
	if (st->sampled[cls]) {
		n = st->sampled[cls];
		z = st->sampled_zero[cls];
	} else {
		for (int c = 0; c < KPY_MU_CLASSES; c++) {
			n += st->sampled[c];
			z += st->sampled_zero[c];
		}
	}
	return n ? (double)st->pages[cls] * (double)z / (double)n : 0.0;
}

/* Mean stored bytes of a non-zero frame of a class with codec slot s. */
static double mean_bytes(const struct kpy_usage_stats *st, int cls, int s)
{
	uint64_t n = st->sampled[cls] - st->sampled_zero[cls];
	int64_t b = st->sampled_bytes[cls][s];

	if (!n) {
		b = 0;
		for (int c = 0; c < KPY_MU_CLASSES; c++) {
			n += st->sampled[c] - st->sampled_zero[c];
			b += st->sampled_bytes[c][s];
		}
	}
	return n ? (double)b / (double)n : (double)st->page_size;
}

int64_t kpy_usage_predict(const struct kpy_usage_stats *st, int level, int format, int codec)
{
	int s = kpy_usage_codec_slot(format == KPY_FMT_ELF ? KPY_CODEC_NONE : codec);
	double bs = st->page_size, data = 0, kept = 0, zeros = 0;

	if (s < 0 || st->zero_page_bytes[s] < 0 || level < 0 || level > 31 || !st->page_size)
		return -1;
	for (int c = 0; c < KPY_MU_CLASSES; c++) {
		if (excluded(c, level))
			continue;
		double n = (double)st->pages[c], z = zero_frames(st, c);
		kept += n;
		zeros += z;
		if (format == KPY_FMT_ELF)
			data += n * bs;
		else
			data += (n - z) * mean_bytes(st, c, s) +
				((level & 1) ? 0 : z * (double)st->zero_page_bytes[s]);
	}
	if (format == KPY_FMT_ELF) {
		/* zero frames left out: counted at level 31, in the same share at others */
		if ((level & 1) && st->zero)
			data -= zeros * ((double)st->elf_zero_out / (double)st->zero) * bs;
		return (int64_t)(ELF_EHDR + (double)(st->nr_runs + 1) * ELF_PHDR +
				 (double)st->notes_size + data);
	}
	uint64_t sub, bitmap;
	kpy_kdump_blocks(st->page_size, st->notes_size, st->max_pfn, &sub, &bitmap);
	double head = (double)(1 + sub + 2 * bitmap) * bs + ((level & 1) ? bs : 0);
	return (int64_t)(head + kept * KDUMP_DESC + data);
}
