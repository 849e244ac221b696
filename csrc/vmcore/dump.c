/*
 * dump.c - the public reader: kpy_dump_open() picks the format (ELF or kdump-compressed,
 * either one flattened), then pages, runs of present frames, notes and a full --verify.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"
#include "dump.h"

struct kpy_dump {
	int format;
	struct kpy_src src;          /* kdump: the source; ELF: moved into elf.src */
	struct kpy_elf elf;
	struct kpy_kdump_in kd;
	uint64_t err_off;
	char message[KPY_MSG_LEN];
	/* virtual addresses (x86_64), set up on first use */
	int x86_state;               /* 0: not yet, 1: ready, <0: -errno */
	struct kpy_notes kd_notes;   /* kdump: a view of kd.notes */
	struct kpy_x86 x86;
	unsigned char *page;         /* one-frame cache for physical reads */
	uint64_t page_pfn;
	int page_valid;
};

static void info_from_elf(struct kpy_dump *d, struct kpy_dump_info *i)
{
	const struct kpy_elf *e = &d->elf;
	uint64_t pb = 0;

	i->format = KPY_FMT_ELF;
	i->incomplete = e->e_flags & 1;
	i->dump_level = -1;
	i->page_size = e->page_size;
	i->max_pfn = e->max_pfn;
	i->nr_frames = e->nr_frames;
	i->notes_size = e->notes.size;
	i->vmcoreinfo_size = e->notes.vmcoreinfo_size;
	i->elf_machine = e->machine;
	i->nr_cpus = e->notes.nr_prstatus;
	if (kpy_vmcoreinfo_u64(&e->notes, "NUMBER(phys_base)", 0, &pb) == 0)
		i->phys_base = pb;
	snprintf(i->machine, sizeof(i->machine), "%s", kpy_machine_name(e->machine));
	kpy_vmcoreinfo_get(&e->notes, "OSRELEASE", i->release, sizeof(i->release));
}

static void info_from_kdump(struct kpy_dump *d, struct kpy_dump_info *i)
{
	const struct kpy_kdump_in *k = &d->kd;

	i->format = KPY_FMT_KDUMP;
	i->codec = (int)(k->status & (KPY_CODEC_ZLIB | KPY_CODEC_LZO | KPY_CODEC_SNAPPY |
				      KPY_CODEC_ZSTD));
	i->incomplete = (k->status & KPY_DUMP_INCOMPLETE) != 0;
	i->dump_level = k->dump_level;
	i->page_size = k->bs;
	i->max_pfn = k->max_mapnr;
	i->nr_frames = k->nr_frames;
	i->notes_size = k->note_size;
	i->vmcoreinfo_size = k->vmcoreinfo_size;
	i->phys_base = k->phys_base;
	i->nr_cpus = k->nr_cpus;
	memcpy(i->release, k->uts + 2 * 65, 64);
	memcpy(i->machine, k->uts + 4 * 65, 64);
}

static int open_any(struct kpy_dump *d, int fd, const char *vmcoreinfo, size_t vmcoreinfo_len)
{
	unsigned char magic[8];
	int ret = kpy_src_open(&d->src, fd, d->message);

	if (ret) {
		d->err_off = d->src.err_off;
		return ret;
	}
	if (kpy_src_pread(&d->src, magic, sizeof(magic), 0)) {
		KPY_MSG(d->message, "too short to be a dump");
		return -ENOEXEC;
	}
	if (memcmp(magic, "\177ELF", 4) == 0) {
		d->format = KPY_FMT_ELF;
		ret = kpy_elf_attach_info(&d->elf, &d->src, vmcoreinfo, vmcoreinfo_len,
					  d->message, &d->err_off);
		memset(&d->src, 0, sizeof(d->src));     /* now owned by d->elf */
		return ret;
	}
	if (memcmp(magic, "KDUMP   ", 8) == 0) {
		d->format = KPY_FMT_KDUMP;
		if (vmcoreinfo) {
			KPY_MSG(d->message, "a kdump-compressed dump carries its own VMCOREINFO: "
				"--vmcoreinfo is for ELF dumps");
			return -ENOTSUP;
		}
		ret = kpy_kdump_in_open(&d->kd, &d->src, d->message);
		d->err_off = d->kd.err_off;
		return ret;
	}
	KPY_MSG(d->message, "not a dump: neither ELF nor kdump-compressed (offset 0)");
	return -ENOEXEC;
}

int kpy_dump_open(int fd, struct kpy_dump **out, struct kpy_dump_info *info)
{
	return kpy_dump_open_info(fd, NULL, 0, out, info);
}

int kpy_dump_open_info(int fd, const char *vmcoreinfo, size_t vmcoreinfo_len,
		       struct kpy_dump **out, struct kpy_dump_info *info)
{
	struct kpy_dump *d = calloc(1, sizeof(*d));
	int ret;

	memset(info, 0, sizeof(*info));
	*out = NULL;
	if (!d)
		return -ENOMEM;
	ret = open_any(d, fd, vmcoreinfo, vmcoreinfo_len);
	if (ret) {
		snprintf(info->message, sizeof(info->message), "%s", d->message);
		info->err_offset = d->err_off;
		kpy_dump_close(d);
		return ret;
	}
	if (d->format == KPY_FMT_ELF)
		info_from_elf(d, info);
	else
		info_from_kdump(d, info);
	info->flattened = d->format == KPY_FMT_ELF ? d->elf.src.flattened : d->src.flattened;
	*out = d;
	return 0;
}

void kpy_dump_close(struct kpy_dump *d)
{
	if (!d)
		return;
	if (d->format == KPY_FMT_ELF)
		kpy_elf_close(&d->elf);
	else
		kpy_kdump_in_close(&d->kd);
	kpy_src_close(&d->src);
	free(d->page);
	free(d);
}

int kpy_dump_read_page(struct kpy_dump *d, uint64_t pfn, void *buf)
{
	int ret;

	if (d->format == KPY_FMT_KDUMP) {
		ret = kpy_kdump_in_read(&d->kd, pfn, buf);
		d->err_off = d->kd.err_off;
		return ret;
	}
	const struct kpy_run *r = kpy_elf_find_run(&d->elf, pfn);
	if (!r)
		return -ENOENT;
	ret = kpy_elf_read_frames(&d->elf, r, pfn, 1, buf);
	if (ret) {
		d->err_off = r->kind == KPY_RUN_DIRECT ? r->off + (pfn - r->pfn) * d->elf.page_size : 0;
		return ret == -ENODATA ? -EIO : ret;
	}
	return 0;
}

int kpy_dump_next_run(struct kpy_dump *d, uint64_t pfn, uint64_t *start, uint64_t *count)
{
	if (d->format == KPY_FMT_KDUMP)
		return kpy_kdump_in_next_run(&d->kd, pfn, start, count);
	for (size_t i = 0; i < d->elf.nruns; i++) {
		const struct kpy_run *r = &d->elf.runs[i];
		if (r->pfn + r->count <= pfn)
			continue;
		uint64_t s = r->pfn > pfn ? r->pfn : pfn, e = r->pfn + r->count;
		while (++i < d->elf.nruns && d->elf.runs[i].pfn == e)
			e += d->elf.runs[i].count;
		*start = s;
		*count = e - s;
		return 0;
	}
	return -ENOENT;
}

static int copy_out(void *buf, size_t len, const unsigned char *src, size_t size)
{
	if (src && len && size)
		memcpy(buf, src, len < size ? len : size);
	return (int)(size > INT32_MAX ? INT32_MAX : size);
}

int kpy_dump_notes(struct kpy_dump *d, void *buf, size_t len)
{
	if (d->format == KPY_FMT_ELF)
		return copy_out(buf, len, d->elf.notes.buf, d->elf.notes.size);
	return copy_out(buf, len, d->kd.notes, d->kd.note_size);
}

int kpy_dump_vmcoreinfo(struct kpy_dump *d, void *buf, size_t len)
{
	if (d->format == KPY_FMT_ELF)
		return d->elf.notes.buf ? copy_out(buf, len, d->elf.notes.buf +
						   d->elf.notes.vmcoreinfo_off,
						   d->elf.notes.vmcoreinfo_size) : 0;
	const struct kpy_kdump_in *k = &d->kd;
	uint64_t rel = k->vmcoreinfo_off - k->note_off;
	if (!k->vmcoreinfo_size || k->vmcoreinfo_off < k->note_off ||
	    rel + k->vmcoreinfo_size > k->note_size)
		return 0;
	return copy_out(buf, len, k->notes + rel, k->vmcoreinfo_size);
}

uint64_t kpy_dump_error_offset(const struct kpy_dump *d)
{
	return d->err_off;
}

const char *kpy_dump_error_message(const struct kpy_dump *d)
{
	return d->message;
}

static void count_page(struct kpy_dump *d, struct kpy_verify_stats *st, uint64_t pfn, int ret)
{
	if (ret == 0) {
		st->ok++;
		return;
	}
	if (ret == -ENODATA) {
		st->lost++;
		return;
	}
	if (!st->bad++) {
		st->first_bad_pfn = pfn;
		st->first_bad_offset = d->err_off;
	}
}

int kpy_dump_verify(struct kpy_dump *d, struct kpy_verify_stats *st, kpy_progress_fn fn,
		    void *arg)
{
	uint32_t ps = d->format == KPY_FMT_ELF ? d->elf.page_size : d->kd.bs;
	uint64_t total = d->format == KPY_FMT_ELF ? d->elf.nr_frames : d->kd.nr_frames;
	unsigned char *page = malloc(ps);
	uint64_t pfn = 0, start, count;
	unsigned last = 1001;

	memset(st, 0, sizeof(*st));
	if (!page)
		return -ENOMEM;
	while (kpy_dump_next_run(d, pfn, &start, &count) == 0) {
		for (uint64_t p = start; p < start + count; p++) {
			count_page(d, st, p, kpy_dump_read_page(d, p, page));
			st->frames++;
			unsigned pm = total ? (unsigned)(st->frames * 1000 / total) : 1000;
			if (fn && pm != last && fn(arg, st->frames, total, 0)) {
				free(page);
				return -ECANCELED;
			}
			last = pm;
		}
		pfn = start + count;
	}
	free(page);
	return st->bad ? -EBADMSG : 0;
}

static uint32_t dump_page_size(const struct kpy_dump *d)
{
	return d->format == KPY_FMT_ELF ? d->elf.page_size : d->kd.bs;
}

int kpy_dump_read_phys(struct kpy_dump *d, uint64_t paddr, void *buf, size_t len)
{
	uint32_t ps = dump_page_size(d);
	unsigned char *out = buf;

	if (!d->page && !(d->page = malloc(ps)))
		return -ENOMEM;
	while (len) {
		uint64_t pfn = paddr / ps;
		size_t in = paddr % ps, n = ps - in < len ? ps - in : len;
		if (!d->page_valid || d->page_pfn != pfn) {
			d->page_valid = 0;
			int ret = kpy_dump_read_page(d, pfn, d->page);
			if (ret)
				return ret;
			d->page_pfn = pfn;
			d->page_valid = 1;
		}
		memcpy(out, d->page + in, n);
		out += n;
		paddr += n;
		len -= n;
	}
	return 0;
}

static int phys_reader(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	return kpy_dump_read_phys(ctx, paddr, buf, len);
}

/* ELF: the kernel-text PT_LOAD gives phys_base, a RAM PT_LOAD the direct map. */
static void x86_from_elf(struct kpy_dump *d)
{
	const struct kpy_elf *e = &d->elf;
	uint64_t lo = UINT64_MAX, hi = 0, off = 0;

	if (e->have_kernel_text && e->kernel_vaddr >= KPY_X86_KERNEL_MAP)
		kpy_x86_set_phys_base(&d->x86, e->kernel_paddr -
				      (e->kernel_vaddr - KPY_X86_KERNEL_MAP));
	for (size_t i = 0; i < e->npieces; i++) {
		const struct kpy_piece *p = &e->pieces[i];
		if (p->vaddr >= KPY_X86_KERNEL_MAP || p->vaddr < 0x8000000000000000ull)
			continue;
		if (!off)
			off = p->vaddr - p->paddr;
		if (p->vaddr - p->paddr != off)
			return;         /* not one linear map: leave it to the walk */
		lo = p->paddr < lo ? p->paddr : lo;
		hi = p->end > hi ? p->end : hi;
	}
	if (off && hi)
		kpy_x86_set_page_offset(&d->x86, off, off + hi);
}

static int x86_setup(struct kpy_dump *d)
{
	const struct kpy_notes *n = kpy_dump_notes_view(d);

	if (d->format == KPY_FMT_ELF && d->elf.machine != KPY_EM_X86_64)
		return -ENOTSUP;
	if (!n->vmcoreinfo_size)
		return -ENOENT;
	kpy_x86_init(&d->x86, n, phys_reader, d);
	if (d->format == KPY_FMT_KDUMP)
		kpy_x86_set_phys_base(&d->x86, d->kd.phys_base);
	else {
		x86_from_elf(d);
		kpy_x86_from_elf_input(&d->x86, &d->elf);
	}
	return 0;
}

static int x86_ready(struct kpy_dump *d)
{
	if (!d->x86_state)
		d->x86_state = x86_setup(d) ? -1 : 1;
	return d->x86_state == 1 ? 0 : -ENOTSUP;
}

int kpy_dump_vtop(struct kpy_dump *d, uint64_t vaddr, uint64_t *paddr)
{
	int ret = x86_ready(d);

	return ret ? ret : kpy_x86_vtop(&d->x86, vaddr, paddr);
}

int kpy_dump_read_virt(struct kpy_dump *d, uint64_t vaddr, void *buf, size_t len)
{
	int ret = x86_ready(d);

	return ret ? ret : kpy_x86_read(&d->x86, vaddr, buf, len);
}

/* The VMCOREINFO notes of an open dump (for dmesg.c and the classifier). */
const struct kpy_notes *kpy_dump_notes_view(struct kpy_dump *d)
{
	if (d->format == KPY_FMT_ELF)
		return &d->elf.notes;
	if (!d->kd_notes.buf) {
		d->kd_notes.buf = d->kd.notes;
		d->kd_notes.size = d->kd.note_size;
		kpy_notes_scan(&d->kd_notes);
	}
	return &d->kd_notes;
}

uint64_t kpy_dump_memory_bytes(const struct kpy_dump *d)
{
	uint64_t ps = d->format == KPY_FMT_ELF ? d->elf.page_size : d->kd.bs;
	uint64_t n = d->format == KPY_FMT_ELF ? d->elf.nr_frames : d->kd.nr_frames;

	return n > UINT64_MAX / (ps ? ps : 1) ? UINT64_MAX : n * ps;
}

char *kpy_dump_message(struct kpy_dump *d)
{
	return d->message;
}
