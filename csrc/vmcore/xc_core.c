/*
 * xc_core.c - a Xen domain dump (`xl dump-core`, virsh dump on Xen: the xc_core format) as
 * the copier's input, in the same shape the ELF reader gives: sorted runs of frames.
 *
 * The format is an ELF64 ET_CORE file with no program headers. Its sections say where
 * things are: `.note.Xen` (notes named "Xen": the dump-core header with its magic, vCPU
 * count, page count and page size, the Xen version, the format version), `.xen_prstatus`
 * (vCPU contexts), `.xen_shared_info`, `.xen_pages` (the guest's pages, one after another)
 * and the page map: `.xen_pfn` for an HVM (auto-translated) guest, one u64 guest frame
 * number per page, or `.xen_p2m` for a PV guest, {pfn, gmfn} pairs. Map entry i describes
 * page i of `.xen_pages`; entries need not be in frame order, and a live dump pads the map
 * with ~0 entries for pages it could not take.
 *
 * Frames are the guest's (pseudo-)physical frames. A PV guest's page tables hold machine
 * frames, so for PV the reader also keeps the machine-to-physical table the x86_64 walk
 * translates through. Xen's notes describe this file's layout and are not carried into
 * the output; a Linux guest's VMCOREINFO is not in the format, so dump levels above 1 and
 * vmcore-dmesg need --vmcoreinfo (taken in the guest from /sys/kernel/vmcoreinfo or with
 * makedumpfile -g).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

#define SHDR_SIZE 64
#define SHT_NOTE 7
#define SHSTRTAB_MAX (1u << 20)
#define XEN_NOTES_MAX (1u << 20)
#define MAP_CHUNK 8192                     /* map entries per read */
#define MAP_MAX_UNKNOWN (1ull << 28)       /* entries when the file size is unknown */
#define X86_PFN_LIMIT (1ull << (52 - 12))  /* frames below MAXPHYADDR's maximum */
#define INVALID_ENTRY UINT64_MAX
#define XEN_NOTE_HEADER 0x2000001u
#define XEN_MAGIC_PV  0xF00FEBEDull
#define XEN_MAGIC_HVM 0xF00FEBEEull

struct sect { uint64_t off, size, entsize; int found; };
struct pair { uint64_t key, val; };

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* The dump-core header note: page size and the PV/HVM magic (0 when absent). */
static int read_xen_notes(struct kpy_elf *e, const struct sect *s, uint64_t *magic,
			  uint64_t *page_size, char *msg, uint64_t *err_off)
{
	unsigned char *buf;
	size_t pos = 0;
	int ret;

	*magic = 0;
	*page_size = 0;
	if (!s->found)
		return 0;
	if (s->size > XEN_NOTES_MAX) {
		*err_off = s->off;
		KPY_MSG(msg, "xc_core: .note.Xen of %llu bytes is implausibly big",
			(unsigned long long)s->size);
		return -EFBIG;
	}
	if (!(buf = malloc(s->size + 1)))
		return -ENOMEM;
	if ((ret = kpy_src_pread(&e->src, buf, s->size, s->off))) {
		*err_off = s->off;
		KPY_MSG(msg, "truncated: xc_core's .note.Xen at offset %#llx is past the end",
			(unsigned long long)s->off);
		free(buf);
		return ret;
	}
	while (pos + 12 <= s->size) {
		uint32_t namesz = kpy_get32(buf + pos), descsz = kpy_get32(buf + pos + 4);
		uint32_t type = kpy_get32(buf + pos + 8);
		size_t name = pos + 12, desc = name + ((namesz + 3ull) & ~3ull);
		size_t next = desc + ((descsz + 3ull) & ~3ull);

		if (namesz > s->size || descsz > s->size || next > s->size)
			break;
		if (type == XEN_NOTE_HEADER && namesz == 4 && memcmp(buf + name, "Xen", 4) == 0 &&
		    descsz >= 32) {
			*magic = kpy_get64(buf + desc);
			*page_size = kpy_get64(buf + desc + 24);
		}
		pos = next;
	}
	free(buf);
	return 0;
}

static int read_sections(struct kpy_elf *e, const unsigned char *eh, struct sect *notes,
			 struct sect *pages, struct sect *pfn, struct sect *p2m, char *msg,
			 uint64_t *err_off)
{
	uint64_t shoff = kpy_get64(eh + 40);
	unsigned shentsize = kpy_get16(eh + 58), shnum = kpy_get16(eh + 60);
	unsigned shstrndx = kpy_get16(eh + 62);
	unsigned char *sh = NULL, *str = NULL;
	uint64_t str_size;
	int ret = 0;

	if (shnum == 0 || shentsize != SHDR_SIZE || shstrndx >= shnum) {
		KPY_MSG(msg, "an ELF core file with no program headers and no usable section "
			"headers (e_shnum %u, e_shentsize %u, e_shstrndx %u): not a vmcore, and "
			"not a Xen dump (xc_core)", shnum, shentsize, shstrndx);
		return -ENOEXEC;
	}
	if (!(sh = malloc((size_t)shnum * SHDR_SIZE)))
		return -ENOMEM;
	if ((ret = kpy_src_pread(&e->src, sh, (size_t)shnum * SHDR_SIZE, shoff))) {
		*err_off = shoff;
		KPY_MSG(msg, "truncated: %u section headers at offset %#llx are past the end",
			shnum, (unsigned long long)shoff);
		goto out;
	}
	str_size = kpy_get64(sh + shstrndx * SHDR_SIZE + 32);
	if (str_size > SHSTRTAB_MAX) {
		*err_off = shoff + shstrndx * SHDR_SIZE;
		KPY_MSG(msg, "the section name table claims %llu bytes",
			(unsigned long long)str_size);
		ret = -EFBIG;
		goto out;
	}
	if (!(str = calloc(1, str_size + 1))) {
		ret = -ENOMEM;
		goto out;
	}
	if ((ret = kpy_src_pread(&e->src, str, str_size,
				 kpy_get64(sh + shstrndx * SHDR_SIZE + 24)))) {
		*err_off = kpy_get64(sh + shstrndx * SHDR_SIZE + 24);
		KPY_MSG(msg, "truncated: the section name table at offset %#llx is past the end",
			(unsigned long long)*err_off);
		goto out;
	}
	for (unsigned i = 0; i < shnum; i++) {
		const unsigned char *h = sh + i * SHDR_SIZE;
		uint32_t name = kpy_get32(h);
		const char *nm = name < str_size ? (const char *)str + name : "";
		struct sect *s = !strcmp(nm, ".note.Xen") ? notes : !strcmp(nm, ".xen_pages") ? pages
			: !strcmp(nm, ".xen_pfn") ? pfn : !strcmp(nm, ".xen_p2m") ? p2m : NULL;

		if (!s)
			continue;
		if (s->found) {
			*err_off = shoff + i * SHDR_SIZE;
			KPY_MSG(msg, "xc_core: two %s sections", nm);
			ret = -ENOEXEC;
			goto out;
		}
		*s = (struct sect){ kpy_get64(h + 24), kpy_get64(h + 32), kpy_get64(h + 56), 1 };
		if (s == notes && kpy_get32(h + 4) != SHT_NOTE)
			notes->found = 0;
		if (s->off + s->size < s->off || s->off + s->size > e->src.size) {
			/* the pages may be cut short (a copy that stopped): reads past the end then
			 * fail and the copy is incomplete; the map and notes must be whole */
			if (s != pages) {
				*err_off = s->off;
				KPY_MSG(msg, "truncated: xc_core's %s section (%llu bytes at offset "
					"%#llx) is past the end of the file", nm,
					(unsigned long long)s->size, (unsigned long long)s->off);
				ret = -ENODATA;
				goto out;
			}
		}
	}
out:
	free(sh);
	free(str);
	return ret;
}

/*
 * Map entries -> (pfn, page index) sorted by pfn; for PV also (gmfn, pfn) sorted by gmfn.
 * ~0 entries (pages a live dump could not take) are left out.
 */
static int read_map(struct kpy_elf *e, const struct sect *map, int pv, uint64_t npages,
		    struct pair **byfn, struct pair **m2p, size_t *n, char *msg,
		    uint64_t *err_off)
{
	size_t ent = pv ? 16 : 8, count, got = 0;
	unsigned char *buf = NULL;
	int ret = 0;

	*byfn = *m2p = NULL;
	*n = 0;
	if (map->size % ent) {
		*err_off = map->off;
		KPY_MSG(msg, "xc_core: %s is %llu bytes, not a whole number of %zu-byte entries",
			pv ? ".xen_p2m" : ".xen_pfn", (unsigned long long)map->size, ent);
		return -ENOEXEC;
	}
	count = map->size / ent;
	if (e->src.size == UINT64_MAX && count > MAP_MAX_UNKNOWN) {
		KPY_MSG(msg, "xc_core: the page map claims %zu entries", count);
		return -EFBIG;
	}
	if (!(*byfn = malloc((count ? count : 1) * sizeof(**byfn))) ||
	    (pv && !(*m2p = malloc((count ? count : 1) * sizeof(**m2p)))) ||
	    !(buf = malloc(MAP_CHUNK * ent))) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < count; i += MAP_CHUNK) {
		size_t k = count - i < MAP_CHUNK ? count - i : MAP_CHUNK;
		if ((ret = kpy_src_pread(&e->src, buf, k * ent, map->off + i * ent))) {
			*err_off = map->off + i * ent;
			KPY_MSG(msg, "truncated: xc_core's page map is cut at entry %zu", i);
			goto fail;
		}
		for (size_t j = 0; j < k; j++) {
			uint64_t pfn = kpy_get64(buf + j * ent);
			uint64_t idx = i + j;
			if (pfn == INVALID_ENTRY)
				continue;
			if (pfn >= X86_PFN_LIMIT) {
				*err_off = map->off + idx * ent;
				KPY_MSG(msg, "xc_core: page map entry %llu names frame %#llx, beyond "
					"x86_64's 52-bit physical address space",
					(unsigned long long)idx, (unsigned long long)pfn);
				ret = -ERANGE;
				goto fail;
			}
			if (idx >= npages) {
				*err_off = map->off + idx * ent;
				KPY_MSG(msg, "xc_core: page map entry %llu (frame %#llx) has no page: "
					".xen_pages holds %llu", (unsigned long long)idx,
					(unsigned long long)pfn, (unsigned long long)npages);
				ret = -ENODATA;
				goto fail;
			}
			(*byfn)[got] = (struct pair){ pfn, idx };
			if (pv)
				(*m2p)[got] = (struct pair){ kpy_get64(buf + j * ent + 8), pfn };
			got++;
		}
	}
	qsort(*byfn, got, sizeof(**byfn), pair_cmp);
	for (size_t i = 1; i < got; i++)
		if ((*byfn)[i].key == (*byfn)[i - 1].key) {
			KPY_MSG(msg, "xc_core: frame %#llx is listed twice in the page map (pages "
				"%llu and %llu)", (unsigned long long)(*byfn)[i].key,
				(unsigned long long)(*byfn)[i - 1].val,
				(unsigned long long)(*byfn)[i].val);
			ret = -ENOEXEC;
			goto fail;
		}
	if (pv)
		qsort(*m2p, got, sizeof(**m2p), pair_cmp);
	*n = got;
	free(buf);
	return 0;
fail:
	free(buf);
	free(*byfn);
	free(*m2p);
	*byfn = *m2p = NULL;
	return ret;
}

int kpy_elf_attach_xen(struct kpy_elf *e, const unsigned char *eh, char *msg,
		       uint64_t *err_off)
{
	struct sect notes = { 0 }, pages = { 0 }, pfn = { 0 }, p2m = { 0 };
	struct pair *byfn = NULL, *m2p = NULL;
	uint64_t magic, ps;
	size_t n;
	int ret, pv;

	if ((ret = read_sections(e, eh, &notes, &pages, &pfn, &p2m, msg, err_off)))
		return ret;
	if (!pages.found) {
		KPY_MSG(msg, "an ELF core file with no program headers and no .xen_pages section: "
			"not a vmcore, and not a Xen dump (xc_core)");
		return -ENOEXEC;
	}
	if (pfn.found == p2m.found) {
		KPY_MSG(msg, "xc_core: %s", pfn.found ? "both a .xen_pfn and a .xen_p2m page map"
			: "no page map (.xen_pfn or .xen_p2m)");
		return -ENOEXEC;
	}
	pv = p2m.found;
	if ((ret = read_xen_notes(e, &notes, &magic, &ps, msg, err_off)))
		return ret;
	if (magic && magic != (pv ? XEN_MAGIC_PV : XEN_MAGIC_HVM)) {
		KPY_MSG(msg, "xc_core: the dump-core header's magic %#llx does not match its %s "
			"page map (%s guest)", (unsigned long long)magic,
			pv ? ".xen_p2m" : ".xen_pfn", pv ? "PV" : "HVM");
		return -ENOEXEC;
	}
	if (!ps)
		ps = 4096;
	if (e->machine == KPY_EM_X86_64 && ps != 4096) {
		KPY_MSG(msg, "xc_core: page size %llu in an x86_64 dump (expected 4096)",
			(unsigned long long)ps);
		return -ENOEXEC;
	}
	if (ps < 1024 || ps > (1u << 20) || (ps & (ps - 1))) {
		KPY_MSG(msg, "xc_core: bad page size %llu", (unsigned long long)ps);
		return -ENOEXEC;
	}
	e->page_size = (uint32_t)ps;
	e->xen = pv ? KPY_XEN_PV : KPY_XEN_HVM;
	if ((ret = read_map(e, pv ? &p2m : &pfn, pv, pages.size / ps, &byfn, &m2p, &n, msg,
			    err_off)))
		return ret;
	if (!n) {
		free(byfn);
		free(m2p);
		KPY_MSG(msg, "xc_core: the dump holds no pages: nothing to copy");
		return -ENOEXEC;
	}
	/* runs: consecutive frames stored one after another */
	size_t nr = 0;
	for (size_t i = 0; i < n; i++)
		if (!i || byfn[i].key != byfn[i - 1].key + 1 || byfn[i].val != byfn[i - 1].val + 1)
			nr++;
	if (!(e->runs = calloc(nr, sizeof(*e->runs)))) {
		free(byfn);
		free(m2p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (e->nruns && byfn[i].key == byfn[i - 1].key + 1 &&
		    byfn[i].val == byfn[i - 1].val + 1) {
			e->runs[e->nruns - 1].count++;
			continue;
		}
		e->runs[e->nruns++] = (struct kpy_run){ byfn[i].key, 1, pages.off + byfn[i].val * ps,
							byfn[i].key * ps, KPY_RUN_DIRECT };
	}
	e->nr_frames = n;
	e->max_pfn = byfn[n - 1].key + 1;
	free(byfn);
	e->xen_m2p = (uint64_t *)m2p;       /* pairs {gmfn, pfn} sorted by gmfn */
	e->xen_nm2p = pv ? n : 0;
	return 0;
}

/* A PV guest's machine frame -> its pseudo-physical frame (x86_64 page-table walks). */
int kpy_elf_xen_m2p(void *ctx, uint64_t mfn, uint64_t *pfn)
{
	const struct kpy_elf *e = ctx;
	const struct pair *m = (const struct pair *)e->xen_m2p;
	size_t lo = 0, hi = e->xen_nm2p;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m[mid].key == mfn) {
			*pfn = m[mid].val;
			return 0;
		}
		if (m[mid].key < mfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -EFAULT;
}
