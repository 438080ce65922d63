/* parquet: the footer (FileMetaData), then pages of one column read row by
 * row.  Written from the Apache Parquet format specification.  Files come
 * from strangers: each number taken from one is checked before it sizes a
 * buffer, indexes an array or moves a pointer, and a failure anywhere
 * unwinds (longjmp) to the public call with one clear reason. */
#include "parquet.h"
#include "err.h"
#include "le.h"
#include "thrift.h"

#include <brotli/decode.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <setjmp.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

enum { PAGE_DATA = 0, PAGE_INDEX = 1, PAGE_DICT = 2, PAGE_DATA_V2 = 3 };
enum {
	ENC_PLAIN = 0, ENC_PLAIN_DICT = 2, ENC_RLE = 3, ENC_BIT_PACKED = 4,
	ENC_DELTA_BINARY = 5, ENC_DELTA_LENGTH = 6, ENC_DELTA_BYTES = 7,
	ENC_RLE_DICT = 8, ENC_BYTE_STREAM_SPLIT = 9
};
enum {
	CODEC_NONE = 0, CODEC_SNAPPY, CODEC_GZIP, CODEC_LZO, CODEC_BROTLI,
	CODEC_LZ4, CODEC_ZSTD, CODEC_LZ4_RAW
};

#define PQ_MAX_SCHEMA_DEPTH 64

static const char *type_names[] = {
	"BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE",
	"BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"
};

const char *pq_codec_name(int codec)
{
	static const char *names[] = {
		"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4",
		"ZSTD", "LZ4_RAW"
	};

	if (codec >= 0 && codec < (int)(sizeof names / sizeof *names))
		return names[codec];
	return "UNKNOWN";
}

/* ---------------------------------------------------------------- footer */

struct meta_ctx {
	struct pq_file *f;
	struct thrift t;
	jmp_buf jb;
	/* schema elements, flat as stored */
	struct selem {
		int type, type_length, repetition, num_children, converted;
		int logical, is_unsigned, has_type;
		const uint8_t *name;
		size_t name_len;
	} *el;
	uint32_t nel;
	char *path;
};

static void meta_fail(struct meta_ctx *m, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
static void meta_fail(struct meta_ctx *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->f->err, sizeof m->f->err, fmt, ap);
	va_end(ap);
	longjmp(m->jb, 1);
}

static void meta_check(struct meta_ctx *m)
{
	if (m->t.err)
		meta_fail(m, "corrupt file metadata (%s)", m->t.msg);
}

static void meta_logical(struct meta_ctx *m, struct selem *e)
{
	struct thrift *t = &m->t;
	int16_t id = 0, id2;
	int type, type2;

	thrift_struct_begin(t);
	while (thrift_field(t, &id, &type)) {
		e->logical = id;
		if (id == 10 && type == THRIFT_STRUCT) {   /* IntType */
			id2 = 0;
			thrift_struct_begin(t);
			while (thrift_field(t, &id2, &type2)) {
				if (id2 == 2 && (type2 == THRIFT_TRUE || type2 == THRIFT_FALSE))
					e->is_unsigned = !thrift_bool(t, type2);
				else
					thrift_skip(t, type2);
			}
			thrift_struct_end(t);
		} else
			thrift_skip(t, type);
	}
	thrift_struct_end(t);
}

static void meta_schema_element(struct meta_ctx *m, struct selem *e)
{
	struct thrift *t = &m->t;
	int16_t id = 0;
	int type;

	e->converted = -1;
	thrift_struct_begin(t);
	while (thrift_field(t, &id, &type)) {
		switch (id) {
		case 1: e->type = thrift_i32(t, type); e->has_type = 1; break;
		case 2: e->type_length = thrift_i32(t, type); break;
		case 3: e->repetition = thrift_i32(t, type); break;
		case 4: e->name = thrift_binary(t, type, &e->name_len); break;
		case 5: e->num_children = thrift_i32(t, type); break;
		case 6: e->converted = thrift_i32(t, type); break;
		case 10:
			if (type == THRIFT_STRUCT)
				meta_logical(m, e);
			else
				thrift_skip(t, type);
			break;
		default: thrift_skip(t, type);
		}
	}
	thrift_struct_end(t);
	meta_check(m);
	if (e->repetition < 0 || e->repetition > 2)
		meta_fail(m, "corrupt schema: bad repetition %d", e->repetition);
	if (e->num_children < 0)
		meta_fail(m, "corrupt schema: negative child count");
	if (!e->name)
		meta_fail(m, "corrupt schema: an element without a name");
	if (e->converted >= 0 &&
	    (e->converted == 11 || e->converted == 12 || e->converted == 13 ||
	     e->converted == 14))
		e->is_unsigned = 1;
}

/* Walks the flattened schema depth first, turning leaves into columns. */
static void meta_walk(struct meta_ctx *m, uint32_t *i, char *path, size_t plen,
		      int def, int rep, int depth)
{
	struct pq_file *f = m->f;
	struct selem *e = &m->el[*i];
	size_t n = plen;
	int k;

	if (depth > PQ_MAX_SCHEMA_DEPTH)
		meta_fail(m, "corrupt schema: nested too deeply");
	if (depth > 0) {
		if (e->repetition == 1)
			def++;
		if (e->repetition == 2)
			def++, rep++;
		if (plen)
			path[n++] = '.';
		memcpy(path + n, e->name, e->name_len);
		n += e->name_len;
		path[n] = 0;
	}
	(*i)++;
	if (e->num_children == 0 && depth > 0) {
		struct pq_column *c;

		if (!e->has_type || e->type < 0 || e->type > PQ_FIXED_LEN_BYTE_ARRAY)
			meta_fail(m, "corrupt schema: column '%s' has a bad type %d",
				  path, e->type);
		if (e->type == PQ_FIXED_LEN_BYTE_ARRAY &&
		    (e->type_length <= 0 || e->type_length > (1 << 20)))
			meta_fail(m, "corrupt schema: column '%s' has a bad width %d",
				  path, e->type_length);
		c = &f->cols[f->ncols++];
		c->path = xstrdup(path);
		c->type = e->type;
		c->type_length = e->type_length;
		c->repetition = e->repetition;
		c->converted = e->converted;
		c->logical = e->logical;
		c->is_unsigned = e->is_unsigned;
		c->max_def = def;
		c->max_rep = rep;
		return;
	}
	for (k = 0; k < e->num_children; k++) {
		if (*i >= m->nel)
			meta_fail(m, "corrupt schema: more children than elements");
		meta_walk(m, i, path, n, def, rep, depth + 1);
	}
}

static void meta_column_meta(struct meta_ctx *m, struct pq_chunk *c)
{
	struct thrift *t = &m->t;
	int16_t id = 0;
	int type;
	int64_t data_off = -1, dict_off = -1;

	thrift_struct_begin(t);
	while (thrift_field(t, &id, &type)) {
		switch (id) {
		case 1: c->type = thrift_i32(t, type); break;
		case 4: c->codec = thrift_i32(t, type); break;
		case 5: c->num_values = thrift_i64(t, type); break;
		case 6: c->uncompressed = thrift_i64(t, type); break;
		case 7: c->size = thrift_i64(t, type); break;
		case 9: data_off = thrift_i64(t, type); break;
		case 11: dict_off = thrift_i64(t, type); break;
		default: thrift_skip(t, type);
		}
	}
	thrift_struct_end(t);
	meta_check(m);
	/* Some writers store 0 for "no dictionary page"; offset 0 is the
	 * magic, so only an offset before the data pages counts. */
	c->start = data_off;
	if (dict_off > 0 && dict_off < data_off)
		c->start = dict_off;
}

static void meta_row_group(struct meta_ctx *m, struct pq_rowgroup *g)
{
	struct pq_file *f = m->f;
	struct thrift *t = &m->t;
	int16_t id = 0, id2;
	int type, type2, elem;
	uint32_t n, k;

	thrift_struct_begin(t);
	while (thrift_field(t, &id, &type)) {
		if (id == 1 && type == THRIFT_LIST && !g->chunks) {
			n = thrift_list(t, type, &elem);
			meta_check(m);
			if (n != (uint32_t)f->ncols)
				meta_fail(m, "corrupt metadata: a row group has %u columns, the schema %d",
					  n, f->ncols);
			if (elem != THRIFT_STRUCT)
				meta_fail(m, "corrupt metadata: bad column list");
			g->chunks = xcalloc(n ? n : 1, sizeof *g->chunks);
			for (k = 0; k < n; k++) {
				struct pq_chunk *c = &g->chunks[k];

				c->start = -1;
				id2 = 0;
				thrift_struct_begin(t);
				while (thrift_field(t, &id2, &type2)) {
					if (id2 == 1) {
						thrift_skip(t, type2);
						c->external = 1;
					} else if (id2 == 3 && type2 == THRIFT_STRUCT)
						meta_column_meta(m, c);
					else
						thrift_skip(t, type2);
				}
				thrift_struct_end(t);
				meta_check(m);
			}
		} else if (id == 3)
			g->num_rows = thrift_i64(t, type);
		else
			thrift_skip(t, type);
	}
	thrift_struct_end(t);
	meta_check(m);
	if (!g->chunks)
		meta_fail(m, "corrupt metadata: a row group without columns");
	if (g->num_rows < 0)
		meta_fail(m, "corrupt metadata: negative row count");
}

static void meta_check_chunk(struct meta_ctx *m, int g, int k)
{
	struct pq_file *f = m->f;
	struct pq_chunk *c = &f->rgs[g].chunks[k];
	const char *name = f->cols[k].path;

	if (c->external)
		meta_fail(m, "column '%s' is stored in another file", name);
	if (c->type != f->cols[k].type)
		meta_fail(m, "corrupt metadata: column '%s' has type %d in row group %d, %d in the schema",
			  name, c->type, g, f->cols[k].type);
	if (c->start < 4 || c->size < 0 || (uint64_t)c->start > f->size ||
	    (uint64_t)c->size > f->size - (uint64_t)c->start)
		meta_fail(m, "corrupt metadata: column '%s' in row group %d lies outside the file",
			  name, g);
	if (c->num_values < 0)
		meta_fail(m, "corrupt metadata: column '%s' has a negative value count", name);
}

/* "parquet-mr version 1.2.8 (build ...)" before 1.2.9, or no version. */
static int old_parquet_mr(const char *cb)
{
	unsigned a = 0, b = 0, c = 0;

	if (strncmp(cb, "parquet-mr", 10) != 0)
		return 0;
	if (sscanf(cb, "parquet-mr version %u.%u.%u", &a, &b, &c) != 3)
		return 1;
	return a < 1 || (a == 1 && (b < 2 || (b == 2 && c < 9)));
}

static void meta_parse_body(struct meta_ctx *mp, const uint8_t *buf, size_t len)
{
		struct pq_file *f = mp->f;
	struct thrift *t = &mp->t;
	int16_t id = 0;
	int type, elem, have_schema = 0;
	uint32_t n, k, i;
	int64_t sum = 0;
	char *path;

	thrift_init(t, buf, len);
	thrift_struct_begin(t);
	while (thrift_field(t, &id, &type)) {
		if (id == 2 && type == THRIFT_LIST && !have_schema) {
			size_t total = 0;

			have_schema = 1;
			n = thrift_list(t, type, &elem);
			meta_check(mp);
			if (n == 0 || elem != THRIFT_STRUCT)
				meta_fail(mp, "corrupt schema: empty");
			mp->el = xcalloc(n, sizeof *mp->el);
			mp->nel = n;
			for (k = 0; k < n; k++) {
				meta_schema_element(mp, &mp->el[k]);
				total += mp->el[k].name_len + 1;
			}
			f->cols = xcalloc(n, sizeof *f->cols);
			path = mp->path = xmalloc(total + 1);
			path[0] = 0;
			i = 0;
			meta_walk(mp, &i, path, 0, 0, 0, 0);
			if (i != n)
				meta_fail(mp, "corrupt schema: %u elements, %u used", n, i);
		} else if (id == 3)
			f->num_rows = thrift_i64(t, type);
		else if (id == 4 && type == THRIFT_LIST && have_schema && !f->rgs) {
			n = thrift_list(t, type, &elem);
			meta_check(mp);
			if (n && elem != THRIFT_STRUCT)
				meta_fail(mp, "corrupt metadata: bad row group list");
			f->rgs = xcalloc(n ? n : 1, sizeof *f->rgs);
			for (k = 0; k < n; k++) {
				f->nrg = (int)k + 1;    /* so pq_close frees it */
				meta_row_group(mp, &f->rgs[k]);
			}
		} else if (id == 6 && type == THRIFT_BINARY && !f->created_by) {
			size_t cl;
			const uint8_t *cb = thrift_binary(t, type, &cl);

			meta_check(mp);
			f->created_by = xmalloc(cl + 1);
			memcpy(f->created_by, cb, cl);
			f->created_by[cl] = 0;
		} else
			thrift_skip(t, type);
	}
	thrift_struct_end(t);
	meta_check(mp);
	if (!have_schema)
		meta_fail(mp, "corrupt metadata: no schema");
	if (f->num_rows < 0)
		meta_fail(mp, "corrupt metadata: negative row count");
	for (k = 0; k < (uint32_t)f->nrg; k++) {
		for (i = 0; i < (uint32_t)f->ncols; i++)
			meta_check_chunk(mp, (int)k, (int)i);
		sum += f->rgs[k].num_rows;
		if (sum < 0)
			meta_fail(mp, "corrupt metadata: row counts overflow");
	}
	f->old_writer = !f->created_by || old_parquet_mr(f->created_by);
	if (sum != f->num_rows)
		meta_fail(mp, "corrupt metadata: row groups hold %lld rows, the file says %lld",
			  (long long)sum, (long long)f->num_rows);
}

static int meta_parse(struct pq_file *f, const uint8_t *buf, size_t len)
{
	struct meta_ctx m = { .f = f };
	int rc = 0;

	if (setjmp(m.jb))
		rc = -1;
	else
		meta_parse_body(&m, buf, len);
	free(m.el);
	free(m.path);
	return rc;
}

static int pq_parse_footer(struct pq_file *f)
{
	uint32_t flen;

	if (f->size < 12 || memcmp(f->data, "PAR1", 4) != 0) {
		snprintf(f->err, sizeof f->err, "not a parquet file");
		return -1;
	}
	if (memcmp(f->data + f->size - 4, "PARE", 4) == 0) {
		snprintf(f->err, sizeof f->err, "encrypted parquet files are not supported");
		return -1;
	}
	if (memcmp(f->data + f->size - 4, "PAR1", 4) != 0) {
		snprintf(f->err, sizeof f->err, "not a parquet file (no footer magic; truncated?)");
		return -1;
	}
	flen = le_get_u32(f->data + f->size - 8);
	if (flen > f->size - 12) {
		snprintf(f->err, sizeof f->err, "corrupt footer length %u", flen);
		return -1;
	}
	return meta_parse(f, f->data + f->size - 8 - flen, flen);
}

static void pq_init(struct pq_file *f)
{
	memset(f, 0, sizeof *f);
	f->max_alloc = (size_t)1 << 30;
}

int pq_open_mem(struct pq_file *f, const void *buf, size_t len)
{
	pq_init(f);
	f->data = buf;
	f->size = len;
	return pq_parse_footer(f);
}

int pq_open(struct pq_file *f, const char *path)
{
	struct stat st;
	int fd;
	void *p;

	pq_init(f);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(f->err, sizeof f->err, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(f->err, sizeof f->err, "not a regular file");
		close(fd);
		return -1;
	}
	if (st.st_size < 12) {
		close(fd);
		snprintf(f->err, sizeof f->err, "not a parquet file (too short)");
		return -1;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(f->err, sizeof f->err, "cannot map: %s", strerror(errno));
		return -1;
	}
	madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
	f->data = p;
	f->size = (size_t)st.st_size;
	f->mapped = 1;
	return pq_parse_footer(f);
}

void pq_close(struct pq_file *f)
{
	int i;

	if (f->mapped && f->data)
		munmap((void *)f->data, f->size);
	for (i = 0; i < f->ncols; i++)
		free(f->cols[i].path);
	free(f->cols);
	for (i = 0; i < f->nrg; i++)
		free(f->rgs[i].chunks);
	free(f->rgs);
	free(f->created_by);
	memset(f, 0, sizeof *f);
}

int pq_find_column(const struct pq_file *f, const char *name)
{
	int i, found = -1, nfound = 0;

	for (i = 0; i < f->ncols; i++)
		if (strcmp(f->cols[i].path, name) == 0)
			return i;
	for (i = 0; i < f->ncols; i++) {
		const char *dot = strrchr(f->cols[i].path, '.');

		if (dot && strcmp(dot + 1, name) == 0)
			found = i, nfound++;
	}
	return nfound == 1 ? found : -1;
}

static const char *annotation(const struct pq_column *c)
{
	static const char *conv[] = {
		"UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE",
		"TIME_MILLIS", "TIME_MICROS", "TIMESTAMP_MILLIS",
		"TIMESTAMP_MICROS", "UINT_8", "UINT_16", "UINT_32", "UINT_64",
		"INT_8", "INT_16", "INT_32", "INT_64", "JSON", "BSON", "INTERVAL"
	};
	static const char *logical[] = {
		"", "STRING", "MAP", "LIST", "ENUM", "DECIMAL", "DATE", "TIME",
		"TIMESTAMP", "", "INTEGER", "NULL", "JSON", "BSON", "UUID",
		"FLOAT16", "VARIANT", "GEOMETRY", "GEOGRAPHY"
	};

	if (c->logical > 0 && c->logical < (int)(sizeof logical / sizeof *logical) &&
	    *logical[c->logical])
		return logical[c->logical];
	if (c->converted >= 0 && c->converted < (int)(sizeof conv / sizeof *conv))
		return conv[c->converted];
	return "";
}

void pq_print_schema(const struct pq_file *f, FILE *fp)
{
	static const char *rep[] = { "required", "optional", "repeated" };
	int i, k;

	fprintf(fp, "rows %lld, row groups %d, columns %d\n",
		(long long)f->num_rows, f->nrg, f->ncols);
	if (f->created_by)
		fprintf(fp, "created by %s\n", f->created_by);
	for (i = 0; i < f->ncols; i++) {
		const struct pq_column *c = &f->cols[i];

		fprintf(fp, "column %s %s", c->path, type_names[c->type]);
		if (c->type == PQ_FIXED_LEN_BYTE_ARRAY)
			fprintf(fp, "(%d)", c->type_length);
		if (*annotation(c))
			fprintf(fp, " %s", annotation(c));
		fprintf(fp, " %s%s\n", rep[c->repetition],
			c->max_rep ? " nested" : "");
	}
	for (k = 0; k < f->nrg; k++) {
		const struct pq_rowgroup *g = &f->rgs[k];
		int64_t csize = 0, usize = 0;

		fprintf(fp, "row group %d: rows %lld", k, (long long)g->num_rows);
		for (i = 0; i < f->ncols; i++) {
			csize += g->chunks[i].size;
			usize += g->chunks[i].uncompressed;
		}
		fprintf(fp, ", bytes %lld (%lld uncompressed), codecs",
			(long long)csize, (long long)usize);
		for (i = 0; i < f->ncols; i++) {
			int seen = 0, j;

			for (j = 0; j < i; j++)
				seen |= g->chunks[j].codec == g->chunks[i].codec;
			if (!seen)
				fprintf(fp, " %s", pq_codec_name(g->chunks[i].codec));
		}
		fputc('\n', fp);
	}
}

/* ------------------------------------------------------------ bit reading */

/* bw bits (0..64) at bit offset pos of b[0..avail), least significant bit
 * first; bytes past avail read as zero (callers check sizes first; this is
 * the last line of defence). */
static inline uint64_t bits_get(const uint8_t *b, size_t avail, uint64_t pos, int bw)
{
	size_t byte = (size_t)(pos >> 3);
	int sh = (int)(pos & 7), k;
	uint64_t v = 0;

	if (bw == 0)
		return 0;
	if (byte + 9 <= avail) {
		memcpy(&v, b + byte, 8);
		v >>= sh;
		if (sh + bw > 64)
			v |= (uint64_t)b[byte + 8] << (64 - sh);
	} else {
		for (k = 0; k * 8 < sh + bw; k++) {
			uint64_t x = byte + (size_t)k < avail ? b[byte + (size_t)k] : 0;
			int s = 8 * k - sh;

			if (s < 0)
				v |= x >> -s;
			else if (s < 64)
				v |= x << s;
		}
	}
	return bw == 64 ? v : v & ((UINT64_C(1) << bw) - 1);
}

/* RLE / bit-packed hybrid: levels and dictionary indices. */
struct rle {
	const uint8_t *p, *end;
	int bw;
	uint64_t left;          /* values left in the current run */
	int packed;
	uint32_t value;         /* RLE run value */
	const uint8_t *bits;    /* bit-packed run */
	size_t bits_len;
	uint64_t pos;           /* bit position in the packed run */
};

struct pq_reader {
	struct pq_file *f;
	int col;
	const struct pq_column *c;
	jmp_buf jb;
	char err[320];
	/* row groups and chunks */
	int next_rg, rg;
	int64_t rg_rows_left;       /* rows of the current row group unread */
	int64_t chunk_values_left;  /* by the chunk's metadata */
	const uint8_t *pos, *chunk_end;
	const struct pq_chunk *chunk;
	int page_no;
	/* dictionary of the current chunk */
	int have_dict;
	uint8_t *dict_buf;
	size_t dict_cap;
	const uint8_t *dict_data;
	uint32_t dict_n;
	uint32_t *dict_off, *dict_len;
	size_t dict_idx_cap;
	/* current data page */
	int64_t page_left;          /* level entries left */
	int enc;
	uint8_t *page_buf;
	size_t page_cap;
	struct rle def, rep;
	int chunk_started;          /* a level entry of this chunk was read */
	const uint8_t *vp, *vend;   /* value bytes */
	const uint8_t *vstart;
	struct rle idx;
	uint64_t bitpos;            /* PLAIN booleans */
	uint64_t nvals;             /* BYTE_STREAM_SPLIT: values in the page */
	uint64_t vno;               /* values decoded in this page */
	struct delta {
		const uint8_t *p, *end;
		uint64_t block, minis, per_mini, total, done;
		uint64_t last;
		int64_t min_delta;
		const uint8_t *widths;
		uint64_t mini, mini_left;
		const uint8_t *mbits;
		size_t mbits_len;
		uint64_t mpos;
		int bw;
	} d1, d2;                   /* lengths or prefixes; suffix lengths */
	uint8_t *cur, *prev;        /* DELTA_BYTE_ARRAY values */
	size_t cur_cap, prev_cap, prev_len;
	uint8_t scratch[16];
};

static void rd_fail(struct pq_reader *r, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
static void rd_fail(struct pq_reader *r, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(r->err, sizeof r->err, "%s (column '%s', row group %d, page %d)",
		 msg, r->c->path, r->rg, r->page_no);
	longjmp(r->jb, 1);
}

const char *pq_error(const struct pq_reader *r)
{
	return r->err;
}

static uint64_t varint(struct pq_reader *r, const uint8_t **pp, const uint8_t *end)
{
	uint64_t v = 0;
	int shift;

	for (shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (*pp >= end)
			rd_fail(r, "truncated varint");
		b = *(*pp)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	rd_fail(r, "varint too long");
}

static void rle_init(struct rle *d, const uint8_t *p, const uint8_t *end, int bw)
{
	memset(d, 0, sizeof *d);
	d->p = p;
	d->end = end;
	d->bw = bw;
}

static uint32_t rle_next(struct pq_reader *r, struct rle *d)
{
	/* A loop, not recursion: a page may hold many empty runs. */
	while (d->left == 0) {
		uint64_t h = varint(r, &d->p, d->end);

		if (h & 1) {
			uint64_t groups = h >> 1;
			size_t avail = (size_t)(d->end - d->p);
			uint64_t need;

			if (groups == 0)
				rd_fail(r, "empty bit-packed run");
			if (groups > avail + 1)
				rd_fail(r, "bit-packed run longer than the page");
			need = groups * (uint64_t)d->bw;
			/* The last run may be cut short by writers that stop
			 * at the last value; its missing bytes read as zero
			 * only if no value is taken from them (checked below). */
			d->packed = 1;
			d->bits = d->p;
			d->bits_len = need < avail ? (size_t)need : avail;
			d->p += d->bits_len;
			d->left = groups * 8;
			d->pos = 0;
		} else {
			int nb = (d->bw + 7) / 8, k;

			if ((size_t)(d->end - d->p) < (size_t)nb)
				rd_fail(r, "truncated RLE run");
			d->packed = 0;
			d->value = 0;
			for (k = 0; k < nb; k++)
				d->value |= (uint32_t)d->p[k] << (8 * k);
			d->p += nb;
			d->left = h >> 1;
		}
	}
	d->left--;
	if (d->packed) {
		uint64_t v;

		if (d->pos + (uint64_t)d->bw > (uint64_t)d->bits_len * 8)
			rd_fail(r, "truncated bit-packed run");
		v = bits_get(d->bits, d->bits_len, d->pos, d->bw);
		d->pos += (uint64_t)d->bw;
		return (uint32_t)v;
	}
	return d->value;
}

/* ------------------------------------------------------- delta encodings */

static void delta_init(struct pq_reader *r, struct delta *d, const uint8_t *p,
		       const uint8_t *end, uint64_t max_total)
{
	uint64_t first;

	memset(d, 0, sizeof *d);
	d->block = varint(r, &p, end);
	d->minis = varint(r, &p, end);
	d->total = varint(r, &p, end);
	first = varint(r, &p, end);
	d->last = (first >> 1) ^ -(first & 1);
	if (d->block == 0 || d->block % 128 || d->block > (1u << 20) ||
	    d->minis == 0 || d->block % d->minis || (d->block / d->minis) % 32)
		rd_fail(r, "bad delta encoding header");
	if (d->total > max_total)
		rd_fail(r, "delta encoding holds %llu values, the page fewer",
			(unsigned long long)d->total);
	d->per_mini = d->block / d->minis;
	d->mini = d->minis;
	d->p = p;
	d->end = end;
}

static int64_t delta_next(struct pq_reader *r, struct delta *d)
{
	uint64_t v;

	if (d->done >= d->total)
		rd_fail(r, "delta encoding runs out of values");
	if (d->done++ == 0)
		return (int64_t)d->last;
	if (d->mini_left == 0) {
		size_t avail, need;
		uint64_t want;

		if (d->mini >= d->minis) {
			uint64_t z = varint(r, &d->p, d->end);

			d->min_delta = (int64_t)((z >> 1) ^ -(z & 1));
			if ((uint64_t)(d->end - d->p) < d->minis)
				rd_fail(r, "truncated delta block");
			d->widths = d->p;
			d->p += d->minis;
			d->mini = 0;
		}
		d->bw = d->widths[d->mini++];
		if (d->bw > 64)
			rd_fail(r, "delta bit width %d", d->bw);
		avail = (size_t)(d->end - d->p);
		need = (size_t)(d->per_mini * (uint64_t)d->bw / 8);
		want = d->total - d->done + 1;
		if (want > d->per_mini)
			want = d->per_mini;
		if ((want * (uint64_t)d->bw + 7) / 8 > avail)
			rd_fail(r, "truncated delta miniblock");
		d->mbits = d->p;
		d->mbits_len = need < avail ? need : avail;
		d->p += d->mbits_len;
		d->mini_left = d->per_mini;
		d->mpos = 0;
	}
	v = bits_get(d->mbits, d->mbits_len, d->mpos, d->bw);
	d->mpos += (uint64_t)d->bw;
	d->mini_left--;
	d->last += (uint64_t)d->min_delta + v;
	return (int64_t)d->last;
}

/* Reads a delta stream to its end, to find where what follows begins;
 * with sum, also checks each value is a length and adds them up. */
static const uint8_t *delta_skip_all(struct pq_reader *r, struct delta d, uint64_t *sum)
{
	uint64_t s = 0;

	while (d.done < d.total) {
		int64_t v = delta_next(r, &d);

		if (sum) {
			if (v < 0 || (uint64_t)v > r->f->max_alloc)
				rd_fail(r, "bad length %lld", (long long)v);
			s += (uint64_t)v;
		}
	}
	if (sum)
		*sum = s;
	return d.p;
}

/* ------------------------------------------------------------ decompress */

static void gunzip(struct pq_reader *r, const uint8_t *src, size_t n,
		   uint8_t *dst, size_t m)
{
	z_stream z;
	int ret;

	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 15 + 32) != Z_OK)
		rd_fail(r, "zlib init failed");
	z.next_in = (Bytef *)src;
	z.avail_in = (uInt)n;
	z.next_out = dst;
	z.avail_out = (uInt)m;
	for (;;) {
		ret = inflate(&z, Z_FINISH);
		if (ret == Z_STREAM_END) {
			/* Several gzip members one after another. */
			if (z.avail_in == 0)
				break;
			if (inflateReset(&z) != Z_OK)
				break;
			continue;
		}
		if (ret == Z_BUF_ERROR && z.avail_out == 0 && z.avail_in > 0) {
			inflateEnd(&z);
			rd_fail(r, "GZIP page larger than its header says");
		}
		inflateEnd(&z);
		rd_fail(r, "bad GZIP data (%s)", z.msg ? z.msg : "truncated");
	}
	inflateEnd(&z);
	if (z.avail_out != 0)
		rd_fail(r, "GZIP page is %zu bytes, its header says %zu",
			m - (size_t)z.avail_out, m);
}

/* Hadoop's LZ4 framing: blocks of (big-endian uncompressed size,
 * compressed size, LZ4 block).  Returns 0 when src is not that. */
static int lz4_hadoop(const uint8_t *src, size_t n, uint8_t *dst, size_t m)
{
	size_t out = 0;

	while (n > 0) {
		uint32_t usize, csize;
		int got;

		if (n < 8)
			return 0;
		usize = (uint32_t)src[0] << 24 | (uint32_t)src[1] << 16 |
			(uint32_t)src[2] << 8 | src[3];
		csize = (uint32_t)src[4] << 24 | (uint32_t)src[5] << 16 |
			(uint32_t)src[6] << 8 | src[7];
		src += 8, n -= 8;
		if (csize > n || usize > m - out || csize > INT32_MAX || usize > INT32_MAX)
			return 0;
		got = LZ4_decompress_safe((const char *)src, (char *)dst + out,
					  (int)csize, (int)usize);
		if (got < 0 || (uint32_t)got != usize)
			return 0;
		src += csize, n -= csize;
		out += usize;
	}
	return out == m;
}

/* Decompresses src[0..n) into exactly m bytes; returns where the bytes
 * are (src itself when uncompressed). */
static const uint8_t *decompress(struct pq_reader *r, int codec, const uint8_t *src,
				 size_t n, size_t m, uint8_t **buf, size_t *cap)
{
	uint8_t *dst;

	if (codec == CODEC_NONE) {
		if (n != m)
			rd_fail(r, "uncompressed page is %zu bytes, its header says %zu", n, m);
		return src;
	}
	if (m == 0)
		return src;
	if (m > r->f->max_alloc)
		rd_fail(r, "page of %zu bytes is over the limit", m);
	/* Where the compressed data states its size, check it before
	 * allocating for the header's claim. */
	if (codec == CODEC_SNAPPY) {
		size_t len;

		if (snappy_uncompressed_length((const char *)src, n, &len) != SNAPPY_OK || len != m)
			rd_fail(r, "bad SNAPPY data or size");
	} else if (codec == CODEC_ZSTD) {
		unsigned long long fs = ZSTD_getFrameContentSize(src, n);

		if (fs == ZSTD_CONTENTSIZE_ERROR)
			rd_fail(r, "bad ZSTD data (no frame)");
		if (fs != ZSTD_CONTENTSIZE_UNKNOWN && fs > m)
			rd_fail(r, "ZSTD frame of %llu bytes, its page header says %zu", fs, m);
	}
	if (m > *cap) {
		free(*buf);
		*buf = xmalloc(m);
		*cap = m;
	}
	dst = *buf;
	switch (codec) {
	case CODEC_SNAPPY: {
		size_t len = m;    /* in: room in dst; out: bytes written */

		if (snappy_uncompress((const char *)src, n, (char *)dst, &len) != SNAPPY_OK || len != m)
			rd_fail(r, "bad SNAPPY data");
		break;
	}
	case CODEC_GZIP:
		if (n > UINT32_MAX || m > UINT32_MAX)
			rd_fail(r, "GZIP page too large");
		gunzip(r, src, n, dst, m);
		break;
	case CODEC_ZSTD: {
		size_t got = ZSTD_decompress(dst, m, src, n);

		if (ZSTD_isError(got))
			rd_fail(r, "bad ZSTD data (%s)", ZSTD_getErrorName(got));
		if (got != m)
			rd_fail(r, "ZSTD page is %zu bytes, its header says %zu", got, m);
		break;
	}
	case CODEC_BROTLI: {
		size_t got = m;

		if (BrotliDecoderDecompress(n, src, &got, dst) != BROTLI_DECODER_RESULT_SUCCESS ||
		    got != m)
			rd_fail(r, "bad BROTLI data or size");
		break;
	}
	case CODEC_LZ4_RAW:
	case CODEC_LZ4: {
		int got;

		if (n > INT32_MAX || m > INT32_MAX)
			rd_fail(r, "LZ4 page too large");
		if (codec == CODEC_LZ4 && lz4_hadoop(src, n, dst, m))
			break;
		got = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)m);
		if (got < 0 || (size_t)got != m)
			rd_fail(r, "bad %s data or size", pq_codec_name(codec));
		break;
	}
	default:
		rd_fail(r, "compression codec %s (%d) is not supported",
			pq_codec_name(codec), codec);
	}
	return dst;
}

/* ----------------------------------------------------------------- pages */

struct page_header {
	int type, crc_set;
	int32_t usize, csize;
	uint32_t crc;
	int32_t num_values, num_nulls, num_rows;
	int enc, def_enc, rep_enc;
	int32_t def_len, rep_len;
	int is_compressed;
	int have_sub;
};

static void hdr_data(struct thrift *t, struct page_header *h, int v2)
{
	int16_t id = 0;
	int type;

	h->have_sub = 1;
	thrift_struct_begin(t);
	while (thrift_field(t, &id, &type)) {
		if (!v2) {
			switch (id) {
			case 1: h->num_values = thrift_i32(t, type); break;
			case 2: h->enc = thrift_i32(t, type); break;
			case 3: h->def_enc = thrift_i32(t, type); break;
			case 4: h->rep_enc = thrift_i32(t, type); break;
			default: thrift_skip(t, type);
			}
		} else {
			switch (id) {
			case 1: h->num_values = thrift_i32(t, type); break;
			case 2: h->num_nulls = thrift_i32(t, type); break;
			case 3: h->num_rows = thrift_i32(t, type); break;
			case 4: h->enc = thrift_i32(t, type); break;
			case 5: h->def_len = thrift_i32(t, type); break;
			case 6: h->rep_len = thrift_i32(t, type); break;
			case 7: h->is_compressed = thrift_bool(t, type); break;
			default: thrift_skip(t, type);
			}
		}
	}
	thrift_struct_end(t);
}

static void hdr_dict(struct thrift *t, struct page_header *h)
{
	int16_t id = 0;
	int type;

	h->have_sub = 1;
	thrift_struct_begin(t);
	while (thrift_field(t, &id, &type)) {
		if (id == 1)
			h->num_values = thrift_i32(t, type);
		else if (id == 2)
			h->enc = thrift_i32(t, type);
		else
			thrift_skip(t, type);
	}
	thrift_struct_end(t);
}

static size_t read_page_header(struct pq_reader *r, struct page_header *h)
{
	struct thrift t;
	int16_t id = 0;
	int type;

	memset(h, 0, sizeof *h);
	h->type = -1;
	h->usize = h->csize = -1;
	h->is_compressed = 1;
	thrift_init(&t, r->pos, (size_t)(r->chunk_end - r->pos));
	thrift_struct_begin(&t);
	while (thrift_field(&t, &id, &type)) {
		switch (id) {
		case 1: h->type = thrift_i32(&t, type); break;
		case 2: h->usize = thrift_i32(&t, type); break;
		case 3: h->csize = thrift_i32(&t, type); break;
		case 4: h->crc = (uint32_t)thrift_i32(&t, type); h->crc_set = 1; break;
		case 5:
			if (h->type == PAGE_DATA && type == THRIFT_STRUCT)
				hdr_data(&t, h, 0);
			else
				thrift_skip(&t, type);
			break;
		case 7:
			if (h->type == PAGE_DICT && type == THRIFT_STRUCT)
				hdr_dict(&t, h);
			else
				thrift_skip(&t, type);
			break;
		case 8:
			if (h->type == PAGE_DATA_V2 && type == THRIFT_STRUCT)
				hdr_data(&t, h, 1);
			else
				thrift_skip(&t, type);
			break;
		default: thrift_skip(&t, type);
		}
	}
	thrift_struct_end(&t);
	if (t.err)
		rd_fail(r, "corrupt page header (%s)", t.msg);
	if (h->usize < 0 || h->csize < 0)
		rd_fail(r, "page header without sizes");
	return thrift_used(&t, r->pos);
}

static size_t value_width(const struct pq_column *c)
{
	switch (c->type) {
	case PQ_INT32: case PQ_FLOAT: return 4;
	case PQ_INT64: case PQ_DOUBLE: return 8;
	case PQ_INT96: return 12;
	case PQ_FIXED_LEN_BYTE_ARRAY: return (size_t)c->type_length;
	default: return 0;
	}
}

static void load_dict(struct pq_reader *r, const struct page_header *h,
		      const uint8_t *raw)
{
	const uint8_t *p, *end;
	uint32_t k;

	if (!h->have_sub)
		rd_fail(r, "dictionary page without its header");
	if (r->have_dict)
		rd_fail(r, "second dictionary page in one column chunk");
	if (h->enc != ENC_PLAIN && h->enc != ENC_PLAIN_DICT)
		rd_fail(r, "dictionary page encoding %d", h->enc);
	if (h->num_values < 0)
		rd_fail(r, "negative dictionary size");
	p = decompress(r, r->chunk->codec, raw, (size_t)h->csize, (size_t)h->usize,
		       &r->dict_buf, &r->dict_cap);
	end = p + h->usize;
	r->dict_data = p;
	r->dict_n = (uint32_t)h->num_values;
	if (r->c->type == PQ_BYTE_ARRAY) {
		if ((size_t)h->num_values > (size_t)h->usize / 4)
			rd_fail(r, "dictionary of %d values in %d bytes", h->num_values, h->usize);
		if (r->dict_n > r->dict_idx_cap) {
			free(r->dict_off);
			free(r->dict_len);
			r->dict_off = xmalloc(xmul(r->dict_n, sizeof *r->dict_off));
			r->dict_len = xmalloc(xmul(r->dict_n, sizeof *r->dict_len));
			r->dict_idx_cap = r->dict_n;
		}
		for (k = 0; k < r->dict_n; k++) {
			uint32_t len;

			if (end - p < 4)
				rd_fail(r, "truncated dictionary");
			len = le_get_u32(p);
			p += 4;
			if (len > (size_t)(end - p))
				rd_fail(r, "dictionary value longer than its page");
			r->dict_off[k] = (uint32_t)(p - r->dict_data);
			r->dict_len[k] = len;
			p += len;
		}
	} else if (r->c->type == PQ_BOOLEAN) {
		rd_fail(r, "dictionary of booleans");
	} else {
		size_t w = value_width(r->c);

		if ((size_t)h->num_values > (size_t)h->usize / w)
			rd_fail(r, "dictionary of %d values in %d bytes", h->num_values, h->usize);
	}
	r->have_dict = 1;
}

static void start_values(struct pq_reader *r, const uint8_t *p, const uint8_t *end,
			 uint64_t nvalues)
{
	int type = r->c->type;

	r->vp = r->vstart = p;
	r->vend = end;
	r->bitpos = 0;
	r->vno = 0;
	switch (r->enc) {
	case ENC_PLAIN:
		break;
	case ENC_PLAIN_DICT:
	case ENC_RLE_DICT: {
		int bw;

		if (!r->have_dict)
			rd_fail(r, "dictionary-encoded page without a dictionary");
		if (p >= end) {
			if (nvalues)
				rd_fail(r, "empty dictionary index data");
			bw = 0;
		} else
			bw = *p++;
		if (bw > 32)
			rd_fail(r, "dictionary index bit width %d", bw);
		rle_init(&r->idx, p, end, bw);
		break;
	}
	case ENC_RLE: {
		uint32_t len;

		if (type != PQ_BOOLEAN)
			rd_fail(r, "RLE encoding for a non-boolean column");
		if (end - p < 4)
			rd_fail(r, "truncated RLE values");
		len = le_get_u32(p);
		if (len > (size_t)(end - p - 4))
			rd_fail(r, "RLE values longer than the page");
		rle_init(&r->idx, p + 4, p + 4 + len, 1);
		break;
	}
	case ENC_DELTA_BINARY:
		if (type != PQ_INT32 && type != PQ_INT64)
			rd_fail(r, "DELTA_BINARY_PACKED for a non-integer column");
		delta_init(r, &r->d1, p, end, nvalues);
		break;
	case ENC_DELTA_LENGTH: {
		uint64_t sum;

		if (type != PQ_BYTE_ARRAY)
			rd_fail(r, "DELTA_LENGTH_BYTE_ARRAY for a non-string column");
		delta_init(r, &r->d1, p, end, nvalues);
		r->vp = delta_skip_all(r, r->d1, &sum);
		if (sum > (uint64_t)(end - r->vp))
			rd_fail(r, "string lengths add up past the page");
		break;
	}
	case ENC_DELTA_BYTES: {
		const uint8_t *q;
		uint64_t sum;

		if (type != PQ_BYTE_ARRAY && type != PQ_FIXED_LEN_BYTE_ARRAY)
			rd_fail(r, "DELTA_BYTE_ARRAY for a non-string column");
		delta_init(r, &r->d1, p, end, nvalues);
		q = delta_skip_all(r, r->d1, NULL);
		delta_init(r, &r->d2, q, end, nvalues);
		if (r->d2.total != r->d1.total)
			rd_fail(r, "DELTA_BYTE_ARRAY prefix and suffix counts differ");
		r->vp = delta_skip_all(r, r->d2, &sum);
		if (sum > (uint64_t)(end - r->vp))
			rd_fail(r, "suffix lengths add up past the page");
		r->prev_len = 0;
		break;
	}
	case ENC_BYTE_STREAM_SPLIT: {
		size_t w = value_width(r->c);

		if (w == 0 || type == PQ_INT96 || w > sizeof r->scratch)
			rd_fail(r, "BYTE_STREAM_SPLIT for a %s column of width %zu is not supported",
				type_names[type], w);
		if ((size_t)(end - p) % w)
			rd_fail(r, "BYTE_STREAM_SPLIT data not a multiple of %zu", w);
		r->nvals = (uint64_t)(end - p) / w;
		break;
	}
	default:
		rd_fail(r, "encoding %d is not supported", r->enc);
	}
}

static void check_crc(struct pq_reader *r, const struct page_header *h, const uint8_t *raw)
{
	uLong c;

	if (!h->crc_set)
		return;
	c = crc32(0L, Z_NULL, 0);
	c = crc32_z(c, raw, (size_t)h->csize);
	if ((uint32_t)c != h->crc)
		rd_fail(r, "page checksum mismatch (CRC-32 %08x, header says %08x)",
			(unsigned)c, (unsigned)h->crc);
}

/* Loads the next data page of the current chunk; 0 at the chunk's end. */
static int load_page(struct pq_reader *r)
{
	for (;;) {
		struct page_header h;
		const uint8_t *raw;
		size_t hl;

		if (r->pos >= r->chunk_end)
			return 0;
		r->page_no++;
		hl = read_page_header(r, &h);
		raw = r->pos + hl;
		if ((size_t)h.csize > (size_t)(r->chunk_end - raw))
			rd_fail(r, "page of %d bytes runs past its column chunk", h.csize);
		r->pos = raw + h.csize;
		if ((size_t)h.usize > r->f->max_alloc)
			rd_fail(r, "page of %d bytes is over the limit", h.usize);
		check_crc(r, &h, raw);
		if (h.type == PAGE_DICT) {
			load_dict(r, &h, raw);
			continue;
		}
		if (h.type != PAGE_DATA && h.type != PAGE_DATA_V2)
			continue;       /* index pages and types added later */
		if (!h.have_sub)
			rd_fail(r, "data page without its header");
		if (h.num_values < 0)
			rd_fail(r, "negative value count");
		if (h.num_values > r->chunk_values_left)
			rd_fail(r, "page holds %d values, the column chunk %lld more",
				h.num_values, (long long)r->chunk_values_left);
		r->enc = h.enc;
		if (h.type == PAGE_DATA) {
			const uint8_t *p, *end;

			p = decompress(r, r->chunk->codec, raw, (size_t)h.csize,
				       (size_t)h.usize, &r->page_buf, &r->page_cap);
			end = p + h.usize;
			if (r->c->max_rep > 0) {
				uint32_t len;

				if (h.rep_enc != ENC_RLE)
					rd_fail(r, "repetition level encoding %d is not supported",
						h.rep_enc);
				if (end - p < 4)
					rd_fail(r, "truncated repetition levels");
				len = le_get_u32(p);
				p += 4;
				if (len > (size_t)(end - p))
					rd_fail(r, "repetition levels longer than the page");
				rle_init(&r->rep, p, p + len, 32 - __builtin_clz((unsigned)r->c->max_rep));
				p += len;
			}
			if (r->c->max_def > 0) {
				uint32_t len;

				if (h.def_enc != ENC_RLE)
					rd_fail(r, "definition level encoding %d is not supported",
						h.def_enc);
				if (end - p < 4)
					rd_fail(r, "truncated definition levels");
				len = le_get_u32(p);
				p += 4;
				if (len > (size_t)(end - p))
					rd_fail(r, "definition levels longer than the page");
				rle_init(&r->def, p, p + len, 32 - __builtin_clz((unsigned)r->c->max_def));
				p += len;
			}
			start_values(r, p, end, (uint64_t)h.num_values);
		} else {
			const uint8_t *vals;
			size_t vlen, ulen, lv;
			int codec = r->chunk->codec;

			if (h.def_len < 0 || h.rep_len < 0 ||
			    (int64_t)h.def_len + h.rep_len > h.csize ||
			    (int64_t)h.def_len + h.rep_len > h.usize)
				rd_fail(r, "bad level sizes in a v2 page header");
			if (h.num_nulls < 0 || h.num_nulls > h.num_values)
				rd_fail(r, "bad null count in a v2 page header");
			if (r->c->max_rep > 0)
				rle_init(&r->rep, raw, raw + h.rep_len,
					 32 - __builtin_clz((unsigned)r->c->max_rep));
			else if (h.rep_len)
				rd_fail(r, "repetition levels in a flat column");
			if (r->c->max_def > 0)
				rle_init(&r->def, raw + h.rep_len, raw + h.rep_len + h.def_len,
					 32 - __builtin_clz((unsigned)r->c->max_def));
			else if (h.def_len)
				rd_fail(r, "definition levels in a required column");
			lv = (size_t)h.rep_len + (size_t)h.def_len;
			vlen = (size_t)h.csize - lv;
			ulen = (size_t)h.usize - lv;
			if (!h.is_compressed)
				codec = CODEC_NONE;
			vals = decompress(r, codec, raw + lv, vlen, ulen,
					  &r->page_buf, &r->page_cap);
			start_values(r, vals, vals + ulen,
				     (uint64_t)(h.num_values - h.num_nulls));
		}
		r->page_left = h.num_values;
		r->chunk_values_left -= h.num_values;
		if (h.num_values > 0)
			return 1;
	}
}

static void start_chunk(struct pq_reader *r)
{
	const struct pq_rowgroup *g = &r->f->rgs[r->rg];

	r->chunk = &g->chunks[r->col];
	r->pos = r->f->data + r->chunk->start;
	r->chunk_end = r->pos + r->chunk->size;
	/* Old parquet-mr left the dictionary page header out of the chunk
	 * size; readers allow it up to 100 bytes more. */
	if (r->f->old_writer) {
		size_t room = (size_t)(r->f->data + r->f->size - r->chunk_end);

		r->chunk_end += room < 100 ? room : 100;
	}
	r->chunk_values_left = r->chunk->num_values;
	r->rg_rows_left = g->num_rows;
	r->have_dict = 0;
	r->page_left = 0;
	r->page_no = 0;
	r->chunk_started = 0;
	/* In a flat column a level entry is a row; nested columns hold at
	 * least one entry a row. */
	if (r->c->max_rep == 0 ? r->chunk->num_values != g->num_rows
			       : r->chunk->num_values < g->num_rows)
		rd_fail(r, "column chunk holds %lld values, its row group %lld rows",
			(long long)r->chunk->num_values, (long long)g->num_rows);
}

/* Moves to a page with values left; 0 at the end of the file. */
static int advance(struct pq_reader *r)
{
	while (r->page_left == 0) {
		/* Pages past the chunk's value count are not read: the chunk
		 * end may be padded (old_writer). */
		if (r->rg >= 0 && r->pos < r->chunk_end && r->chunk_values_left > 0 &&
		    load_page(r))
			return 1;
		if (r->rg >= 0 && r->rg_rows_left > 0)
			rd_fail(r, "column chunk ends %lld rows early",
				(long long)r->rg_rows_left);
		if (r->next_rg >= r->f->nrg)
			return 0;
		r->rg = r->next_rg++;
		start_chunk(r);
	}
	return 1;
}

/* ---------------------------------------------------------------- values */

static void set_fixed(struct pq_reader *r, struct pq_value *v, const uint8_t *p)
{
	const struct pq_column *c = r->c;
	int32_t i32;
	float fl;

	switch (c->type) {
	case PQ_INT32:
		memcpy(&i32, p, 4);
		v->i = c->is_unsigned ? (int64_t)(uint32_t)i32 : i32;
		v->d = (double)v->i;
		break;
	case PQ_INT64:
		memcpy(&v->i, p, 8);
		v->d = c->is_unsigned ? (double)(uint64_t)v->i : (double)v->i;
		break;
	case PQ_FLOAT:
		memcpy(&fl, p, 4);
		v->d = fl;
		break;
	case PQ_DOUBLE:
		memcpy(&v->d, p, 8);
		break;
	default:
		v->s = p;
		v->len = value_width(c);
	}
}

static void delta_value(struct pq_reader *r, struct pq_value *v)
{
	int64_t pre = delta_next(r, &r->d1);
	int64_t suf = delta_next(r, &r->d2);
	size_t need;

	if (pre < 0 || (uint64_t)pre > r->prev_len)
		rd_fail(r, "DELTA_BYTE_ARRAY prefix %lld longer than the previous value",
			(long long)pre);
	if (suf < 0 || (uint64_t)suf > (uint64_t)(r->vend - r->vp))
		rd_fail(r, "DELTA_BYTE_ARRAY suffix past the page");
	need = (size_t)pre + (size_t)suf;
	if (need > r->f->max_alloc)
		rd_fail(r, "value of %zu bytes is over the limit", need);
	if (need > r->cur_cap) {
		size_t cap = need < 64 ? 64 : need + need / 2;

		r->cur = xrealloc(r->cur, cap);
		r->cur_cap = cap;
	}
	if (pre)
		memcpy(r->cur, r->prev, (size_t)pre);
	if (suf)
		memcpy(r->cur + pre, r->vp, (size_t)suf);
	r->vp += suf;
	if (r->c->type == PQ_FIXED_LEN_BYTE_ARRAY && need != (size_t)r->c->type_length)
		rd_fail(r, "DELTA_BYTE_ARRAY value of %zu bytes in a column %d wide",
			need, r->c->type_length);
	/* swap, so that the value stays valid while the next one is built */
	{
		uint8_t *t = r->prev;
		size_t tc = r->prev_cap;

		r->prev = r->cur, r->prev_cap = r->cur_cap;
		r->cur = t, r->cur_cap = tc;
	}
	r->prev_len = need;
	v->s = r->prev;
	v->len = need;
}

static void read_value(struct pq_reader *r, struct pq_value *v)
{
	const struct pq_column *c = r->c;
	size_t w;

	switch (r->enc) {
	case ENC_PLAIN:
		if (c->type == PQ_BYTE_ARRAY) {
			uint32_t len;

			if (r->vend - r->vp < 4)
				rd_fail(r, "truncated value");
			len = le_get_u32(r->vp);
			if (len > (size_t)(r->vend - r->vp - 4))
				rd_fail(r, "value of %u bytes runs past its page", len);
			v->s = r->vp + 4;
			v->len = len;
			r->vp += 4 + (size_t)len;
		} else if (c->type == PQ_BOOLEAN) {
			if (r->bitpos >= (uint64_t)(r->vend - r->vstart) * 8)
				rd_fail(r, "truncated booleans");
			v->i = (r->vstart[r->bitpos >> 3] >> (r->bitpos & 7)) & 1;
			v->d = (double)v->i;
			r->bitpos++;
		} else {
			w = value_width(c);
			if ((size_t)(r->vend - r->vp) < w)
				rd_fail(r, "truncated value");
			set_fixed(r, v, r->vp);
			r->vp += w;
		}
		break;
	case ENC_PLAIN_DICT:
	case ENC_RLE_DICT: {
		uint32_t k = rle_next(r, &r->idx);

		if (k >= r->dict_n)
			rd_fail(r, "dictionary index %u out of range (%u entries)", k, r->dict_n);
		if (c->type == PQ_BYTE_ARRAY) {
			v->s = r->dict_data + r->dict_off[k];
			v->len = r->dict_len[k];
		} else
			set_fixed(r, v, r->dict_data + (size_t)k * value_width(c));
		break;
	}
	case ENC_RLE:
		v->i = rle_next(r, &r->idx) & 1;
		v->d = (double)v->i;
		break;
	case ENC_DELTA_BINARY: {
		int64_t x = delta_next(r, &r->d1);

		if (c->type == PQ_INT32)
			x = c->is_unsigned ? (int64_t)(uint32_t)x : (int32_t)x;
		v->i = x;
		v->d = c->is_unsigned ? (double)(uint64_t)x : (double)x;
		break;
	}
	case ENC_DELTA_LENGTH: {
		int64_t len = delta_next(r, &r->d1);

		/* lengths were checked against the page when it loaded */
		v->s = r->vp;
		v->len = (size_t)len;
		r->vp += len;
		break;
	}
	case ENC_DELTA_BYTES:
		delta_value(r, v);
		break;
	case ENC_BYTE_STREAM_SPLIT: {
		size_t k;

		w = value_width(c);
		if (r->vno >= r->nvals)
			rd_fail(r, "BYTE_STREAM_SPLIT runs out of values");
		for (k = 0; k < w; k++)
			r->scratch[k] = r->vstart[k * r->nvals + r->vno];
		set_fixed(r, v, r->scratch);
		break;
	}
	}
	r->vno++;
}

int pq_next(struct pq_reader *r, struct pq_value *v)
{
	if (setjmp(r->jb))
		return -1;
	if (r->err[0])
		return -1;
	if (!advance(r))
		return 0;
	r->page_left--;
	v->new_row = 1;
	if (r->c->max_rep > 0) {
		uint32_t rl = rle_next(r, &r->rep);

		if (rl > (uint32_t)r->c->max_rep)
			rd_fail(r, "repetition level %u over the maximum %d", rl, r->c->max_rep);
		if (!r->chunk_started && rl != 0)
			rd_fail(r, "repetition levels start with %u, not 0", rl);
		v->new_row = rl == 0;
	}
	r->chunk_started = 1;
	if (v->new_row) {
		if (r->rg_rows_left <= 0)
			rd_fail(r, "more rows than the row group holds");
		r->rg_rows_left--;
	}
	v->null = 0;
	v->s = NULL;
	v->len = 0;
	v->i = 0;
	v->d = 0;
	if (r->c->max_def > 0) {
		uint32_t d = rle_next(r, &r->def);

		if (d > (uint32_t)r->c->max_def)
			rd_fail(r, "definition level %u over the maximum %d", d, r->c->max_def);
		if (d < (uint32_t)r->c->max_def) {
			v->null = 1;
			return 1;
		}
	}
	read_value(r, v);
	return 1;
}

int pq_skip(struct pq_reader *r, uint64_t n)
{
	struct pq_value v;

	if (n > 0 && r->c->max_rep > 0) {
		snprintf(r->err, sizeof r->err,
			 "rows of nested column '%s' cannot be skipped", r->c->path);
		return -1;
	}
	while (n > 0) {
		int got;

		if (r->err[0])
			return -1;
		if ((r->rg < 0 || r->rg_rows_left == 0) && r->next_rg < r->f->nrg &&
		    (uint64_t)r->f->rgs[r->next_rg].num_rows <= n) {
			n -= (uint64_t)r->f->rgs[r->next_rg].num_rows;
			r->next_rg++;
			r->page_left = 0;
			r->pos = r->chunk_end;
			continue;
		}
		got = pq_next(r, &v);
		if (got <= 0)
			return got;
		n--;
	}
	return 0;
}

struct pq_reader *pq_reader_new(struct pq_file *f, int col)
{
	struct pq_reader *r;
	const struct pq_column *c;

	if (col < 0 || col >= f->ncols) {
		snprintf(f->err, sizeof f->err, "no such column");
		return NULL;
	}
	c = &f->cols[col];
	if (c->max_def > 255 || c->max_rep > 255) {
		snprintf(f->err, sizeof f->err, "column '%s' nested too deeply", c->path);
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->f = f;
	r->col = col;
	r->c = c;
	r->rg = -1;
	return r;
}

void pq_reader_free(struct pq_reader *r)
{
	if (!r)
		return;
	free(r->dict_buf);
	free(r->dict_off);
	free(r->dict_len);
	free(r->page_buf);
	free(r->cur);
	free(r->prev);
	free(r);
}
