/* sha1: SHA-1 as FIPS 180-4 section 6.1 defines it, written from the
 * standard, and git's blob id built on it.  Portable C only: it hashes
 * one benchmark file now and then, never a download stream. */
#include "sha1.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline uint32_t rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static inline uint32_t load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Process n whole 64-byte blocks (FIPS 180-4 6.1.2). */
static void compress(uint32_t h[5], const unsigned char *p, size_t n)
{
	uint32_t w[80];

	while (n--) {
		uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
		int t;

		for (t = 0; t < 16; t++)
			w[t] = load_be32(p + 4 * t);
		for (t = 16; t < 80; t++)
			w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
		for (t = 0; t < 80; t++) {
			uint32_t f, k, tmp;

			if (t < 20) {
				f = (b & c) ^ (~b & d);          /* Ch */
				k = 0x5a827999;
			} else if (t < 40) {
				f = b ^ c ^ d;                   /* Parity */
				k = 0x6ed9eba1;
			} else if (t < 60) {
				f = (b & c) ^ (b & d) ^ (c & d); /* Maj */
				k = 0x8f1bbcdc;
			} else {
				f = b ^ c ^ d;
				k = 0xca62c1d6;
			}
			tmp = rol(a, 5) + f + e + k + w[t];
			e = d;
			d = c;
			c = rol(b, 30);
			b = a;
			a = tmp;
		}
		h[0] += a;
		h[1] += b;
		h[2] += c;
		h[3] += d;
		h[4] += e;
		p += 64;
	}
}

void sha1_init(struct sha1 *c)
{
	static const uint32_t iv[5] = {
		0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0,
	};

	memcpy(c->h, iv, sizeof iv);
	c->len = 0;
	c->fill = 0;
}

void sha1_update(struct sha1 *c, const void *data, size_t n)
{
	const unsigned char *p = data;

	c->len += n;
	if (c->fill) {
		size_t take = 64 - c->fill;

		if (take > n)
			take = n;
		memcpy(c->buf + c->fill, p, take);
		c->fill += take;
		p += take;
		n -= take;
		if (c->fill < 64)
			return;
		compress(c->h, c->buf, 1);
		c->fill = 0;
	}
	if (n >= 64) {
		compress(c->h, p, n / 64);
		p += n & ~(size_t)63;
		n &= 63;
	}
	memcpy(c->buf, p, n);
	c->fill = n;
}

void sha1_final(struct sha1 *c, unsigned char out[SHA1_LEN])
{
	uint64_t bits = c->len * 8;
	int i;

	/* Padding (5.1.1): 0x80, zeros, then the message length in bits,
	 * big endian, in the last 8 bytes of a block. */
	c->buf[c->fill++] = 0x80;
	if (c->fill > 56) {
		memset(c->buf + c->fill, 0, 64 - c->fill);
		compress(c->h, c->buf, 1);
		c->fill = 0;
	}
	memset(c->buf + c->fill, 0, 56 - c->fill);
	for (i = 0; i < 8; i++)
		c->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
	compress(c->h, c->buf, 1);
	for (i = 0; i < 5; i++) {
		out[4 * i] = (unsigned char)(c->h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
		out[4 * i + 3] = (unsigned char)c->h[i];
	}
	memset(c, 0, sizeof *c);
}

void sha1(const void *p, size_t n, unsigned char out[SHA1_LEN])
{
	struct sha1 c;

	sha1_init(&c);
	sha1_update(&c, p, n);
	sha1_final(&c, out);
}

void sha1_hex(const unsigned char digest[SHA1_LEN], char hex[SHA1_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < SHA1_LEN; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[SHA1_HEX_LEN] = '\0';
}

/* The header carries the size, so it is taken first (fstat) and the
 * bytes read must come to exactly that: a file growing or shrinking
 * while it is read would otherwise get an id no git would give it. */
int sha1_git_blob_file_hex(const char *path, char hex[SHA1_HEX_LEN + 1])
{
	unsigned char buf[1 << 16], digest[SHA1_LEN];
	char head[32];
	struct sha1 c;
	struct stat st;
	uint64_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e, n;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0)
		goto fail;
	n = snprintf(head, sizeof head, "blob %llu", (unsigned long long)st.st_size);
	sha1_init(&c);
	sha1_update(&c, head, (size_t)n + 1);   /* with its NUL */
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		sha1_update(&c, buf, (size_t)r);
		got += (uint64_t)r;
	}
	if (got != (uint64_t)st.st_size) {
		errno = EIO;
		goto fail;
	}
	close(fd);
	sha1_final(&c, digest);
	sha1_hex(digest, hex);
	return 0;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}
