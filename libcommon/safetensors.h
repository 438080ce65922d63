/* safetensors: the Hugging Face tensor file, read and written by us.
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * optional "__metadata__": {string: string}}), then the raw tensors,
 * little-endian, offsets relative to the byte after the header.
 *
 *   st_open(f, path)        map the file and check the header: every
 *                           offset, shape and size is bounded against the
 *                           file before use; 0, or -1 with f->err set
 *   st_find(f, name)        a tensor, or NULL
 *   st_read_f32(f, t, dst)  t's elements as float32 into dst (count
 *                           st_count(t)); F32, F16 and BF16 convert, other
 *                           dtypes fail; 0 or -1 with f->err
 *   st_close(f)             unmap and free
 *   st_write(path, ts, n)   F32 tensors ts[0..n) in that order, with
 *                           metadata {"format": "pt"} (transformers wants
 *                           it); written atomically, dies on I/O errors.
 * Strings and arrays in struct safetensors belong to it. */
#ifndef GPT_SAFETENSORS_H
#define GPT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_HEADER (100u << 20)   /* as the reference implementation */
#define ST_MAX_DIMS 8

enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_OTHER };

struct st_tensor {
	char *name;
	enum st_dtype dtype;
	char dtype_name[16];
	int ndim;
	uint64_t shape[ST_MAX_DIMS];
	uint64_t begin, end;         /* byte range in the data section */
};

struct safetensors {
	const unsigned char *map;
	size_t size;
	size_t data_off;             /* 8 + header length */
	struct st_tensor *t;
	size_t n;
	char err[512];
};

int st_open(struct safetensors *f, const char *path);
const struct st_tensor *st_find(const struct safetensors *f, const char *name);
uint64_t st_count(const struct st_tensor *t);
int st_read_f32(struct safetensors *f, const struct st_tensor *t, float *dst);
void st_close(struct safetensors *f);

struct st_write_tensor {
	const char *name;
	int ndim;                    /* 1 or 2 */
	uint64_t shape[2];
	const float *data;
};

void st_write(const char *path, const struct st_write_tensor *ts, size_t n);

#endif
