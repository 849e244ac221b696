/* sha256.h - FIPS 180-4 SHA-256, freestanding (no libc): used by purgatory and tested
 * on the host against Python's hashlib. */
#ifndef KPY_SHA256_H
#define KPY_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256_ctx {
	uint32_t state[8];
	uint64_t length;      /* bytes hashed so far */
	uint8_t block[64];
	size_t used;          /* bytes waiting in block */
};

void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
void sha256_final(struct sha256_ctx *ctx, uint8_t digest[32]);
/* One-shot helper for tests. */
void sha256_digest(const void *data, size_t len, uint8_t digest[32]);

#endif
