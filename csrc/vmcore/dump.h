/* dump.h - readers of finished dumps (internal to csrc/vmcore). */
#ifndef KPY_DUMP_H
#define KPY_DUMP_H

#include "vmcore.h"

struct kpy_kdump_in {
	struct kpy_src *src;
	uint32_t bs, status, sub_blocks, bitmap_blocks, version;
	uint64_t max_mapnr, nr_frames;
	int nr_cpus, dump_level;
	unsigned char uts[390];
	uint64_t phys_base, vmcoreinfo_off, vmcoreinfo_size, note_off, note_size;
	unsigned char *notes;
	uint64_t bitmap2_off, table_off;
	uint64_t *bitmap;          /* the 2nd bitmap */
	uint64_t *rank;
	struct kpy_codec codec;
	unsigned char *cbuf;
	uint64_t err_off;
};

int kpy_kdump_in_open(struct kpy_kdump_in *k, struct kpy_src *src, char *msg);
void kpy_kdump_in_close(struct kpy_kdump_in *k);
int kpy_kdump_in_present(const struct kpy_kdump_in *k, uint64_t pfn);
int kpy_kdump_in_read(struct kpy_kdump_in *k, uint64_t pfn, unsigned char *page);
int kpy_kdump_in_next_run(const struct kpy_kdump_in *k, uint64_t pfn, uint64_t *start,
			  uint64_t *count);

struct kpy_dump;
const struct kpy_notes *kpy_dump_notes_view(struct kpy_dump *d);
char *kpy_dump_message(struct kpy_dump *d);   /* writable, KPY_MSG_LEN */
/* Bytes of memory the dump holds (frames x page size): the most any kernel structure
 * read out of it can be. */
uint64_t kpy_dump_memory_bytes(const struct kpy_dump *d);

#endif
