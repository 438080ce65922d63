/* parquet: a reader for Apache Parquet files, written from the format
 * specification, one leaf column at a time: the text column of a web
 * corpus and the numeric columns beside it, or the leaves of lists, maps
 * and structs, flattened.
 *
 *   pq_open(f, path)          map a file and decode its footer; 0, or -1
 *                             with the reason in f->err (then pq_close)
 *   pq_open_mem(f, buf, n)    the same over a caller-owned buffer
 *   pq_close(f)               releases everything pq_open allocated
 *   pq_find_column(f, name)   leaf column index by dotted path (or by its
 *                             last part when that is unique); -1 if none
 *   pq_print_schema(f, fp)    columns, types, row groups and codecs
 *   pq_reader_new(f, col)     a cursor over one column; NULL with the
 *                             reason in f->err when it cannot be read
 *   pq_next(r, v)             the next value: 1, 0 at the end of the file,
 *                             -1 on bad data (reason: pq_error(r)).  In a
 *                             flat column one value is one row; in a
 *                             nested (repeated) column a row holds one or
 *                             more level entries, v->new_row marking the
 *                             first, and a value is null unless present
 *                             at the leaf (empty and null lists: null)
 *   pq_skip(r, n)             skip n rows (whole row groups unread): 0/-1;
 *                             flat columns only
 *   pq_reader_free(r)
 *
 * Pages: v1 and v2.  Encodings: PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY
 * (a chunk may fall back from dictionary to PLAIN), RLE (booleans),
 * DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY,
 * BYTE_STREAM_SPLIT.  Codecs: UNCOMPRESSED, SNAPPY, GZIP (multi-member),
 * BROTLI, ZSTD, LZ4_RAW and the older LZ4 (Hadoop framing or raw).  Page
 * CRC-32s are checked when present.  Every length, count, offset, bit
 * width and run from the file is checked before use; no buffer grows past
 * f->max_alloc.  Byte strings returned by pq_next point into the reader's
 * buffers (or the mapped file) and stay valid until the next call. */
#ifndef GPT_PARQUET_H
#define GPT_PARQUET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Physical types, as numbered by the format. */
enum pq_type {
	PQ_BOOLEAN = 0, PQ_INT32, PQ_INT64, PQ_INT96, PQ_FLOAT, PQ_DOUBLE,
	PQ_BYTE_ARRAY, PQ_FIXED_LEN_BYTE_ARRAY
};

struct pq_column {              /* a leaf of the schema */
	char *path;             /* dotted path, owned */
	int type;               /* enum pq_type */
	int type_length;        /* FIXED_LEN_BYTE_ARRAY width */
	int repetition;         /* 0 required, 1 optional, 2 repeated */
	int converted;          /* ConvertedType, -1 when absent */
	int logical;            /* LogicalType union field id, 0 when absent */
	int is_unsigned;        /* an unsigned integer annotation */
	int max_def, max_rep;
};

struct pq_chunk {               /* one column in one row group */
	int type, codec, external;
	int64_t num_values, start, size, uncompressed;
};

struct pq_rowgroup {
	int64_t num_rows;
	struct pq_chunk *chunks;    /* ncols of them, owned */
};

struct pq_file {
	const uint8_t *data;        /* whole file (mapped or caller's) */
	size_t size;
	int mapped;
	int64_t num_rows;
	int ncols, nrg;
	struct pq_column *cols;     /* owned */
	struct pq_rowgroup *rgs;    /* owned */
	char *created_by;           /* owned, may be NULL */
	int old_writer;             /* chunk sizes may be short (PARQUET-816) */
	size_t max_alloc;           /* cap on any one buffer (default 1 GiB) */
	char err[256];
};

int pq_open(struct pq_file *f, const char *path);
int pq_open_mem(struct pq_file *f, const void *buf, size_t len);
void pq_close(struct pq_file *f);
int pq_find_column(const struct pq_file *f, const char *name);
void pq_print_schema(const struct pq_file *f, FILE *fp);
/* Codec name by number ("SNAPPY"), or "UNKNOWN". */
const char *pq_codec_name(int codec);

struct pq_value {
	int null;
	int new_row;                /* the first value of a row (always, when flat) */
	const uint8_t *s;           /* BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY / INT96 */
	size_t len;
	int64_t i;                  /* BOOLEAN, INT32, INT64 */
	double d;                   /* FLOAT, DOUBLE; also ints, converted */
};

struct pq_reader;

struct pq_reader *pq_reader_new(struct pq_file *f, int col);
int pq_next(struct pq_reader *r, struct pq_value *v);
int pq_skip(struct pq_reader *r, uint64_t n);
const char *pq_error(const struct pq_reader *r);
void pq_reader_free(struct pq_reader *r);

#endif
