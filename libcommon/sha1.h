/* sha1: SHA-1 (FIPS 180-4), for one job: git's blob ids, by which a file
 * in a git repository is named (the HellaSwag file is checked by the id
 * its authors' repository records).  Not for anything new: use sha256.
 *
 *   sha1(p, n, out)                one-shot digest of a buffer
 *   sha1_init/update/final         streaming form over a struct sha1
 *   sha1_hex(digest, hex)          20 bytes -> 40 lowercase hex + NUL
 *   sha1_git_blob_file_hex(path, hex)
 *                                  the file's git blob id, SHA-1 of
 *                                  "blob SIZE\0" then its bytes (what
 *                                  `git hash-object FILE` prints); returns
 *                                  0, or -1 with errno set when it cannot
 *                                  be read (EIO when it changed meanwhile)
 * No allocation; the caller owns every buffer. */
#ifndef GPT_SHA1_H
#define GPT_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
#define SHA1_HEX_LEN 40

struct sha1 {
	uint32_t h[5];
	uint64_t len;           /* bytes hashed so far */
	unsigned char buf[64];  /* a partial block */
	size_t fill;
};

void sha1_init(struct sha1 *c);
void sha1_update(struct sha1 *c, const void *p, size_t n);
void sha1_final(struct sha1 *c, unsigned char out[SHA1_LEN]);
void sha1(const void *p, size_t n, unsigned char out[SHA1_LEN]);
void sha1_hex(const unsigned char digest[SHA1_LEN], char hex[SHA1_HEX_LEN + 1]);
int sha1_git_blob_file_hex(const char *path, char hex[SHA1_HEX_LEN + 1]);

#endif
