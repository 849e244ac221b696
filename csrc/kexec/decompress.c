/*
 * decompress.c - zstd stream decompression fd -> fd.
 *
 * gzip and xz are in Python's standard library; zstd is not (before 3.14), and the
 * design allows only cffi at run time, so this small loop links libzstd instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kexecpy.h"

#ifdef KPY_HAVE_ZSTD
#include <zstd.h>

int kpy_zstd_decompress_fd(int in_fd, int out_fd, uint64_t max_out)
{
	size_t in_cap = ZSTD_DStreamInSize(), out_cap = ZSTD_DStreamOutSize();
	char *in = malloc(in_cap), *out = malloc(out_cap);
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	uint64_t total = 0;
	size_t last = 0;
	int ret = 0, seen = 0;

	if (!in || !out || !dctx) {
		ret = -ENOMEM;
		goto done;
	}
	for (;;) {
		ssize_t got = read(in_fd, in, in_cap);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto done;
		}
		if (got == 0)
			break;
		seen = 1;
		ZSTD_inBuffer ib = { in, (size_t)got, 0 };
		while (ib.pos < ib.size) {
			ZSTD_outBuffer ob = { out, out_cap, 0 };
			last = ZSTD_decompressStream(dctx, &ob, &ib);
			if (ZSTD_isError(last)) {
				ret = -EBADMSG;
				goto done;
			}
			total += ob.pos;
			if (total > max_out) {
				ret = -EFBIG;
				goto done;
			}
			ret = kpy_write_full(out_fd, out, ob.pos);
			if (ret)
				goto done;
		}
	}
	/* last != 0: the input ended inside a frame (truncated file). */
	if (!seen || last != 0)
		ret = -EBADMSG;
done:
	ZSTD_freeDCtx(dctx);
	free(in);
	free(out);
	return ret;
}

int kpy_have_zstd(void)
{
	return 1;
}
#else
int kpy_have_zstd(void)
{
	return 0;
}

int kpy_zstd_decompress_fd(int in_fd, int out_fd, uint64_t max_out)
{
	(void)in_fd; (void)out_fd; (void)max_out;
	return -ENOTSUP;
}
#endif
