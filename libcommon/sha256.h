/* sha256: SHA-256 (FIPS 180-4) for verifying downloads and cached files.
 *
 *   sha256(p, n, out)              one-shot digest of a buffer
 *   sha256_init/update/final       streaming form over a struct sha256
 *   sha256_hex(digest, hex)        32 bytes -> 64 lowercase hex + NUL
 *   sha256_file_hex(path, hex)     digest of a whole file as hex; returns 0,
 *                                  or -1 with errno set when it cannot be read
 * No allocation; the caller owns every buffer. */
#ifndef GPT_SHA256_H
#define GPT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64

struct sha256 {
	uint32_t h[8];
	uint64_t len;           /* bytes hashed so far */
	unsigned char buf[64];  /* a partial block */
	size_t fill;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *p, size_t n);
void sha256_final(struct sha256 *c, unsigned char out[SHA256_LEN]);
void sha256(const void *p, size_t n, unsigned char out[SHA256_LEN]);
void sha256_hex(const unsigned char digest[SHA256_LEN],
		char hex[SHA256_HEX_LEN + 1]);
int sha256_file_hex(const char *path, char hex[SHA256_HEX_LEN + 1]);

#endif
