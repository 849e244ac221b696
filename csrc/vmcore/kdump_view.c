/*
 * kdump_view.c - a kdump-compressed dump (flattened or not) as the copier's input: the
 * same runs of present frames the ELF reader gives, each frame read and decompressed
 * from the file, so a dump can be re-filtered (-d), re-compressed or turned into ELF.
 *
 * Notes, VMCOREINFO and phys_base come from the dump's sub-header; frames the input
 * lost (an incomplete dump) read as -ENODATA, which ends the copy as an incomplete one.
 * The decompressor and its buffer are the reader's, so reads take a lock (the copier's
 * workers still compress in parallel).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

static int add_runs(struct kpy_elf *e, const struct kpy_kdump_in *k)
{
	uint64_t pfn = 0, start, count;
	size_t n = 0, cap = 0;

	while (kpy_kdump_in_next_run(k, pfn, &start, &count) == 0) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct kpy_run *r = realloc(e->runs, ncap * sizeof(*r));
			if (!r)
				return -ENOMEM;
			e->runs = r;
			cap = ncap;
		}
		e->runs[n++] = (struct kpy_run){ start, count, 0, 0, KPY_RUN_DIRECT };
		e->nr_frames += count;
		pfn = start + count;
	}
	e->nruns = n;
	e->max_pfn = k->max_mapnr;
	return 0;
}

static int notes_from(struct kpy_elf *e, const struct kpy_kdump_in *k, char *msg)
{
	if (k->note_size) {
		if (!(e->notes.buf = malloc(k->note_size + 1)))
			return -ENOMEM;
		memcpy(e->notes.buf, k->notes, k->note_size);
		e->notes.size = k->note_size;
	}
	kpy_notes_scan(&e->notes);
	if (e->notes.vmcoreinfo_size || !k->vmcoreinfo_size)
		return 0;
	/* VMCOREINFO outside the notes blob (older writers): read it from its own place */
	if (k->vmcoreinfo_size > KPY_VMCOREINFO_MAX) {
		KPY_MSG(msg, "the dump's VMCOREINFO claims %llu bytes",
			(unsigned long long)k->vmcoreinfo_size);
		return -EFBIG;
	}
	char *text = malloc(k->vmcoreinfo_size);
	int ret;
	if (!text)
		return -ENOMEM;
	ret = kpy_src_pread(k->src, text, k->vmcoreinfo_size, k->vmcoreinfo_off);
	if (ret)
		KPY_MSG(msg, "truncated: VMCOREINFO at offset %#llx is past the end",
			(unsigned long long)k->vmcoreinfo_off);
	else
		ret = kpy_notes_add_vmcoreinfo(&e->notes, text, k->vmcoreinfo_size, msg);
	free(text);
	return ret;
}

int kpy_elf_attach_kdump(struct kpy_elf *e, const char *vmcoreinfo, size_t vmcoreinfo_len,
			 char *msg, uint64_t *err_off)
{
	struct kpy_kdump_in *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	e->kd = k;
	if ((ret = kpy_kdump_in_open(k, &e->src, msg))) {
		*err_off = k->err_off;
		return ret;
	}
	if (pthread_mutex_init(&e->kd_lock, NULL)) {
		kpy_kdump_in_close(k);
		free(k);
		e->kd = NULL;
		return -ENOMEM;
	}
	e->kd_lock_ok = 1;
	e->page_size = k->bs;
	/* utsname.machine (its 5th 65-byte field) says the architecture */
	e->machine = memcmp(k->uts + 4 * 65, "x86_64", 7) == 0 ? KPY_EM_X86_64 : 0;
	if ((ret = notes_from(e, k, msg)))
		return ret;
	if (vmcoreinfo && (ret = kpy_notes_add_vmcoreinfo(&e->notes, vmcoreinfo,
							  vmcoreinfo_len, msg)))
		return ret;
	if (e->machine == KPY_EM_X86_64) {
		e->have_kernel_text = 1;
		e->kernel_vaddr = KPY_X86_KERNEL_MAP;
		e->kernel_paddr = k->phys_base;
	}
	if ((ret = add_runs(e, k)))
		return ret;
	if (!e->nruns) {
		KPY_MSG(msg, "the dump holds no pages: nothing to copy");
		return -ENOEXEC;
	}
	return 0;
}

int kpy_elf_read_kdump(struct kpy_elf *e, uint64_t pfn, uint64_t n, unsigned char *buf)
{
	int ret = 0;

	pthread_mutex_lock(&e->kd_lock);
	for (uint64_t i = 0; i < n && !ret; i++) {
		ret = kpy_kdump_in_read(e->kd, pfn + i, buf + i * e->page_size);
		if (ret)
			e->kd_err_off = e->kd->err_off;
	}
	pthread_mutex_unlock(&e->kd_lock);
	return ret == -EBADMSG ? -EIO : ret;
}

void kpy_elf_close_kdump(struct kpy_elf *e)
{
	if (!e->kd)
		return;
	kpy_kdump_in_close(e->kd);
	free(e->kd);
	e->kd = NULL;
	if (e->kd_lock_ok)
		pthread_mutex_destroy(&e->kd_lock);
	e->kd_lock_ok = 0;
}
