/* corpus: corpora to documents.  Reads parquet, JSONL, plain text and
 * archives or compressed streams of these (tar, zip, 7z, cpio, and xz,
 * bzip2, zstd, lz4, lzma through libarchive; gzip through zlib, which
 * checks its CRC-32 and length), recognised by their content, and writes
 * each document followed by one NUL byte.  Compressed streams are read to
 * their end, so every checksum they carry is checked, unless the limit
 * or the end of --rows stops the reading.
 *
 *   corpus_parse_where(expr, o)   "NAME OP NUMBER" (OP: >= <= > < == = !=)
 *                                 into o; -1 when malformed
 *   corpus_read(path, o, out, st) one input ("-" is stdin); dies with one
 *                                 clear line naming the input on bad data;
 *                                 returns 1 once st->written reaches
 *                                 o->limit (stop reading more inputs), else 0
 *   corpus_schema(path, fp)       print a parquet file's schema; dies when
 *                                 the file is not parquet
 *
 * Rows: a parquet row, a JSONL line (blank lines excepted), a text file.
 * Null or missing values produce no document but count as rows.  --rows
 * (row_start, row_end) applies to each input; limit to all of them.
 * Options that do not fit an input are errors: column on JSONL or text,
 * field on parquet or text, where on text, and a field or where name that
 * no line read of a JSONL input holds. */
#ifndef GPT_CORPUS_H
#define GPT_CORPUS_H

#include "io.h"
#include "progress.h"

#include <stdint.h>
#include <stdio.h>

enum corpus_op { WHERE_NONE = 0, WHERE_GE, WHERE_LE, WHERE_GT, WHERE_LT, WHERE_EQ, WHERE_NE };

struct corpus_opts {
	const char *column;         /* parquet column; NULL: "text" */
	const char *field;          /* JSONL field; NULL: "text" */
	uint64_t row_start, row_end;    /* rows [start, end) of each input */
	uint64_t limit;             /* most documents in all; 0: no limit */
	char where_name[128];
	enum corpus_op where_op;
	double where_value;
	const char *label;          /* name for messages; NULL: the path */
	struct progress *progress;  /* updated with bytes written; may be NULL */
};

struct corpus_stats {
	uint64_t written;           /* documents written */
	uint64_t bytes;             /* their bytes, NULs excluded */
	uint64_t rows;              /* rows seen */
};

int corpus_parse_where(const char *expr, struct corpus_opts *o);
int corpus_read(const char *path, const struct corpus_opts *o, struct out *out,
		struct corpus_stats *st);
void corpus_schema(const char *path, FILE *fp);

#endif
