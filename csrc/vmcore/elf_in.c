/*
 * elf_in.c - an ELF vmcore (/proc/vmcore, a saved file, our own -E output) as a sorted
 * list of page-frame runs, each physical frame once.
 *
 * Data comes from p_offset and addresses from p_paddr. PT_LOADs may overlap (x86_64's
 * kernel-text segment repeats RAM): each physical byte goes to the best-ranked segment
 * that covers it (real data before zero tails, then the biggest), found by one sweep over
 * the sorted segment ends, so tens of thousands of segments (PN_XNUM) cost n log n. Frames
 * cut by a segment boundary are assembled from every piece that covers them (zeros
 * elsewhere). p_offset need not be page aligned (QEMU's dump-guest-memory packs the data
 * right after the notes).
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
#define SHDR_SIZE 64
#define PN_XNUM 0xffff
#define EM_386 3
#define KPY_X86_PHYS_LIMIT (1ull << 52)   /* MAXPHYADDR's architectural maximum */
#define NOTES_MAX (64u << 20)          /* all PT_NOTEs together */
#define PHNUM_MAX (1u << 22)           /* program headers when the file size is unknown */

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

/* A min-heap of candidate ranks (indices into the sorted candidates). */
struct rheap { size_t *v, n; };

static void rheap_push(struct rheap *h, size_t x)
{
	size_t i = h->n++;

	while (i && h->v[(i - 1) / 2] > x) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
}

static void rheap_pop(struct rheap *h)
{
	size_t x = h->v[--h->n], i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] < h->v[c])
			c++;
		if (h->v[c] >= x)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = x;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : (x > y);
}

struct start { uint64_t paddr; size_t idx; };

static int start_cmp(const void *a, const void *b)
{
	const struct start *x = a, *y = b;

	return x->paddr < y->paddr ? -1 : (x->paddr > y->paddr);
}

/*
 * Candidates c[0..nc) sorted by rank (cand_cmp): give each byte to the best-ranked
 * candidate covering it. Between two consecutive segment ends the set of covering
 * candidates does not change, so one sweep with a heap of the active ranks does it.
 * Writes at most 2 * nc pieces, sorted by address, into out.
 */
static size_t paint(struct kpy_piece *out, const struct pcand *c, size_t nc, int *err)
{
	uint64_t *pos = malloc(2 * nc * sizeof(*pos));
	struct start *order = malloc(nc * sizeof(*order));
	struct rheap h = { malloc(nc * sizeof(size_t)), 0 };
	size_t npos = 0, n = 0, next = 0, last = SIZE_MAX;

	*err = 0;
	if (!pos || !order || !h.v) {
		*err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nc; i++) {
		pos[npos++] = c[i].p.paddr;
		pos[npos++] = c[i].p.end;
		order[i] = (struct start){ c[i].p.paddr, i };
	}
	qsort(pos, npos, sizeof(*pos), u64_cmp);
	qsort(order, nc, sizeof(*order), start_cmp);
	for (size_t k = 0; k + 1 < npos; k++) {
		uint64_t a = pos[k], b = pos[k + 1];
		if (a == b)
			continue;
		while (next < nc && order[next].paddr <= a)
			rheap_push(&h, order[next++].idx);
		while (h.n && c[h.v[0]].p.end <= a)
			rheap_pop(&h);      /* ended before this interval */
		if (!h.n)
			continue;
		const struct pcand *w = &c[h.v[0]];
		if (n && last == h.v[0] && out[n - 1].end == a) {
			out[n - 1].end = b;  /* the same candidate goes on */
			continue;
		}
		out[n] = w->p;
		out[n].paddr = a;
		out[n].end = b;
		out[n].off = w->p.off + (a - w->p.paddr);
		out[n].vaddr = w->p.vaddr + (a - w->p.paddr);
		n++;
		last = h.v[0];
	}
out:
	free(pos);
	free(order);
	free(h.v);
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
	if (h[4] == 1 && h[5] == 1 && kpy_get16(h + 18) == EM_386) {
		KPY_MSG(msg, "a 32-bit x86 dump (ELFCLASS32, EM_386: a guest that was not in long "
			"mode, or a 32-bit kernel) is not supported: only x86_64 dumps are");
		return -ENOTSUP;
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
	if (kpy_get16(h + 56) == 0)
		return 0;      /* no program headers: perhaps a Xen dump (xc_core.c) */
	if (kpy_get16(h + 54) != PHDR_SIZE) {
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

	if (size > NOTES_MAX || e->notes.size + size > NOTES_MAX) {
		*err_off = off;
		KPY_MSG(msg, "PT_NOTE of %llu bytes at offset %#llx is implausibly big (notes "
			"total more than %u MiB)", (unsigned long long)size,
			(unsigned long long)off, NOTES_MAX >> 20);
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
		    uint64_t phoff, uint64_t idx, char *msg, uint64_t *err_off)
{
	uint64_t off = kpy_get64(ph + 8), vaddr = kpy_get64(ph + 16), paddr = kpy_get64(ph + 24);
	uint64_t filesz = kpy_get64(ph + 32), memsz = kpy_get64(ph + 40);

	if (paddr == UINT64_MAX || memsz == 0)
		return 0;
	if (filesz > memsz || paddr + memsz < paddr) {
		*err_off = phoff + idx * PHDR_SIZE;
		KPY_MSG(msg, "program header %llu at offset %#llx: bad sizes",
			(unsigned long long)idx, (unsigned long long)*err_off);
		return -ENOEXEC;
	}
	if (e->machine == KPY_EM_X86_64 && paddr + memsz > KPY_X86_PHYS_LIMIT) {
		*err_off = phoff + idx * PHDR_SIZE;
		KPY_MSG(msg, "program header %llu at offset %#llx: physical %#llx-%#llx is beyond "
			"x86_64's 52-bit physical address space", (unsigned long long)idx,
			(unsigned long long)*err_off, (unsigned long long)paddr,
			(unsigned long long)(paddr + memsz));
		return -ENOEXEC;
	}
	if (e->src.size != UINT64_MAX && (off + filesz > e->src.size || off + filesz < off)) {
		*err_off = e->src.size;
		KPY_MSG(msg, "truncated: PT_LOAD %llu (physical %#llx) needs file bytes up to %#llx, "
			"the file ends at %#llx", (unsigned long long)idx, (unsigned long long)paddr,
			(unsigned long long)(off + filesz), (unsigned long long)e->src.size);
		return -ENODATA;
	}
	if (e->machine == KPY_EM_X86_64 && vaddr >= KPY_X86_KERNEL_MAP && !e->have_kernel_text) {
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

/*
 * The number of program headers: e_phnum, or with PN_XNUM (more than 65534, as QEMU and
 * makedumpfile write for big dumps) section header 0's sh_info. Checked against the file
 * before anything is sized by it.
 */
static int count_phdrs(struct kpy_elf *e, const unsigned char *eh, uint64_t *phnum, char *msg,
		       uint64_t *err_off)
{
	uint64_t phoff = kpy_get64(eh + 32), n = kpy_get16(eh + 56);
	unsigned char sh[SHDR_SIZE];
	int ret;

	if (n == PN_XNUM) {
		uint64_t shoff = kpy_get64(eh + 40);
		if (shoff == 0 || kpy_get16(eh + 58) != SHDR_SIZE) {
			KPY_MSG(msg, "e_phnum is PN_XNUM but there is no section header 0 to hold "
				"the count (e_shoff %#llx, e_shentsize %u)",
				(unsigned long long)shoff, kpy_get16(eh + 58));
			return -ENOEXEC;
		}
		if ((ret = kpy_src_pread(&e->src, sh, sizeof(sh), shoff))) {
			*err_off = shoff;
			KPY_MSG(msg, "truncated: section header 0 (the PN_XNUM count) at offset "
				"%#llx is past the end", (unsigned long long)shoff);
			return ret;
		}
		n = kpy_get32(sh + 44);
		if (n == 0) {
			KPY_MSG(msg, "e_phnum is PN_XNUM but section header 0 counts no program "
				"headers");
			return -ENOEXEC;
		}
	}
	if (e->src.size != UINT64_MAX ? (phoff > e->src.size ||
					 n > (e->src.size - phoff) / PHDR_SIZE) : n > PHNUM_MAX) {
		*err_off = phoff;
		KPY_MSG(msg, "truncated: %llu program headers at offset %#llx do not fit in the "
			"file", (unsigned long long)n, (unsigned long long)phoff);
		return -ENODATA;
	}
	*phnum = n;
	return 0;
}

static int read_phdrs(struct kpy_elf *e, const unsigned char *eh, uint64_t phnum,
		      struct pcand *c, size_t *nc, char *msg, uint64_t *err_off)
{
	uint64_t phoff = kpy_get64(eh + 32);
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
	for (uint64_t i = 0; i < phnum && !ret; i++) {
		const unsigned char *p = ph + (size_t)i * PHDR_SIZE;
		if (kpy_get32(p) == PT_NOTE)
			ret = read_notes(e, p, msg, err_off);
		else if (kpy_get32(p) == PT_LOAD)
			ret = add_load(e, c, nc, p, phoff, i, msg, err_off);
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

/*
 * No kernel-text PT_LOAD (QEMU's dump-guest-memory without paging: p_vaddr is the
 * physical address or 0): the kernel's own mapping comes from VMCOREINFO's phys_base,
 * vaddr = __START_KERNEL_map + (paddr - phys_base).
 */
static void kernel_map_from_vmcoreinfo(struct kpy_elf *e)
{
	uint64_t pb;

	if (e->have_kernel_text || e->machine != KPY_EM_X86_64 ||
	    kpy_vmcoreinfo_u64(&e->notes, "NUMBER(phys_base)", 0, &pb))
		return;
	e->have_kernel_text = 1;
	e->kernel_vaddr = KPY_X86_KERNEL_MAP;
	e->kernel_paddr = pb;
}

/*
 * The dumped kernel's own physical address limit: VMCOREINFO's NUMBER(MAX_PHYSMEM_BITS)
 * (5.9+), else 52 bits with 5-level paging (NUMBER(pgtable_l5_enabled)=1) and 46 with
 * 4-level; a dump without VMCOREINFO keeps the architecture's 52. A PT_LOAD (with its
 * zero fill) that claims memory past it cannot be the kernel's RAM, and is refused
 * before bitmaps or loops are sized by it.
 */
static int check_phys_limit(struct kpy_elf *e, const struct pcand *c, size_t nc, char *msg,
			    uint64_t *err_off)
{
	uint64_t bits = 52, l5;
	const char *why = "x86_64's architectural limit";

	if (e->machine != KPY_EM_X86_64 || !e->notes.vmcoreinfo_size)
		return 0;
	if (!kpy_vmcoreinfo_u64(&e->notes, "NUMBER(MAX_PHYSMEM_BITS)", 10, &bits) &&
	    bits >= 32 && bits <= 52) {
		why = "NUMBER(MAX_PHYSMEM_BITS) in VMCOREINFO";
	} else if (!kpy_vmcoreinfo_u64(&e->notes, "NUMBER(pgtable_l5_enabled)", 10, &l5) && l5) {
		bits = 52;
		why = "5-level paging";
	} else {
		bits = 46;
		why = "4-level paging";
	}
	for (size_t i = 0; i < nc; i++) {
		if (c[i].p.end > (1ull << bits)) {
			*err_off = 0;
			KPY_MSG(msg, "PT_LOAD %zu claims physical memory up to %#llx%s, beyond the "
				"dumped kernel's %llu-bit physical address space (%s): the header "
				"is corrupt", c[i].idx, (unsigned long long)c[i].p.end,
				c[i].p.zero ? " as zero fill past its file data" : "",
				(unsigned long long)bits, why);
			return -ENOEXEC;
		}
	}
	return 0;
}

static int build_pieces(struct kpy_elf *e, struct pcand *c, size_t nc, char *msg)
{
	int ret;

	qsort(c, nc, sizeof(*c), cand_cmp);
	if (!(e->pieces = calloc(2 * nc + 1, sizeof(*e->pieces))))
		return -ENOMEM;
	e->npieces = paint(e->pieces, c, nc, &ret);
	if (ret)
		return ret;
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
	return kpy_elf_attach_info(e, src, NULL, 0, msg, err_off);
}

int kpy_elf_attach_info(struct kpy_elf *e, const struct kpy_src *src, const char *vmcoreinfo,
			size_t vmcoreinfo_len, char *msg, uint64_t *err_off)
{
	unsigned char eh[EHDR_SIZE];
	struct pcand *c = NULL;
	size_t nc = 0;
	uint64_t phnum;
	int ret;

	memset(e, 0, sizeof(*e));
	e->src = *src;
	*err_off = 0;
	if (kpy_src_pread(&e->src, eh, 8, 0) == 0 && memcmp(eh, "KDUMP   ", 8) == 0)
		return kpy_elf_attach_kdump(e, vmcoreinfo, vmcoreinfo_len, msg, err_off);
	if ((ret = kpy_src_pread(&e->src, eh, sizeof(eh), 0))) {
		KPY_MSG(msg, ret == -ENODATA ? "not an ELF file (shorter than an ELF header)"
			: "cannot read the ELF header");
		return ret == -ENODATA ? -ENOEXEC : ret;
	}
	if ((ret = check_ehdr(eh, msg)))
		return ret;
	e->machine = kpy_get16(eh + 18);
	e->e_flags = kpy_get32(eh + 48);
	if (kpy_get16(eh + 56) == 0) {
		if (!(ret = kpy_elf_attach_xen(e, eh, msg, err_off)) && vmcoreinfo)
			ret = kpy_notes_add_vmcoreinfo(&e->notes, vmcoreinfo, vmcoreinfo_len, msg);
		if (!ret)
			kernel_map_from_vmcoreinfo(e);
		return ret;
	}
	if ((ret = count_phdrs(e, eh, &phnum, msg, err_off)))
		return ret;
	if (!(c = calloc((size_t)phnum * 2, sizeof(*c))))
		return -ENOMEM;
	if (!(ret = read_phdrs(e, eh, phnum, c, &nc, msg, err_off)) && vmcoreinfo)
		ret = kpy_notes_add_vmcoreinfo(&e->notes, vmcoreinfo, vmcoreinfo_len, msg);
	if (!ret) {
		set_page_size(e);
		kernel_map_from_vmcoreinfo(e);
		if (!(ret = check_phys_limit(e, c, nc, msg, err_off)))
			ret = build_pieces(e, c, nc, msg);
	}
	free(c);
	return ret;
}

int kpy_elf_open(struct kpy_elf *e, int fd, char *msg, uint64_t *err_off)
{
	return kpy_elf_open_info(e, fd, NULL, 0, msg, err_off);
}

int kpy_elf_open_info(struct kpy_elf *e, int fd, const char *vmcoreinfo, size_t vmcoreinfo_len,
		      char *msg, uint64_t *err_off)
{
	struct kpy_src src;
	int ret = kpy_src_open(&src, fd, msg);

	if (ret) {
		*err_off = src.err_off;
		kpy_src_close(&src);
		memset(e, 0, sizeof(*e));
		return ret;
	}
	return kpy_elf_attach_info(e, &src, vmcoreinfo, vmcoreinfo_len, msg, err_off);
}

void kpy_elf_close(struct kpy_elf *e)
{
	kpy_elf_close_kdump(e);
	free(e->xen_m2p);
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
	size_t lo = 0, hi = e->npieces;

	while (lo < hi) {          /* the first piece that ends after a (pieces are sorted) */
		size_t mid = lo + (hi - lo) / 2;
		if (e->pieces[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	memset(buf, 0, ps);
	for (size_t i = lo; i < e->npieces && e->pieces[i].paddr < b; i++) {
		const struct kpy_piece *p = &e->pieces[i];
		if (p->zero)
			continue;
		uint64_t from = p->paddr > a ? p->paddr : a, to = p->end < b ? p->end : b;
		int ret = kpy_src_pread(&e->src, buf + (from - a), to - from,
					p->off + (from - p->paddr));
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
	if (e->kd)
		return kpy_elf_read_kdump(e, pfn, n, buf);
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
	if (e->kd || e->xen) {   /* through whole frames: kdump and xc_core have no pieces */
		unsigned char *page = malloc(e->page_size), *out = buf;
		int ret = page ? 0 : -ENOMEM;
		while (len && !ret) {
			uint64_t pfn = paddr / e->page_size, in = paddr % e->page_size;
			size_t n = e->page_size - in < len ? e->page_size - in : len;
			const struct kpy_run *r = kpy_elf_find_run(e, pfn);
			ret = r ? kpy_elf_read_frames(e, r, pfn, 1, page) : -ENOENT;
			if (!ret)
				memcpy(out, page + in, n);
			out += n;
			paddr += n;
			len -= n;
		}
		free(page);
		return ret;
	}
	for (size_t i = 0; i < e->npieces; i++) {
		const struct kpy_piece *p = &e->pieces[i];
		if (paddr >= p->paddr && paddr + len <= p->end && !p->zero)
			return kpy_src_pread(&e->src, buf, len, p->off + (paddr - p->paddr));
	}
	return -ENOENT;
}
