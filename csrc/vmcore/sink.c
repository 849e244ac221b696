/*
 * sink.c - where a dump goes: a file written with pwritev() at absolute offsets, or a
 * flattened stream (makedumpfile -F) where each write becomes a record {offset, size}
 * (big-endian int64) plus the bytes, ended by {-1, -1}.
 *
 * A size cap (-L) makes a write that would grow the file past it stop there with -EFBIG,
 * exactly as a full disk stops it with -ENOSPC; *done says how much got through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "vmcore.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

int kpy_space_error(int err)
{
	return err == -ENOSPC || err == -EDQUOT || err == -EFBIG;
}

int kpy_sink_start(struct kpy_sink *s)
{
	unsigned char hdr[KPY_FLAT_HDR_SIZE];

	s->bytes = s->end = 0;
	if (!s->flattened)
		return 0;
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, "makedumpfile", 12);
	kpy_put_be64(hdr + 16, 1);     /* type */
	kpy_put_be64(hdr + 24, 1);     /* version */
	return kpy_write_full(s->fd, hdr, sizeof(hdr));
}

/* Write every byte of iov[0..cnt) (at off for files, in order for streams). */
static int writev_all(struct kpy_sink *s, struct iovec *iov, int cnt, uint64_t off,
		      uint64_t *done)
{
	while (cnt > 0) {
		int n = cnt > IOV_MAX ? IOV_MAX : cnt;
		ssize_t w = s->flattened ? writev(s->fd, iov, n) : pwritev(s->fd, iov, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -ENOSPC;
		*done += (uint64_t)w;
		off += (uint64_t)w;
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Copy iov, cut to at most max bytes. Returns the number of entries. */
static int clip_iov(struct iovec *dst, const struct iovec *src, int cnt, uint64_t max)
{
	int n = 0;

	for (int i = 0; i < cnt && max; i++) {
		dst[n] = src[i];
		if (dst[n].iov_len > max)
			dst[n].iov_len = (size_t)max;
		max -= dst[n].iov_len;
		n++;
	}
	return n;
}

int kpy_sink_writev(struct kpy_sink *s, const struct iovec *iov, int cnt, uint64_t off,
		    uint64_t *done)
{
	uint64_t total = 0, allowed;
	struct iovec *v;
	int n, ret = 0;

	*done = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	allowed = total;
	if (s->limit && off + total > s->limit)
		allowed = s->limit > off ? s->limit - off : 0;
	if (!(v = malloc(((size_t)cnt + 1) * sizeof(*v))))
		return -ENOMEM;
	if (s->flattened && allowed) {
		unsigned char rec[16];
		uint64_t hdone = 0;
		kpy_put_be64(rec, off);
		kpy_put_be64(rec + 8, allowed);
		v[0] = (struct iovec){ rec, sizeof(rec) };
		n = clip_iov(v + 1, iov, cnt, allowed) + 1;
		ret = writev_all(s, v, n, 0, &hdone);
		*done = hdone > 16 ? hdone - 16 : 0;
	} else if (allowed) {
		n = clip_iov(v, iov, cnt, allowed);
		ret = writev_all(s, v, n, off, done);
	}
	free(v);
	s->bytes += *done;
	if (*done && off + *done > s->end)
		s->end = off + *done;
	if (!ret && allowed < total)
		ret = -EFBIG;
	if (ret)
		s->err_off = off + *done;
	return ret;
}

/*
 * Before the header that calls a dump complete is written: everything else on stable
 * storage first, so that a crash or power cut between the two can only leave a dump
 * marked incomplete. Streams and files that cannot be synced (pipes, some special
 * files) have nothing to order.
 */
int kpy_sink_sync(struct kpy_sink *s)
{
	if (s->flattened)
		return 0;
	while (fdatasync(s->fd) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EINVAL || errno == EROFS || errno == ENOTSUP)
			return 0;
		return -errno;
	}
	return 0;
}

int kpy_sink_pwrite(struct kpy_sink *s, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = { (void *)buf, len };
	uint64_t done;

	return kpy_sink_writev(s, &v, 1, off, &done);
}

/*
 * Make sure [0, len) can be written later even on a full disk: the headers, bitmaps and
 * page descriptor table are rewritten at the end. fallocate() keeps the file size, so a
 * file rebuilt from a flattened stream stays byte-identical; without fallocate the
 * region is written with zeros.
 */
int kpy_sink_reserve(struct kpy_sink *s, uint64_t len)
{
	return kpy_sink_reserve_range(s, 0, len);
}

/* The same for [start, end) only: what was written below start stays. */
int kpy_sink_reserve_range(struct kpy_sink *s, uint64_t start, uint64_t len)
{
	static const unsigned char zeros[65536];

	if (s->flattened || len <= start)
		return 0;
	if (s->limit && len > s->limit) {
		s->err_off = s->limit;
		return -EFBIG;
	}
	if (fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t)start, (off_t)(len - start)) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
		s->err_off = start;
		return -errno;
	}
	for (uint64_t off = start; off < len; off += sizeof(zeros)) {
		size_t n = len - off < sizeof(zeros) ? (size_t)(len - off) : sizeof(zeros);
		int ret = kpy_pwrite_full(s->fd, zeros, n, off);
		if (ret) {
			s->err_off = off;
			return ret;
		}
	}
	return 0;
}

int kpy_sink_finish(struct kpy_sink *s)
{
	unsigned char rec[16];

	if (!s->flattened)
		return 0;
	memset(rec, 0xff, sizeof(rec));
	return kpy_write_full(s->fd, rec, sizeof(rec));
}
