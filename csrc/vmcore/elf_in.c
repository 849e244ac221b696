/*
 * elf_in.c - an ELF vmcore (/proc/vmcore, a saved file, our own -E output) as a sorted
 * list of page-frame runs, each physical frame once.
 *
 * Data comes from p_offset and addresses from p_paddr. PT_LOADs may overlap (x86_64's
 * kernel-text segment repeats RAM): the byte ranges are "painted" biggest segment first,
 * so each physical byte has one source. Frames cut by a segment boundary are assembled
 * from every piece that covers them (zeros elsewhere).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

#define PT_LOAD 1
#define PT_NOTE 4
#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define EM_X86_64 62
#define START_KERNEL_MAP 0xffffffff80000000ull

struct pcand { struct kpy_piece p; uint64_t len; size_t idx; };

static int cand_cmp(const void *a, const void *b)
{
	const struct pcand *x = a, *y = b;

	if (x->p.zero != y->p.zero)
		return x->p.zero - y->p.zero;          /* real data before zero tails */
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;       /* biggest first */
	return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static int piece_cmp(const void *a, const void *b)
{
	const struct kpy_piece *x = a, *y = b;

	return x->paddr < y->paddr ? -1 : (x->paddr > y->paddr);
}

/* Append the parts of c not yet covered (pieces so far are the covered set). */
static size_t paint(struct kpy_piece *out, size_t n, const struct kpy_piece *c)
{
	uint64_t a = c->paddr;
	size_t start = n;

	while (a < c->end) {
		uint64_t next_cov = c->end, cov_end = 0;
		for (size_t i = 0; i < start; i++) {
			if (out[i].paddr <= a && out[i].end > a) {
				cov_end = out[i].end;          /* a is covered: skip to its end */
				break;
			}
			if (out[i].paddr > a && out[i].paddr < next_cov)
				next_cov = out[i].paddr;
		}
		if (cov_end) {
			a = cov_end;
			continue;
		}
		out[n] = *c;
		out[n].paddr = a;
		out[n].end = next_cov;
		out[n].off = c->off + (a - c->paddr);
		out[n].vaddr = c->vaddr + (a - c->paddr);
		n++;
		a = next_cov;
	}
	return n;
}

static int push_run(struct kpy_elf *e, uint64_t pfn, uint64_t count, uint64_t off,
		    uint64_t vaddr, int kind)
{
	struct kpy_run *last = e->nruns ? &e->runs[e->nruns - 1] : NULL;
	uint64_t ps = e->page_size;

	if (last && kind == KPY_RUN_MIXED && last->kind == KPY_RUN_MIXED && last->pfn == pfn)
		return 0;      /* a frame shared by two pieces */
	if (last && last->kind == kind && kind != KPY_RUN_MIXED &&
	    last->pfn + last->count == pfn && last->vaddr + last->count * ps == vaddr &&
	    (kind == KPY_RUN_ZERO || last->off + last->count * ps == off)) {
		last->count += count;
		return 0;
	}
	e->runs[e->nruns++] = (struct kpy_run){ pfn, count, off, vaddr, kind };
	return 0;
}

static void build_runs(struct kpy_elf *e)
{
	uint64_t ps = e->page_size;

	for (size_t i = 0; i < e->npieces; i++) {
		const struct kpy_piece *p = &e->pieces[i];
		uint64_t first = p->paddr / ps, last = (p->end - 1) / ps;
		uint64_t full_lo = (p->paddr + ps - 1) / ps, full_hi = p->end / ps;
		uint64_t fvaddr = p->vaddr - (p->paddr - first * ps);

		if (full_lo > first)
			push_run(e, first, 1, 0, fvaddr, KPY_RUN_MIXED);
		if (full_hi > full_lo)
			push_run(e, full_lo, full_hi - full_lo, p->off + (full_lo * ps - p->paddr),
				 p->vaddr + (full_lo * ps - p->paddr),
				 p->zero ? KPY_RUN_ZERO : KPY_RUN_DIRECT);
		if (full_hi <= last)   /* end not aligned: a shared frame (deduplicated) */
			push_run(e, last, 1, 0, p->vaddr + (last * ps - p->paddr), KPY_RUN_MIXED);
	}
	for (size_t i = 0; i < e->nruns; i++)
		e->nr_frames += e->runs[i].count;
	if (e->nruns)
		e->max_pfn = e->runs[e->nruns - 1].pfn + e->runs[e->nruns - 1].count;
}

static int check_ehdr(const unsigned char *h, char *msg)
{
	if (memcmp(h, "\177ELF", 4) != 0) {
		KPY_MSG(msg, "not an ELF file (no ELF magic at offset 0)");
		return -ENOEXEC;
	}
	if (h[4] != 2) {
		KPY_MSG(msg, "ELF class %d: only 64-bit (ELFCLASS64) vmcores are supported", h[4]);
		return -ENOTSUP;
	}
	if (h[5] != 1) {
		KPY_MSG(msg, "big-endian vmcores are not supported");
		return -ENOTSUP;
	}
	if (kpy_get16(h + 16) != 4) {
		KPY_MSG(msg, "not an ELF core file (e_type %u, expected ET_CORE)", kpy_get16(h + 16));
		return -ENOEXEC;
	}
	if (kpy_get16(h + 54) != PHDR_SIZE || kpy_get16(h + 56) == 0) {
		KPY_MSG(msg, "ELF header at offset 0: bad program headers (e_phentsize %u, "
			"e_phnum %u)", kpy_get16(h + 54), kpy_get16(h + 56));
		return -ENOEXEC;
	}
	return 0;
}

static int read_notes(struct kpy_elf *e, const unsigned char *ph, char *msg, uint64_t *err_off)
{
	uint64_t off = kpy_get64(ph + 8), size = kpy_get64(ph + 32);
	unsigned char *buf;
	int ret;

	if (size > (64u << 20)) {
		*err_off = off;
		KPY_MSG(msg, "PT_NOTE of %llu bytes at offset %#llx is implausibly big",
			(unsigned long long)size, (unsigned long long)off);
		return -EFBIG;
	}
	if (!(buf = realloc(e->notes.buf, e->notes.size + size + 1)))
		return -ENOMEM;
	e->notes.buf = buf;
	if ((ret = kpy_src_pread(&e->src, buf + e->notes.size, size, off))) {
		*err_off = off;
		KPY_MSG(msg, "truncated: the PT_NOTE at offset %#llx (%llu bytes) is past the end",
			(unsigned long long)off, (unsigned long long)size);
		return ret;
	}
	e->notes.size += size;
	return 0;
}

static int add_load(struct kpy_elf *e, struct pcand *c, size_t *nc, const unsigned char *ph,
		    size_t idx, char *msg, uint64_t *err_off)
{
	uint64_t off = kpy_get64(ph + 8), vaddr = kpy_get64(ph + 16), paddr = kpy_get64(ph + 24);
	uint64_t filesz = kpy_get64(ph + 32), memsz = kpy_get64(ph + 40);

	if (paddr == UINT64_MAX || memsz == 0)
		return 0;
	if (filesz > memsz || paddr + memsz < paddr) {
		*err_off = EHDR_SIZE + idx * PHDR_SIZE;
		KPY_MSG(msg, "program header %zu at offset %#llx: bad sizes", idx,
			(unsigned long long)*err_off);
		return -ENOEXEC;
	}
	if (e->src.size != UINT64_MAX && (off + filesz > e->src.size || off + filesz < off)) {
		*err_off = e->src.size;
		KPY_MSG(msg, "truncated: PT_LOAD %zu (physical %#llx) needs file bytes up to %#llx, "
			"the file ends at %#llx", idx, (unsigned long long)paddr,
			(unsigned long long)(off + filesz), (unsigned long long)e->src.size);
		return -ENODATA;
	}
	if (e->machine == EM_X86_64 && vaddr >= START_KERNEL_MAP && !e->have_kernel_text) {
		e->have_kernel_text = 1;
		e->kernel_vaddr = vaddr;
		e->kernel_paddr = paddr;
	}
	if (filesz)
		c[(*nc)++] = (struct pcand){ { paddr, paddr + filesz, off, vaddr, 0 }, filesz, idx };
	if (memsz > filesz)
		c[(*nc)++] = (struct pcand){ { paddr + filesz, paddr + memsz, 0, vaddr + filesz, 1 },
					     memsz - filesz, idx };
	return 0;
}

static int read_phdrs(struct kpy_elf *e, const unsigned char *eh, struct pcand *c, size_t *nc,
		      char *msg, uint64_t *err_off)
{
	uint64_t phoff = kpy_get64(eh + 32);
	unsigned phnum = kpy_get16(eh + 56);
	unsigned char *ph = malloc((size_t)phnum * PHDR_SIZE);
	int ret;

	if (!ph)
		return -ENOMEM;
	if ((ret = kpy_src_pread(&e->src, ph, (size_t)phnum * PHDR_SIZE, phoff))) {
		*err_off = phoff;
		KPY_MSG(msg, "truncated: program headers at offset %#llx are past the end",
			(unsigned long long)phoff);
		goto out;
	}
	for (unsigned i = 0; i < phnum && !ret; i++) {
		const unsigned char *p = ph + (size_t)i * PHDR_SIZE;
		if (kpy_get32(p) == PT_NOTE)
			ret = read_notes(e, p, msg, err_off);
		else if (kpy_get32(p) == PT_LOAD)
			ret = add_load(e, c, nc, p, i, msg, err_off);
	}
out:
	free(ph);
	return ret;
}

static void set_page_size(struct kpy_elf *e)
{
	uint64_t ps = 0;

	kpy_notes_scan(&e->notes);
	if (kpy_vmcoreinfo_u64(&e->notes, "PAGESIZE", 10, &ps) || ps < 1024 ||
	    ps > (1u << 20) || (ps & (ps - 1)))
		ps = 4096;
	e->page_size = (uint32_t)ps;
}

static int build_pieces(struct kpy_elf *e, struct pcand *c, size_t nc, char *msg)
{
	qsort(c, nc, sizeof(*c), cand_cmp);
	/* each candidate can split into at most (covered pieces + 1) parts */
	size_t cap = 1;
	for (size_t i = 0; i < nc; i++)
		cap += i + 1;
	if (!(e->pieces = calloc(cap, sizeof(*e->pieces))))
		return -ENOMEM;
	for (size_t i = 0; i < nc; i++)
		e->npieces = paint(e->pieces, e->npieces, &c[i].p);
	qsort(e->pieces, e->npieces, sizeof(*e->pieces), piece_cmp);
	if (!e->npieces) {
		KPY_MSG(msg, "the vmcore has no PT_LOAD segments: nothing to copy");
		return -ENOEXEC;
	}
	if (!(e->runs = calloc(e->npieces * 3, sizeof(*e->runs))))
		return -ENOMEM;
	build_runs(e);
	return 0;
}

int kpy_elf_attach(struct kpy_elf *e, const struct kpy_src *src, char *msg, uint64_t *err_off)
{
	unsigned char eh[EHDR_SIZE];
	struct pcand *c = NULL;
	size_t nc = 0;
	int ret;

	memset(e, 0, sizeof(*e));
	e->src = *src;
	*err_off = 0;
	if ((ret = kpy_src_pread(&e->src, eh, sizeof(eh), 0))) {
		KPY_MSG(msg, ret == -ENODATA ? "not an ELF file (shorter than an ELF header)"
			: "cannot read the ELF header");
		return ret == -ENODATA ? -ENOEXEC : ret;
	}
	if ((ret = check_ehdr(eh, msg)))
		return ret;
	e->machine = kpy_get16(eh + 18);
	e->e_flags = kpy_get32(eh + 48);
	if (!(c = calloc((size_t)kpy_get16(eh + 56) * 2, sizeof(*c))))
		return -ENOMEM;
	if (!(ret = read_phdrs(e, eh, c, &nc, msg, err_off))) {
		set_page_size(e);
		ret = build_pieces(e, c, nc, msg);
	}
	free(c);
	return ret;
}

int kpy_elf_open(struct kpy_elf *e, int fd, char *msg, uint64_t *err_off)
{
	struct kpy_src src;
	int ret = kpy_src_open(&src, fd, msg);

	if (ret) {
		*err_off = src.err_off;
		kpy_src_close(&src);
		memset(e, 0, sizeof(*e));
		return ret;
	}
	return kpy_elf_attach(e, &src, msg, err_off);
}

void kpy_elf_close(struct kpy_elf *e)
{
	free(e->pieces);
	free(e->runs);
	free(e->notes.buf);
	kpy_src_close(&e->src);
	memset(e, 0, sizeof(*e));
	e->src.fd = -1;
}

const struct kpy_run *kpy_elf_find_run(const struct kpy_elf *e, uint64_t pfn)
{
	size_t lo = 0, hi = e->nruns;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct kpy_run *r = &e->runs[mid];
		if (pfn < r->pfn)
			hi = mid;
		else if (pfn >= r->pfn + r->count)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* A frame cut by piece boundaries: zeros, then every data piece's part of it. */
static int read_mixed(struct kpy_elf *e, uint64_t pfn, unsigned char *buf)
{
	uint64_t ps = e->page_size, a = pfn * ps, b = a + ps;

	memset(buf, 0, ps);
	for (size_t i = 0; i < e->npieces; i++) {
		const struct kpy_piece *p = &e->pieces[i];
		if (p->end <= a || p->paddr >= b || p->zero)
			continue;
		uint64_t lo = p->paddr > a ? p->paddr : a, hi = p->end < b ? p->end : b;
		int ret = kpy_src_pread(&e->src, buf + (lo - a), hi - lo, p->off + (lo - p->paddr));
		if (ret)
			return ret;
	}
	return 0;
}

int kpy_elf_read_frames(struct kpy_elf *e, const struct kpy_run *r, uint64_t pfn, uint64_t n,
			unsigned char *buf)
{
	uint64_t ps = e->page_size;

	if (r->kind == KPY_RUN_ZERO) {
		memset(buf, 0, n * ps);
		return 0;
	}
	if (r->kind == KPY_RUN_MIXED)
		return read_mixed(e, pfn, buf);
	return kpy_src_pread(&e->src, buf, n * ps, r->off + (pfn - r->pfn) * ps);
}

/* Read through any PT_LOAD-style mapping: used for kernel symbols (init_uts_ns). */
int kpy_elf_read_vaddr(struct kpy_elf *e, uint64_t vaddr, void *buf, size_t len)
{
	if (!e->have_kernel_text || vaddr < e->kernel_vaddr)
		return -ENOENT;
	uint64_t paddr = e->kernel_paddr + (vaddr - e->kernel_vaddr);
	for (size_t i = 0; i < e->npieces; i++) {
		const struct kpy_piece *p = &e->pieces[i];
		if (paddr >= p->paddr && paddr + len <= p->end && !p->zero)
			return kpy_src_pread(&e->src, buf, len, p->off + (paddr - p->paddr));
	}
	return -ENOENT;
}
