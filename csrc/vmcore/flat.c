/*
 * flat.c - rebuilding the file a flattened stream describes (vmcore-copy -R, like
 * makedumpfile -R): replay each {offset, size} record with pwrite().
 *
 * The stream is read sequentially (a pipe or ssh). A record that cannot be written
 * stops the replay: every record after it - including the writer's final header
 * rewrite that clears the incomplete flag - is left out, so the rebuilt file never
 * claims to be complete when it is not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmcore.h"

#define BUF_SIZE (1u << 20)

static int replay(int in_fd, int out_fd, uint64_t off, uint64_t len, unsigned char *buf,
		  struct kpy_flat_stats *st)
{
	while (len) {
		size_t n = len < BUF_SIZE ? (size_t)len : BUF_SIZE;
		int ret = kpy_read_full(in_fd, buf, n);
		if (ret) {
			KPY_MSG(st->message, "the stream ends inside a record (for file offset %#llx)",
				(unsigned long long)off);
			return ret == -ENODATA ? -EPROTO : ret;
		}
		if ((ret = kpy_pwrite_full(out_fd, buf, n, off))) {
			st->err_offset = off;
			KPY_MSG(st->message, "writing at offset %#llx failed: %s",
				(unsigned long long)off, strerror(-ret));
			return ret;
		}
		off += n;
		len -= n;
		st->bytes += n;
		if (off > st->file_size)
			st->file_size = off;
	}
	return 0;
}

static int check_header(int in_fd, unsigned char *buf, struct kpy_flat_stats *st)
{
	int ret = kpy_read_full(in_fd, buf, KPY_FLAT_HDR_SIZE);

	if (ret || !kpy_flat_is_header(buf, KPY_FLAT_HDR_SIZE)) {
		KPY_MSG(st->message, "not a flattened dump stream (no makedumpfile header at "
			"offset 0)");
		return ret && ret != -ENODATA ? ret : -EPROTO;
	}
	return 0;
}

int kpy_flat_rearrange(int in_fd, int out_fd, struct kpy_flat_stats *st)
{
	unsigned char *buf = malloc(BUF_SIZE);
	uint64_t pos = KPY_FLAT_HDR_SIZE;
	int ret;

	memset(st, 0, sizeof(*st));
	if (!buf)
		return -ENOMEM;
	if ((ret = check_header(in_fd, buf, st)))
		goto out;
	for (;;) {
		unsigned char h[16];
		if ((ret = kpy_read_full(in_fd, h, sizeof(h)))) {
			st->err_offset = pos;
			KPY_MSG(st->message, "the stream ends at offset %#llx without an end record: "
				"it was cut short", (unsigned long long)pos);
			ret = ret == -ENODATA ? -EPROTO : ret;
			break;
		}
		int64_t off = (int64_t)kpy_get_be64(h), len = (int64_t)kpy_get_be64(h + 8);
		if (off == -1 && len == -1) {
			if (!st->records) {     /* a header and an end: nothing was ever written */
				KPY_MSG(st->message, "the stream holds no data records: "
					"there is no dump in it");
				ret = -EPROTO;
			}
			break;
		}
		if (off < 0 || len < 0) {
			st->err_offset = pos;
			KPY_MSG(st->message, "bad record header at stream offset %#llx",
				(unsigned long long)pos);
			ret = -EPROTO;
			break;
		}
		if ((ret = replay(in_fd, out_fd, (uint64_t)off, (uint64_t)len, buf, st)))
			break;
		st->records++;
		pos += 16 + (uint64_t)len;
	}
out:
	free(buf);
	return ret;
}
