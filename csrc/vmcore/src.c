/*
 * src.c - a byte source for the readers: a plain file read with pread(), or a
 * flattened stream seen as the file it describes.
 *
 * A flattened stream is indexed once (record headers only, data skipped with lseek or
 * read) into extents sorted by their offset in the described file; later records win
 * where records overlap, as they would when replayed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "vmcore.h"

static const char flat_sig[] = "makedumpfile";

uint64_t kpy_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int kpy_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int kpy_read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int kpy_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int kpy_read_file(const char *path, size_t max, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	char *b = NULL;
	size_t n = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (!(b = malloc(max + 2))) {
		close(fd);
		return -ENOMEM;
	}
	while (n <= max) {         /* one byte more than max tells "too big" */
		ssize_t r = read(fd, b + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!ret && n > max)
		ret = -EFBIG;
	if (ret) {
		free(b);
		return ret;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

int kpy_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int kpy_flat_is_header(const unsigned char *buf, size_t len)
{
	return len >= 32 && memcmp(buf, flat_sig, sizeof(flat_sig)) == 0 &&
	       kpy_get_be64(buf + 16) == 1;
}

static int ext_cmp(const void *a, const void *b)
{
	const struct kpy_extent *x = a, *y = b;

	if (x->dst != y->dst)
		return x->dst < y->dst ? -1 : 1;
	return x->src < y->src ? -1 : (x->src > y->src);
}

static int push_extent(struct kpy_src *s, size_t *cap, uint64_t dst, uint64_t len,
		       uint64_t src)
{
	if (s->next == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		struct kpy_extent *n = realloc(s->ext, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->ext = n;
		*cap = ncap;
	}
	s->ext[s->next++] = (struct kpy_extent){ dst, len, src };
	if (dst + len > s->size)
		s->size = dst + len;
	return 0;
}

static int skip_bytes(int fd, uint64_t len, uint64_t *pos)
{
	unsigned char tmp[65536];

	if (lseek(fd, (off_t)len, SEEK_CUR) >= 0) {
		*pos += len;
		return 0;
	}
	while (len) {
		size_t n = len < sizeof(tmp) ? (size_t)len : sizeof(tmp);
		int ret = kpy_read_full(fd, tmp, n);
		if (ret)
			return ret;
		len -= n;
		*pos += n;
	}
	return 0;
}

/* Index every record of a flattened stream; fd is positioned after the 4 KiB header. */
static int index_flat(struct kpy_src *s, char *msg)
{
	uint64_t pos = KPY_FLAT_HDR_SIZE;
	size_t cap = 0;

	for (;;) {
		unsigned char h[16];
		int ret = kpy_read_full(s->fd, h, sizeof(h));
		if (ret) {
			s->err_off = pos;
			KPY_MSG(msg, "flattened stream ends at offset %#llx without an end record",
				(unsigned long long)pos);
			return ret == -ENODATA ? -EPROTO : ret;
		}
		int64_t off = (int64_t)kpy_get_be64(h), len = (int64_t)kpy_get_be64(h + 8);
		pos += 16;
		if (off == -1 && len == -1)
			break;
		if (off < 0 || len < 0) {
			s->err_off = pos - 16;
			KPY_MSG(msg, "bad flattened record header at offset %#llx",
				(unsigned long long)(pos - 16));
			return -EPROTO;
		}
		if (len && (ret = push_extent(s, &cap, (uint64_t)off, (uint64_t)len, pos)))
			return ret;
		if ((ret = skip_bytes(s->fd, (uint64_t)len, &pos))) {
			s->err_off = pos;
			KPY_MSG(msg, "flattened record at offset %#llx is cut short",
				(unsigned long long)(pos - 16));
			return ret == -ENODATA ? -EPROTO : ret;
		}
	}
	/* Stable order by destination; overlaps resolved at read time (later src wins). */
	if (s->next)        /* a stream with no data records has no extent table at all */
		qsort(s->ext, s->next, sizeof(*s->ext), ext_cmp);
	s->maxend = malloc((s->next ? s->next : 1) * sizeof(uint64_t));
	if (!s->maxend)
		return -ENOMEM;
	for (size_t i = 0; i < s->next; i++) {
		uint64_t e = s->ext[i].dst + s->ext[i].len;
		s->maxend[i] = i && s->maxend[i - 1] > e ? s->maxend[i - 1] : e;
	}
	return 0;
}

int kpy_src_open(struct kpy_src *s, int fd, char *msg)
{
	struct stat st;
	unsigned char head[32];

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	s->is_reg = S_ISREG(st.st_mode);
	s->size = s->is_reg ? (uint64_t)st.st_size : UINT64_MAX;
	if (kpy_pread_full(fd, head, sizeof(head), 0) == 0 && kpy_flat_is_header(head, 32)) {
		s->flattened = 1;
		s->size = 0;
		if (lseek(fd, KPY_FLAT_HDR_SIZE, SEEK_SET) < 0)
			return -errno;
		return index_flat(s, msg);
	}
	return 0;
}

void kpy_src_close(struct kpy_src *s)
{
	free(s->ext);
	free(s->maxend);
	s->ext = NULL;
	s->maxend = NULL;
	s->next = 0;
}

static int src_cmp(const void *a, const void *b)
{
	const struct kpy_extent *x = *(const struct kpy_extent * const *)a;
	const struct kpy_extent *y = *(const struct kpy_extent * const *)b;

	return x->src < y->src ? -1 : (x->src > y->src);
}

/* First extent that may reach past off: maxend[] is the running maximum of dst + len. */
static size_t first_reaching(const struct kpy_src *s, uint64_t off)
{
	size_t lo = 0, hi = s->next;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->maxend[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Extents overlapping [off, off+len) are applied in stream order: later records win. */
static int flat_pread(struct kpy_src *s, unsigned char *buf, size_t len, uint64_t off)
{
	const struct kpy_extent *stack[64], **hits = stack;
	uint64_t end = off + len;
	size_t n = 0, first = first_reaching(s, off), i;
	int ret = 0;

	for (i = first; i < s->next && s->ext[i].dst < end; i++)
		n++;
	if (n > 64 && !(hits = malloc(n * sizeof(*hits))))
		return -ENOMEM;
	n = 0;
	for (i = first; i < s->next && s->ext[i].dst < end; i++)
		if (s->ext[i].dst + s->ext[i].len > off)
			hits[n++] = &s->ext[i];
	qsort(hits, n, sizeof(hits[0]), src_cmp);
	memset(buf, 0, len);
	for (i = 0; i < n && !ret; i++) {
		const struct kpy_extent *x = hits[i];
		uint64_t a = x->dst > off ? x->dst : off;
		uint64_t b = x->dst + x->len < end ? x->dst + x->len : end;
		ret = kpy_pread_full(s->fd, buf + (a - off), (size_t)(b - a), x->src + (a - x->dst));
	}
	if (hits != stack)
		free(hits);
	return ret;
}

int kpy_src_pread(struct kpy_src *s, void *buf, size_t len, uint64_t off)
{
	/* no state is changed here: worker threads read concurrently */
	if (s->flattened)
		return off + len > s->size ? -ENODATA : flat_pread(s, buf, len, off);
	return kpy_pread_full(s->fd, buf, len, off);
}
