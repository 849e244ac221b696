/*
 * kdump_in.c - reading a kdump-compressed file (ours, makedumpfile's, QEMU's): headers,
 * the 2nd bitmap with a rank table (frame -> descriptor index), descriptors and pages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"
#include "dump.h"

#define RANK_BITS 4096            /* one cumulative count per 512 bitmap bytes */
#define SUB_HDR_SIZE 104

static int hdr_error(struct kpy_kdump_in *k, char *msg, uint64_t off, const char *what)
{
	k->err_off = off;
	KPY_MSG(msg, "kdump header at offset %#llx: %s", (unsigned long long)off, what);
	return -EBADMSG;
}

#define PHYS_LIMIT (1ull << 52)     /* bytes of physical address space, at most */

static int parse_main(struct kpy_kdump_in *k, const unsigned char *h, char *msg)
{
	k->bs = kpy_get32(h + 428);
	k->status = kpy_get32(h + 424);
	k->sub_blocks = kpy_get32(h + 432);
	k->bitmap_blocks = kpy_get32(h + 436);
	k->max_mapnr = kpy_get32(h + 440);
	k->nr_cpus = (int)kpy_get32(h + 460);
	k->version = kpy_get32(h + 8);
	memcpy(k->uts, h + 12, sizeof(k->uts));
	if (k->bs < 1024 || k->bs > (1u << 20) || (k->bs & (k->bs - 1)))
		return hdr_error(k, msg, 428, "bad block size");
	if (k->bitmap_blocks == 0 || (k->bitmap_blocks & 1))
		return hdr_error(k, msg, 436, "bad bitmap size");
	return 0;
}

static int parse_sub(struct kpy_kdump_in *k, char *msg)
{
	unsigned char s[SUB_HDR_SIZE];
	int ret = kpy_src_pread(k->src, s, sizeof(s), k->bs);

	if (ret)
		return hdr_error(k, msg, k->bs, "sub header is missing");
	k->phys_base = kpy_get64(s);
	k->dump_level = (int)kpy_get32(s + 8);
	k->vmcoreinfo_off = kpy_get64(s + 32);
	k->vmcoreinfo_size = kpy_get64(s + 40);
	k->note_off = kpy_get64(s + 48);
	k->note_size = kpy_get64(s + 56);
	if (k->version >= 6 && kpy_get64(s + 96))
		k->max_mapnr = kpy_get64(s + 96);
	if (k->note_size > (64u << 20))
		return hdr_error(k, msg, k->bs + 56, "implausible note size");
	if (k->note_size) {
		if (!(k->notes = malloc(k->note_size)))
			return -ENOMEM;
		if (kpy_src_pread(k->src, k->notes, k->note_size, k->note_off))
			return hdr_error(k, msg, k->note_off, "notes are past the end of the file");
	}
	return 0;
}

static int load_bitmap(struct kpy_kdump_in *k, char *msg)
{
	uint64_t one = (uint64_t)k->bitmap_blocks / 2 * k->bs;
	uint64_t need = (k->max_mapnr + 7) / 8, words, nrank;

	/* every size here comes from the header: checked against the architecture's
	 * physical address space and the file before anything is allocated */
	if (k->max_mapnr > PHYS_LIMIT / k->bs)
		return hdr_error(k, msg, k->version >= 6 ? k->bs + 96 : 440,
				 "max_mapnr is beyond a 52-bit physical address space");
	if (need > one)
		return hdr_error(k, msg, 436, "bitmaps are smaller than max_mapnr needs");
	k->bitmap2_off = (1 + (uint64_t)k->sub_blocks) * k->bs + one;
	k->table_off = k->bitmap2_off + one;
	if (k->src->size != UINT64_MAX && (k->bitmap2_off > k->src->size ||
					   need > k->src->size - k->bitmap2_off))
		return hdr_error(k, msg, k->bitmap2_off, "bitmap is past the end of the file");
	words = (need + 7) / 8;
	nrank = k->max_mapnr / RANK_BITS + 2;
	if (!(k->bitmap = calloc(words ? words : 1, 8)) || !(k->rank = calloc(nrank, 8)))
		return -ENOMEM;
	if (kpy_src_pread(k->src, k->bitmap, need, k->bitmap2_off))
		return hdr_error(k, msg, k->bitmap2_off, "bitmap is past the end of the file");
	uint64_t total = 0;
	for (uint64_t b = 0; b * RANK_BITS < k->max_mapnr; b++) {
		k->rank[b] = total;
		for (uint64_t w = b * (RANK_BITS / 64); w < (b + 1) * (RANK_BITS / 64) && w < words; w++)
			total += (uint64_t)__builtin_popcountll(k->bitmap[w]);
	}
	k->nr_frames = total;
	return 0;
}

int kpy_kdump_in_open(struct kpy_kdump_in *k, struct kpy_src *src, char *msg)
{
	unsigned char h[464];
	int ret;

	memset(k, 0, sizeof(*k));
	k->src = src;
	if (kpy_src_pread(src, h, sizeof(h), 0) || memcmp(h, "KDUMP   ", 8) != 0)
		return hdr_error(k, msg, 0, "no KDUMP signature");
	if ((ret = parse_main(k, h, msg)) || (ret = parse_sub(k, msg)) ||
	    (ret = load_bitmap(k, msg)))
		return ret;
	if ((ret = kpy_codec_init(&k->codec, k->status & (KPY_CODEC_ZLIB | KPY_CODEC_LZO |
				KPY_CODEC_SNAPPY | KPY_CODEC_ZSTD), k->bs))) {
		KPY_MSG(msg, "status %#x names a codec this build cannot decode", k->status);
		return ret;
	}
	if (!(k->cbuf = malloc(k->bs)))
		return -ENOMEM;
	return 0;
}

void kpy_kdump_in_close(struct kpy_kdump_in *k)
{
	free(k->notes);
	free(k->bitmap);
	free(k->rank);
	free(k->cbuf);
	kpy_codec_fini(&k->codec);
	memset(k, 0, sizeof(*k));
}

int kpy_kdump_in_present(const struct kpy_kdump_in *k, uint64_t pfn)
{
	return pfn < k->max_mapnr && (k->bitmap[pfn / 64] >> (pfn % 64) & 1);
}

static uint64_t rank_of(const struct kpy_kdump_in *k, uint64_t pfn)
{
	uint64_t r = k->rank[pfn / RANK_BITS];

	for (uint64_t w = pfn / RANK_BITS * (RANK_BITS / 64); w < pfn / 64; w++)
		r += (uint64_t)__builtin_popcountll(k->bitmap[w]);
	if (pfn % 64)
		r += (uint64_t)__builtin_popcountll(k->bitmap[pfn / 64] & ((1ull << (pfn % 64)) - 1));
	return r;
}

int kpy_kdump_in_read(struct kpy_kdump_in *k, uint64_t pfn, unsigned char *page)
{
	unsigned char d[24];
	uint64_t doff, off;
	uint32_t size, flags;

	if (!kpy_kdump_in_present(k, pfn))
		return -ENOENT;
	doff = k->table_off + rank_of(k, pfn) * 24;
	if (kpy_src_pread(k->src, d, sizeof(d), doff)) {
		k->err_off = doff;
		return -ENODATA;     /* table cut off: an incomplete dump */
	}
	off = kpy_get64(d);
	size = kpy_get32(d + 8);
	flags = kpy_get32(d + 12);
	k->err_off = doff;
	if (off == 0)
		return -ENODATA;
	if (size == 0 || size > k->bs)
		return -EBADMSG;
	k->err_off = off;
	if (kpy_src_pread(k->src, k->cbuf, size, off))
		return -EBADMSG;
	return kpy_codec_decompress(&k->codec, (int)flags, k->cbuf, size, page);
}

/* First run of frames in the 2nd bitmap at or after pfn. */
int kpy_kdump_in_next_run(const struct kpy_kdump_in *k, uint64_t pfn, uint64_t *start,
			  uint64_t *count)
{
	uint64_t n = k->max_mapnr, p = pfn, e;

	while (p < n && !(k->bitmap[p / 64] >> (p % 64) & 1)) {
		if (p % 64 == 0 && k->bitmap[p / 64] == 0)
			p += 64;
		else
			p++;
	}
	if (p >= n)
		return -ENOENT;
	for (e = p; e < n && (k->bitmap[e / 64] >> (e % 64) & 1);) {
		if (e % 64 == 0 && k->bitmap[e / 64] == ~0ull)
			e += 64;
		else
			e++;
	}
	*start = p;
	*count = (e > n ? n : e) - p;
	return 0;
}
