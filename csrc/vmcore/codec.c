/*
 * codec.c - one page at a time, as kdump-compressed readers expect: zlib (deflate level 1
 * with the zlib wrapper), lzo (LZO1X-1), zstd (one frame, level 1), snappy (raw format).
 * A page that does not shrink below a page is stored raw. Each worker owns a kpy_codec,
 * so the compressor state is reused page after page and never shared between threads.
 *
 * libsnappy is opened at run time (dlopen) when a snappy dump is written or read: linked,
 * it brings libstdc++ (2 MB) into every capture initramfs, unpacked in the crash kernel's
 * reserve, while the shipped collectors use lzo.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lzo/lzo1x.h>
#include <zlib.h>
#ifdef KPY_HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef KPY_HAVE_SNAPPY
#include <dlfcn.h>
#include <pthread.h>
#include <snappy-c.h>
#endif

#include "vmcore.h"

#ifdef KPY_HAVE_SNAPPY
static struct {
	snappy_status (*compress)(const char *, size_t, char *, size_t *);
	snappy_status (*uncompress)(const char *, size_t, char *, size_t *);
	size_t (*max_len)(size_t);
	int ok;
} snappy;
static pthread_once_t snappy_once = PTHREAD_ONCE_INIT;

static void snappy_load(void)
{
	void *h = dlopen("libsnappy.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		h = dlopen("libsnappy.so", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return;
	*(void **)&snappy.compress = dlsym(h, "snappy_compress");
	*(void **)&snappy.uncompress = dlsym(h, "snappy_uncompress");
	*(void **)&snappy.max_len = dlsym(h, "snappy_max_compressed_length");
	snappy.ok = snappy.compress && snappy.uncompress && snappy.max_len;
}

static int snappy_ready(void)
{
	pthread_once(&snappy_once, snappy_load);
	return snappy.ok;
}
#endif

/* 8 bytes at any alignment: page data straight from an mmap of a QEMU guest dump is not
 * 8-aligned (the data follows the notes); the compiler makes this one load. */
static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

int kpy_page_is_zero(const unsigned char *p, size_t len)
{
	size_t i;

	if (len < 64)
		return !p[0] && (len < 2 || !memcmp(p, p + 1, len - 1));
	if (load64(p) | load64(p + len - 8))
		return 0;       /* most non-zero pages fail here */
	for (i = 0; i + 64 <= len; i += 64)
		if (load64(p + i) | load64(p + i + 8) | load64(p + i + 16) | load64(p + i + 24) |
		    load64(p + i + 32) | load64(p + i + 40) | load64(p + i + 48) | load64(p + i + 56))
			return 0;
	for (; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

int kpy_codec_available(int codec)
{
	switch (codec) {
	case KPY_CODEC_NONE:
	case KPY_CODEC_ZLIB:
	case KPY_CODEC_LZO:
		return 1;
#ifdef KPY_HAVE_ZSTD
	case KPY_CODEC_ZSTD:
		return 1;
#endif
#ifdef KPY_HAVE_SNAPPY
	case KPY_CODEC_SNAPPY:
		return snappy_ready();
#endif
	default:
		return 0;
	}
}

int kpy_vmcore_codec_available(int codec)
{
	return kpy_codec_available(codec);
}

static int init_zlib(struct kpy_codec *c)
{
	z_stream *zs = calloc(2, sizeof(*zs));   /* [0] deflate, [1] inflate */

	if (!zs)
		return -ENOMEM;
	c->zs = zs;
	if (deflateInit(&zs[0], Z_BEST_SPEED) != Z_OK || inflateInit(&zs[1]) != Z_OK)
		return -ENOMEM;
	c->bound = compressBound(c->page_size);
	return 0;
}

static int init_codec_state(struct kpy_codec *c)
{
	switch (c->codec) {
	case KPY_CODEC_NONE:
		c->bound = c->page_size;
		return 0;
	case KPY_CODEC_ZLIB:
		return init_zlib(c);
	case KPY_CODEC_LZO:
		if (lzo_init() != LZO_E_OK)
			return -EINVAL;
		if (!(c->lzo_wrk = malloc(LZO1X_1_MEM_COMPRESS)))
			return -ENOMEM;
		c->bound = c->page_size + c->page_size / 16 + 64 + 3;
		return 0;
#ifdef KPY_HAVE_ZSTD
	case KPY_CODEC_ZSTD:
		c->zcctx = ZSTD_createCCtx();
		c->zdctx = ZSTD_createDCtx();
		c->bound = ZSTD_compressBound(c->page_size);
		return c->zcctx && c->zdctx ? 0 : -ENOMEM;
#endif
#ifdef KPY_HAVE_SNAPPY
	case KPY_CODEC_SNAPPY:
		if (!snappy_ready())
			return -ENOTSUP;
		c->bound = snappy.max_len(c->page_size);
		return 0;
#endif
	default:
		return -ENOTSUP;
	}
}

int kpy_codec_init(struct kpy_codec *c, int codec, uint32_t page_size)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->codec = codec;
	c->page_size = page_size;
	if ((ret = init_codec_state(c))) {
		kpy_codec_fini(c);
		return ret;
	}
	if (codec != KPY_CODEC_NONE) {     /* cache the encoding of an all-zero page */
		unsigned char *zero = calloc(1, page_size), *out = malloc(c->bound);
		long n = zero && out ? kpy_codec_compress(c, zero, out) : -ENOMEM;
		if (n > 0 && (size_t)n <= sizeof(c->zero_out)) {
			memcpy(c->zero_out, out, (size_t)n);
			c->zero_len = (size_t)n;
		}
		free(zero);
		free(out);
		if (n < 0) {
			kpy_codec_fini(c);
			return (int)n;
		}
	}
	return 0;
}

void kpy_codec_fini(struct kpy_codec *c)
{
	if (c->zs) {
		z_stream *zs = c->zs;
		deflateEnd(&zs[0]);
		inflateEnd(&zs[1]);
		free(zs);
	}
	free(c->lzo_wrk);
#ifdef KPY_HAVE_ZSTD
	ZSTD_freeCCtx(c->zcctx);
	ZSTD_freeDCtx(c->zdctx);
#endif
	memset(c, 0, sizeof(*c));
}

static long deflate_page(struct kpy_codec *c, const unsigned char *page, unsigned char *out)
{
	z_stream *zs = &((z_stream *)c->zs)[0];

	if (deflateReset(zs) != Z_OK)
		return -EINVAL;
	zs->next_in = (unsigned char *)page;
	zs->avail_in = c->page_size;
	zs->next_out = out;
	zs->avail_out = (uInt)c->bound;
	if (deflate(zs, Z_FINISH) != Z_STREAM_END)
		return 0;
	return (long)zs->total_out;
}

long kpy_codec_compress(struct kpy_codec *c, const unsigned char *page, unsigned char *out)
{
	long n = 0;

	switch (c->codec) {
	case KPY_CODEC_ZLIB:
		n = deflate_page(c, page, out);
		break;
	case KPY_CODEC_LZO: {
		lzo_uint len = 0;
		if (lzo1x_1_compress(page, c->page_size, out, &len, c->lzo_wrk) != LZO_E_OK)
			return 0;
		n = (long)len;
		break;
	}
#ifdef KPY_HAVE_ZSTD
	case KPY_CODEC_ZSTD: {
		size_t r = ZSTD_compressCCtx(c->zcctx, out, c->bound, page, c->page_size, 1);
		n = ZSTD_isError(r) ? 0 : (long)r;
		break;
	}
#endif
#ifdef KPY_HAVE_SNAPPY
	case KPY_CODEC_SNAPPY: {
		size_t len = c->bound;
		if (snappy.compress((const char *)page, c->page_size, (char *)out, &len) != SNAPPY_OK)
			return 0;
		n = (long)len;
		break;
	}
#endif
	default:
		return 0;
	}
	return n > 0 && n < (long)c->page_size ? n : 0;
}

static int inflate_page(struct kpy_codec *c, const unsigned char *in, size_t len,
			unsigned char *page)
{
	z_stream *zs = &((z_stream *)c->zs)[1];

	if (inflateReset(zs) != Z_OK)
		return -EINVAL;
	zs->next_in = (unsigned char *)in;
	zs->avail_in = (uInt)len;
	zs->next_out = page;
	zs->avail_out = c->page_size;
	if (inflate(zs, Z_FINISH) != Z_STREAM_END || zs->total_out != c->page_size)
		return -EBADMSG;
	return 0;
}

int kpy_codec_decompress(struct kpy_codec *c, int flags, const unsigned char *in, size_t len,
			 unsigned char *page)
{
	size_t ps = c->page_size;

	if (flags == 0) {
		if (len != ps)
			return -EBADMSG;
		memcpy(page, in, ps);
		return 0;
	}
	if (flags != c->codec)
		return -EBADMSG;     /* the header names one codec; a page flagged otherwise is bad */
	switch (flags) {
	case KPY_CODEC_ZLIB:
		return inflate_page(c, in, len, page);
	case KPY_CODEC_LZO: {
		lzo_uint out = ps;
		if (lzo1x_decompress_safe(in, len, page, &out, NULL) != LZO_E_OK || out != ps)
			return -EBADMSG;
		return 0;
	}
#ifdef KPY_HAVE_ZSTD
	case KPY_CODEC_ZSTD: {
		size_t r = ZSTD_decompressDCtx(c->zdctx, page, ps, in, len);
		return !ZSTD_isError(r) && r == ps ? 0 : -EBADMSG;
	}
#endif
#ifdef KPY_HAVE_SNAPPY
	case KPY_CODEC_SNAPPY: {
		size_t out = ps;
		if (!snappy_ready() ||
		    snappy.uncompress((const char *)in, len, (char *)page, &out) != SNAPPY_OK ||
		    out != ps)
			return -EBADMSG;
		return 0;
	}
#endif
	default:
		return -ENOTSUP;
	}
}

const int kpy_codecs[] = { KPY_CODEC_NONE, KPY_CODEC_ZLIB, KPY_CODEC_LZO, KPY_CODEC_ZSTD,
			   KPY_CODEC_SNAPPY, -1 };

const char *kpy_codec_name(int codec)
{
	switch (codec) {
	case KPY_CODEC_ZLIB: return "zlib";
	case KPY_CODEC_LZO: return "lzo";
	case KPY_CODEC_ZSTD: return "zstd";
	case KPY_CODEC_SNAPPY: return "snappy";
	default: return "none";
	}
}
