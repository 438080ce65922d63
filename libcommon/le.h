/* le: the little-endian fields of our binary formats (shards, checkpoints,
 * safetensors, parquet), read and written byte by byte so that a file is
 * the same whatever the host's byte order.
 *
 *   le_put_u16/u32/u64/f64(p, v)   store v at p[0..2/4/8)
 *   le_get_u16/u32/u64/f64(p)      load it back
 *
 * An f64 is stored as the bits of the IEEE double (so NaN payloads and
 * -0 survive).  No allocation; p need not be aligned. */
#ifndef GPT_LE_H
#define GPT_LE_H

#include <stdint.h>
#include <string.h>

static inline void le_put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void le_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline void le_put_u64(unsigned char *p, uint64_t v)
{
	le_put_u32(p, (uint32_t)v);
	le_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline void le_put_f64(unsigned char *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	le_put_u64(p, v);
}

static inline uint16_t le_get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t le_get_u64(const unsigned char *p)
{
	return (uint64_t)le_get_u32(p) | (uint64_t)le_get_u32(p + 4) << 32;
}

static inline double le_get_f64(const unsigned char *p)
{
	uint64_t v = le_get_u64(p);
	double d;

	memcpy(&d, &v, 8);
	return d;
}

#endif
