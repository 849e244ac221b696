/*
 * filter.c - dump levels 2-31: which page frames to leave out, from the crashed kernel's
 * struct pages (found through VMCOREINFO, SPARSEMEM mem_section and vmemmap).
 *
 * Rules, as makedumpfile applies them, first match wins for a page and for the
 * 2^order frames of a free block or compound page it heads:
 *   free (16)          _mapcount == PAGE_BUDDY_MAPCOUNT_VALUE, not slab; order in private
 *   cache (2)          PG_lru, or PG_swapcache with PG_swapbacked; not PG_private, not anon
 *   cache+private (4)  the same, PG_private allowed
 *   user (8)           anonymous (mapping & 1, not slab) or hugetlb (compound dtor / type)
 *   always             PG_hwpoison; offline (_mapcount == PAGE_OFFLINE_MAPCOUNT_VALUE)
 * Compound tails (compound_head & 1) go with their head.
 *
 * Memory is bounded: the frames are classified in windows of f->window frames (one bitmap
 * of that many bits), each on its own, in the order the copier asks for them. A block
 * that starts before a window is found by looking back at the aligned heads that could
 * cover the window's first frame.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

#define CHUNK 512                  /* struct pages read at once (makedumpfile's cache) */
#define LOOKBACK_ORDER 18          /* largest block looked for across a window start */
#define SECTION_FLAG_BITS 0x3full  /* low bits of section_mem_map that are flags */

static int elf_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	struct kpy_filter *f = ctx;
	uint32_t ps = f->in->page_size;
	unsigned char *out = buf;

	while (len) {
		uint64_t pfn = paddr / ps;
		size_t at = paddr % ps, n = ps - at < len ? ps - at : len;
		if (!f->frame_ok || f->frame_pfn != pfn) {
			const struct kpy_run *r = kpy_elf_find_run(f->in, pfn);
			f->frame_ok = 0;
			if (!r)
				return -ENOENT;
			int ret = kpy_elf_read_frames(f->in, r, pfn, 1, f->frame);
			if (ret)
				return ret;
			f->frame_pfn = pfn;
			f->frame_ok = 1;
		}
		memcpy(out, f->frame + at, n);
		out += n;
		paddr += n;
		len -= n;
	}
	return 0;
}

static int need(struct kpy_filter *f, const char *key, int base, uint64_t *v, const char *why)
{
	if (kpy_vmcoreinfo_u64(&f->in->notes, key, base, v) == 0)
		return 0;
	KPY_MSG(f->msg, "dump level %d needs %s in VMCOREINFO (%s); this kernel does not "
		"export it", f->level, key, why);
	return -ENOTSUP;
}

static int64_t opt_num(struct kpy_filter *f, const char *key, int *have)
{
	uint64_t v = 0;

	*have = kpy_vmcoreinfo_u64(&f->in->notes, key, 0, &v) == 0;
	return (int64_t)v;
}

static int memory_model(struct kpy_filter *f)
{
	const char *why = "to find struct pages (SPARSEMEM)";
	uint64_t v;
	int ret;

	if ((ret = need(f, "SYMBOL(mem_section)", 16, &f->mem_section, why)) ||
	    (ret = need(f, "NUMBER(SECTION_SIZE_BITS)", 0, &v, why)))
		return ret;
	if (v <= 12 || v >= 48)
		return -EINVAL;
	f->section_shift = (unsigned)v - 12;
	if ((ret = need(f, "SIZE(mem_section)", 10, &f->ms_size, why)) ||
	    (ret = need(f, "OFFSET(mem_section.section_mem_map)", 10, &f->ms_map_off, why)) ||
	    (ret = need(f, "SIZE(page)", 10, &f->sp_size, why)) ||
	    (ret = need(f, "OFFSET(page.flags)", 10, &f->off_flags, why)) ||
	    (ret = need(f, "SYMBOL(init_top_pgt)", 16, &v, "to reach vmemmap")))
		return ret;
	if (!f->ms_size || f->sp_size < 16 || f->sp_size > 256)
		return -EINVAL;
	f->per_root = f->in->page_size / f->ms_size;
	return 0;
}

static int level_keys(struct kpy_filter *f)
{
	int lvl = f->level, ret = 0;
	uint64_t v;

	if (lvl & 6) {
		const char *why = "to find page-cache pages";
		if ((ret = need(f, "NUMBER(PG_lru)", 0, &v, why)))
			return ret;
		f->pg_lru = v;
		if ((ret = need(f, "NUMBER(PG_swapcache)", 0, &v, why)))
			return ret;
		f->pg_swapcache = v;
		f->pg_swapbacked = opt_num(f, "NUMBER(PG_swapbacked)", &f->have_swapbacked);
		if ((lvl & 2) && (ret = need(f, "NUMBER(PG_private)", 0, &v, "private cache pages")))
			return ret;
		f->pg_private = v;
	}
	if ((lvl & 14) && (ret = need(f, "OFFSET(page.mapping)", 10, &f->off_mapping,
				       "to tell anonymous pages")))
		return ret;
	if (lvl & 16) {
		const char *why = "to find free pages";
		if ((ret = need(f, "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", 0, &v, why)) ||
		    (ret = need(f, "OFFSET(page._mapcount)", 10, &f->off_mapcount, why)) ||
		    (ret = need(f, "OFFSET(page.private)", 10, &f->off_private, why)))
			return ret;
		f->buddy_val = (int32_t)v;
	}
	return 0;
}

static void optional_keys(struct kpy_filter *f)
{
	const struct kpy_notes *n = &f->in->notes;

	f->have_mapcount = kpy_vmcoreinfo_u64(n, "OFFSET(page._mapcount)", 10, &f->off_mapcount) == 0;
	f->have_private = kpy_vmcoreinfo_u64(n, "OFFSET(page.private)", 10, &f->off_private) == 0;
	f->have_head = kpy_vmcoreinfo_u64(n, "OFFSET(page.compound_head)", 10, &f->off_head) == 0;
	f->have_order = kpy_vmcoreinfo_u64(n, "OFFSET(page.compound_order)", 10, &f->off_order) == 0;
	if (f->have_order)
		f->off_order += f->sp_size;        /* a field of the first tail page */
	else if (kpy_vmcoreinfo_u64(n, "OFFSET(folio._folio_order)", 10, &f->off_order) == 0)
		f->have_order = 1;                 /* already counted from the head page */
	f->have_dtor = kpy_vmcoreinfo_u64(n, "OFFSET(page.compound_dtor)", 10, &f->off_dtor) == 0;
	if (f->have_dtor)
		f->off_dtor += f->sp_size;
	f->head_mask = (uint64_t)opt_num(f, "NUMBER(PG_head_mask)", &f->have_head_mask);
	f->pg_slab = opt_num(f, "NUMBER(PG_slab)", &f->have_slab);
	f->slab_val = (int32_t)opt_num(f, "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", &f->have_slab_val);
	f->pg_hwpoison = opt_num(f, "NUMBER(PG_hwpoison)", &f->have_hwpoison);
	f->offline_val = (int32_t)opt_num(f, "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)", &f->have_offline);
	f->hugetlb_dtor = opt_num(f, "NUMBER(HUGETLB_PAGE_DTOR)", &f->have_hugetlb_dtor);
	f->hugetlb_val = (int32_t)opt_num(f, "NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)",
					  &f->have_hugetlb_val);
}

int kpy_filter_init(struct kpy_filter *f, struct kpy_elf *in, int level, uint64_t window,
		    int classes, char *msg)
{
	int ret;

	memset(f, 0, sizeof(*f));
	f->in = in;
	f->level = level;
	f->msg = msg;
	f->win_start = UINT64_MAX;
	f->window = window ? (window + 63) & ~63ull : KPY_FILTER_WINDOW;
	if (in->machine != KPY_EM_X86_64) {
		KPY_MSG(msg, "dump level %d needs page classification, which supports x86_64 "
			"vmcores only", level);
		return -ENOTSUP;
	}
	if (!in->notes.vmcoreinfo_size && in->xen) {
		KPY_MSG(msg, "dump level %d needs VMCOREINFO, which a Xen dump (xc_core) never "
			"carries: pass --vmcoreinfo FILE (the guest's /sys/kernel/vmcoreinfo "
			"note, or makedumpfile -g output of the same kernel), or use -d 0 or 1",
			level);
		return -ENOTSUP;
	}
	if (!in->notes.vmcoreinfo_size) {
		KPY_MSG(msg, "dump level %d needs VMCOREINFO, which this dump lacks (a QEMU guest "
			"dump has it when the guest ran with -device vmcoreinfo and loaded "
			"qemu_fw_cfg): pass --vmcoreinfo FILE (makedumpfile -g output of the same "
			"kernel), or use -d 0 or 1", level);
		return -ENOTSUP;
	}
	if ((ret = memory_model(f)) || (ret = level_keys(f))) {
		if (ret == -EINVAL)
			KPY_MSG(msg, "VMCOREINFO has implausible memory model values "
				"(SECTION_SIZE_BITS, SIZE(mem_section) or SIZE(page))");
		return ret;
	}
	optional_keys(f);
	kpy_x86_init(&f->x86, &in->notes, elf_phys, f);
	kpy_x86_from_elf_input(&f->x86, in);
	if (in->have_kernel_text)
		kpy_x86_set_phys_base(&f->x86, in->kernel_paddr -
				      (in->kernel_vaddr - KPY_X86_KERNEL_MAP));
	f->keep = malloc(f->window / 8);
	f->pages = malloc((CHUNK + 1) * f->sp_size);
	f->frame = malloc(in->page_size);
	if (classes && !(f->why = malloc(f->window)))
		return -ENOMEM;
	return f->keep && f->pages && f->frame ? 0 : -ENOMEM;
}

void kpy_filter_fini(struct kpy_filter *f)
{
	free(f->keep);
	free(f->pages);
	free(f->frame);
	free(f->why);
	f->keep = NULL;
	f->why = NULL;
	f->pages = f->frame = NULL;
}

/* Encoded mem_map of pfn's section (struct page of pfn = map + pfn * SIZE(page)), or 0
 * when the section has no struct pages. */
static uint64_t section_map(struct kpy_filter *f, uint64_t pfn)
{
	uint64_t nr = pfn >> f->section_shift, root = 0, smm = 0;
	unsigned char b[8];

	if (f->sec_valid && f->sec_nr == nr)
		return f->sec_map;
	f->sec_valid = 1;
	f->sec_nr = nr;
	f->sec_map = 0;
	if (kpy_x86_read(&f->x86, f->mem_section + 8 * (nr / f->per_root), b, 8))
		return 0;
	root = kpy_get64(b);
	if (!root || kpy_x86_read(&f->x86, root + (nr % f->per_root) * f->ms_size +
				  f->ms_map_off, b, 8))
		return 0;
	smm = kpy_get64(b);
	if ((smm & 3) != 3)        /* SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP */
		return 0;
	f->sec_map = smm & ~SECTION_FLAG_BITS;
	return f->sec_map;
}

/* n struct pages from pfn into f->pages; unreadable ones read as zeros (kept). */
static void read_pages(struct kpy_filter *f, uint64_t map, uint64_t pfn, uint64_t n)
{
	uint64_t va = map + pfn * f->sp_size, len = n * f->sp_size, done = 0;

	while (done < len) {
		uint64_t cut = 4096 - ((va + done) & 4095);
		if (cut > len - done)
			cut = len - done;
		if (kpy_x86_read(&f->x86, va + done, f->pages + done, cut)) {
			memset(f->pages + done, 0, cut);
			f->unreadable++;
		}
		done += cut;
	}
}

static int is_slab(const struct kpy_filter *f, uint64_t flags, int32_t mapcount)
{
	if (f->have_slab)
		return (flags >> f->pg_slab) & 1;
	return f->have_slab_val && mapcount == f->slab_val;
}

static int is_cache(const struct kpy_filter *f, uint64_t flags)
{
	if ((flags >> f->pg_lru) & 1)
		return 1;
	return (!f->have_swapbacked || ((flags >> f->pg_swapbacked) & 1)) &&
	       ((flags >> f->pg_swapcache) & 1);
}

struct page_facts {
	uint64_t flags, mapping, priv, head;
	int32_t mapcount;
	unsigned order, dtor;
};

static void facts(const struct kpy_filter *f, uint64_t pfn, const unsigned char *sp,
		  const unsigned char *next, struct page_facts *p)
{
	memset(p, 0, sizeof(*p));
	p->flags = kpy_get64(sp + f->off_flags);
	if (f->level & 14)
		p->mapping = kpy_get64(sp + f->off_mapping);
	if (f->have_mapcount)
		p->mapcount = (int32_t)kpy_get32(sp + f->off_mapcount);
	if (f->have_private)
		p->priv = kpy_get64(sp + f->off_private);
	if (f->have_head)
		p->head = kpy_get64(sp + f->off_head);
	if (next && f->have_head_mask && (p->flags & f->head_mask)) {
		if (f->have_order)
			p->order = sp[f->off_order];
		if (f->have_dtor)
			p->dtor = sp[f->off_dtor];
		if (p->order >= 64 || (pfn & ((1ull << p->order) - 1)))
			p->order = 0;
	}
}

/* Frames to leave out starting at pfn (0: keep pfn), and in *why the rule's class. */
static uint64_t rule(const struct kpy_filter *f, uint64_t pfn, const unsigned char *sp,
		     const unsigned char *next, int *why)
{
	struct page_facts p;
	int lvl = f->level;

	facts(f, pfn, sp, next, &p);
	if (p.head & 1)
		return 0;      /* a compound tail: goes with its head */
	uint64_t nr = 1ull << p.order;
	int slab = is_slab(f, p.flags, p.mapcount);
	int anon = !slab && (p.mapping & 1);
	int priv = (int)((p.flags >> f->pg_private) & 1);
	if ((lvl & 16) && !slab && p.mapcount == f->buddy_val) {
		*why = KPY_MU_FREE;
		return p.priv < 40 ? 1ull << p.priv : 1;
	}
	if ((lvl & 6) && is_cache(f, p.flags) && !anon && ((lvl & 4) || !priv)) {
		*why = priv ? KPY_MU_CACHE_PRIVATE : KPY_MU_CACHE;
		return nr;
	}
	if ((lvl & 8) && (anon || (f->have_hugetlb_dtor && p.order && p.dtor == f->hugetlb_dtor) ||
			  (f->have_hugetlb_val && p.mapcount == f->hugetlb_val))) {
		*why = KPY_MU_USER;
		return nr;
	}
	if (f->have_hwpoison && ((p.flags >> f->pg_hwpoison) & 1)) {
		*why = KPY_MU_HWPOISON;
		return nr;
	}
	if (f->have_offline && !slab && p.mapcount == f->offline_val) {
		*why = KPY_MU_OFFLINE;
		return nr;
	}
	return 0;
}

/* Leave out [lo, hi) of the window (up to end); the first rule to leave a frame out
 * names its class, as makedumpfile counts it. */
static void clear_range(struct kpy_filter *f, uint64_t lo, uint64_t hi, uint64_t end, int why)
{
	if (hi > end)
		hi = end;
	for (uint64_t p = lo; p < hi; p++) {
		uint64_t i = p - f->win_start, bit = 1ull << (i & 63);
		if (f->why && (f->keep[i >> 6] & bit))
			f->why[i] = (unsigned char)why;
		f->keep[i >> 6] &= ~bit;
	}
}

/* The frames [s, ..) a block that starts before s leaves out; returns where it ends. */
static uint64_t lookback(struct kpy_filter *f, uint64_t s, uint64_t e)
{
	for (int o = LOOKBACK_ORDER; o >= 1; o--) {
		uint64_t h = s & ~((1ull << o) - 1), map;
		if (h == s || !(map = section_map(f, h)))
			continue;
		int why = KPY_MU_KERNEL;
		read_pages(f, map, h, 2);
		uint64_t nr = rule(f, h, f->pages, f->pages + f->sp_size, &why);
		if (h + nr > s) {
			clear_range(f, s, h + nr, e, why);
			return h + nr;
		}
	}
	return s;
}

static void classify_window(struct kpy_filter *f, uint64_t s, uint64_t e)
{
	uint64_t pfn;

	memset(f->keep, 0xff, f->window / 8);
	f->sec_valid = 0;
	pfn = lookback(f, s, e);
	while (pfn < e) {
		uint64_t map = section_map(f, pfn), sec = 1ull << f->section_shift;
		uint64_t sec_end = (pfn | (sec - 1)) + 1;
		if (!map) {
			pfn = sec_end;
			continue;
		}
		uint64_t end = (pfn / CHUNK + 1) * CHUNK;
		end = end < e ? end : e;
		end = end < sec_end ? end : sec_end;
		uint64_t n = end - pfn, extra = (end % CHUNK) && end < sec_end;
		read_pages(f, map, pfn, n + extra);
		uint64_t i = 0;
		while (i < n) {
			const unsigned char *sp = f->pages + i * f->sp_size;
			int why = KPY_MU_KERNEL;
			uint64_t nr = rule(f, pfn + i, sp, i + 1 < n + extra ? sp + f->sp_size : NULL,
					   &why);
			if (nr)
				clear_range(f, pfn + i, pfn + i + nr, e, why);
			i += nr ? nr : 1;
		}
		pfn += i;
	}
}

/*
 * The end of the highest memory section with struct pages. Frames above it are memory
 * the kernel never managed (a QEMU guest dump also holds VRAM and the BIOS ROM; mem= left
 * RAM unused): makedumpfile caps max_mapnr there and so leaves them out at every level it
 * classifies pages, and so does this filter. Roots of mem_section that are empty are
 * skipped whole; the scan starts at the dump's highest frame, bounded by the sections an
 * x86_64 kernel can have.
 */
static void find_memmap_end(struct kpy_filter *f)
{
	uint64_t limit = 1ull << (52 - 12 - f->section_shift);      /* sections, 52-bit */
	uint64_t nr = f->in->max_pfn ? (f->in->max_pfn - 1) >> f->section_shift : 0;
	unsigned char b[8];

	f->memmap_end = UINT64_MAX;
	f->memmap_end_known = 1;
	if (nr >= limit)
		nr = limit - 1;
	for (uint64_t i = nr + 1; i-- > 0;) {
		if (i % f->per_root == f->per_root - 1 || i == nr) {
			if (kpy_x86_read(&f->x86, f->mem_section + 8 * (i / f->per_root), b, 8) ||
			    !kpy_get64(b)) {
				i -= i % f->per_root;          /* the whole root is empty */
				continue;
			}
		}
		if (section_map(f, i << f->section_shift)) {
			f->memmap_end = (i + 1) << f->section_shift;
			break;
		}
	}
	f->sec_valid = 0;
}

int kpy_filter_keep(struct kpy_filter *f, uint64_t pfn)
{
	if (!f->memmap_end_known)
		find_memmap_end(f);
	if (pfn >= f->memmap_end)
		return 0;
	if (f->win_start == UINT64_MAX || pfn < f->win_start || pfn - f->win_start >= f->window) {
		f->win_start = pfn - pfn % f->window;
		classify_window(f, f->win_start, f->win_start + f->window);
		f->windows++;
	}
	uint64_t i = pfn - f->win_start;
	return (int)((f->keep[i >> 6] >> (i & 63)) & 1);
}

int kpy_filter_class(struct kpy_filter *f, uint64_t pfn)
{
	if (kpy_filter_keep(f, pfn))
		return KPY_MU_KERNEL;
	if (pfn >= f->memmap_end)
		return KPY_MU_NO_MEMMAP;
	return f->why[pfn - f->win_start];
}
