/* corpus: every input gpt-fetch reads becomes NUL-ended documents here.
 * An input is recognised by its first bytes, not its name: parquet,
 * compressed data (gzip through zlib, the others through libarchive),
 * whose content is recognised again, an archive (libarchive, each member
 * recognised again in turn), JSONL, else plain text.  A compressed stream
 * is read to its end, so its checksums are checked, unless -n or --rows
 * stopped the reading. */
#include "corpus.h"
#include "err.h"
#include "json.h"
#include "parquet.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define STREAM_BUF (256u << 10)
#define MAX_DEPTH 8                     /* containers inside containers */
#define MAX_MEMBER ((size_t)4 << 30)    /* parquet read into memory */
#define MAX_LINE ((size_t)1 << 30)

struct ctx {
	const struct corpus_opts *o;
	struct out *out;
	struct corpus_stats *st;
	uint64_t row;               /* rows of this input seen so far */
	int done;                   /* the limit is reached */
	/* one JSONL input: lines read, and lines holding the field and the
	 * --where field; the first line's keys, for the message */
	uint64_t jl_rows, jl_field, jl_where;
	char jl_keys[256];
};

/* A byte source with a buffer, so its start can be looked at first. */
struct stream {
	ssize_t (*read)(struct stream *s, void *buf, size_t n);
	int fd;
	struct archive *a;
	const char *what;           /* what a's data is ("xz data"); NULL: an archive */
	struct gz *gz;              /* gz_read's state */
	const char *name;           /* for messages */
	uint8_t *buf;
	size_t len, pos;
};

/* gzip, read through zlib: libarchive's gzip reader does not check the
 * CRC-32 and length trailer of a member; zlib does. */
struct gz {
	z_stream z;
	struct stream *up;          /* the compressed bytes */
	int between;                /* a member ended; another may follow */
	int end;                    /* the last member ended with the input */
};

static ssize_t fd_read(struct stream *s, void *buf, size_t n)
{
	for (;;) {
		ssize_t got = read(s->fd, buf, n);

		if (got >= 0)
			return got;
		if (errno != EINTR)
			die_errno("cannot read '%s'", s->name);
	}
}

/* libarchive's errors for a compressed stream; what it says of a stream
 * that stops short varies by decoder. */
static void die_filter(struct archive *a, const char *what, const char *name)
{
	const char *e = archive_error_string(a);

	if (e && (strstr(e, "runcated") || strstr(e, "No progress is possible")))
		die("truncated %s: '%s'", what, name);
	die("corrupt %s (%s): '%s'", what, e ? e : "unreadable", name);
}

static ssize_t member_read(struct stream *s, void *buf, size_t n)
{
	la_ssize_t got = archive_read_data(s->a, buf, n);

	if (got < 0 && s->what)
		die_filter(s->a, s->what, s->name);
	if (got < 0)
		die("bad archive data (%s): '%s'", archive_error_string(s->a), s->name);
	return got;
}

/* Fills the buffer until it holds want bytes or the input ends. */
static void stream_peek(struct stream *s, size_t want)
{
	if (s->pos > 0 && s->pos == s->len)
		s->pos = s->len = 0;
	while (s->len < want && s->len < STREAM_BUF) {
		ssize_t got = s->read(s, s->buf + s->len, STREAM_BUF - s->len);

		if (got <= 0)
			break;
		s->len += (size_t)got;
	}
}

/* Next bytes: returns a pointer to at most n (>0 unless at end). */
static size_t stream_get(struct stream *s, const uint8_t **p)
{
	size_t n;

	if (s->pos == s->len) {
		ssize_t got;

		s->pos = s->len = 0;
		got = s->read(s, s->buf, STREAM_BUF);
		if (got <= 0)
			return 0;
		s->len = (size_t)got;
	}
	*p = s->buf + s->pos;
	n = s->len - s->pos;
	s->pos = s->len;
	return n;
}

/* Decompressed bytes of a gzip stream: every member's CRC-32 and length
 * (ISIZE) are checked as it ends; members may follow one another, and
 * zero bytes after the last are padding. */
static ssize_t gz_read(struct stream *s, void *buf, size_t n)
{
	struct gz *g = s->gz;
	const uint8_t *p;
	size_t got;
	int rc;

	if (g->end || n == 0)
		return 0;
	g->z.next_out = buf;
	g->z.avail_out = n > UINT_MAX ? UINT_MAX : (uInt)n;
	while (g->z.next_out == (Bytef *)buf) {
		if (g->z.avail_in == 0) {
			got = stream_get(g->up, &p);
			if (got == 0) {
				if (g->between) {
					g->end = 1;
					break;
				}
				die("truncated gzip data: '%s'", s->name);
			}
			g->z.next_in = (Bytef *)p;
			g->z.avail_in = (uInt)got;
		}
		if (g->between) {
			while (g->z.avail_in && *g->z.next_in == 0)
				g->z.next_in++, g->z.avail_in--;
			if (g->z.avail_in == 0)
				continue;
			if (*g->z.next_in != 0x1f)
				die("data after the end of the gzip data: '%s'", s->name);
			if (inflateReset(&g->z) != Z_OK)
				die("zlib cannot restart: '%s'", s->name);
			g->between = 0;
		}
		rc = inflate(&g->z, Z_NO_FLUSH);
		if (rc == Z_STREAM_END)
			g->between = 1;
		else if (rc == Z_MEM_ERROR)
			die("out of memory");
		else if (rc == Z_DATA_ERROR && g->z.msg &&
			 strcmp(g->z.msg, "incorrect data check") == 0)
			die("corrupt gzip data (CRC-32 mismatch): '%s'", s->name);
		else if (rc == Z_DATA_ERROR && g->z.msg &&
			 strcmp(g->z.msg, "incorrect length check") == 0)
			die("corrupt gzip data (length mismatch): '%s'", s->name);
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			die("corrupt gzip data (%s): '%s'", g->z.msg ? g->z.msg : "zlib error",
			    s->name);
	}
	return (ssize_t)((Bytef *)g->z.next_out - (Bytef *)buf);
}

/* ------------------------------------------------------------ selection */

static int ctx_row(struct ctx *c)
{
	uint64_t r = c->row++;

	c->st->rows++;
	return r >= c->o->row_start && r < c->o->row_end;
}

static void ctx_emit(struct ctx *c, const void *p, size_t n)
{
	out_write(c->out, p, n);
	out_putc(c->out, 0);
	c->st->written++;
	c->st->bytes += n;
	if (c->o->limit && c->st->written >= c->o->limit)
		c->done = 1;
	if (c->o->progress && (c->st->written & 255) == 0)
		progress_update(c->o->progress, c->st->bytes);
}

static int where_ok(const struct corpus_opts *o, double x)
{
	switch (o->where_op) {
	case WHERE_GE: return x >= o->where_value;
	case WHERE_LE: return x <= o->where_value;
	case WHERE_GT: return x > o->where_value;
	case WHERE_LT: return x < o->where_value;
	case WHERE_EQ: return x == o->where_value;
	case WHERE_NE: return x != o->where_value;
	default: return 1;
	}
}

int corpus_parse_where(const char *expr, struct corpus_opts *o)
{
	static const struct { const char *s; enum corpus_op op; } ops[] = {
		{ ">=", WHERE_GE }, { "<=", WHERE_LE }, { "==", WHERE_EQ },
		{ "!=", WHERE_NE }, { ">", WHERE_GT }, { "<", WHERE_LT },
		{ "=", WHERE_EQ },
	};
	size_t n = strcspn(expr, "<>=!"), k;
	const char *rest;
	char *end;

	while (n > 0 && isspace((unsigned char)expr[n - 1]))
		n--;
	if (n == 0 || n >= sizeof o->where_name)
		return -1;
	memcpy(o->where_name, expr, n);
	o->where_name[n] = 0;
	rest = expr + strcspn(expr, "<>=!");
	for (k = 0; k < sizeof ops / sizeof *ops; k++)
		if (strncmp(rest, ops[k].s, strlen(ops[k].s)) == 0)
			break;
	if (k == sizeof ops / sizeof *ops)
		return -1;
	rest += strlen(ops[k].s);
	errno = 0;
	o->where_value = strtod(rest, &end);
	if (end == rest || errno || !isfinite(o->where_value))
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -1;
	o->where_op = ops[k].op;
	return 0;
}

/* -------------------------------------------------------------- parquet */

static void die_no_column(const struct pq_file *f, const char *what,
			   const char *col, const char *name)
{
	char list[512];
	size_t n = 0;
	int i;

	list[0] = 0;
	for (i = 0; i < f->ncols && n + 4 < sizeof list; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
				      i ? ", " : "", f->cols[i].path);
	if (n >= sizeof list)
		memcpy(list + sizeof list - 4, "...", 4);
	die("no %s column '%s' (it has %s): '%s'", what, col, f->ncols ? list : "none", name);
}

static void print_number(struct ctx *c, const struct pq_column *col,
			 const struct pq_value *v)
{
	char tmp[40];
	int n, prec;

	switch (col->type) {
	case PQ_BOOLEAN:
		n = snprintf(tmp, sizeof tmp, "%s", v->i ? "true" : "false");
		break;
	case PQ_INT32:
	case PQ_INT64:
		n = col->is_unsigned ? snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v->i)
				     : snprintf(tmp, sizeof tmp, "%lld", (long long)v->i);
		break;
	case PQ_FLOAT:
		/* the shortest form that reads back as the same value */
		for (prec = 6; prec < 9; prec++) {
			n = snprintf(tmp, sizeof tmp, "%.*g", prec, v->d);
			if ((float)strtod(tmp, NULL) == (float)v->d)
				break;
		}
		n = snprintf(tmp, sizeof tmp, "%.*g", prec, v->d);
		break;
	default:
		for (prec = 15; prec < 17; prec++) {
			n = snprintf(tmp, sizeof tmp, "%.*g", prec, v->d);
			if (strtod(tmp, NULL) == v->d)
				break;
		}
		n = snprintf(tmp, sizeof tmp, "%.*g", prec, v->d);
	}
	ctx_emit(c, tmp, (size_t)n);
}

static void read_parquet(struct ctx *c, struct pq_file *f, const char *name)
{
	const char *colname = c->o->column ? c->o->column : "text";
	struct pq_reader *r, *w = NULL;
	const struct pq_column *col;
	struct pq_value v, wv;
	int ci, wi, got, in_range = 0;

	ci = pq_find_column(f, colname);
	if (ci < 0)
		die_no_column(f, "parquet", colname, name);
	col = &f->cols[ci];
	if (col->type == PQ_INT96)
		die("column '%s' holds INT96 values, which have no text form: '%s'", colname, name);
	if (!(r = pq_reader_new(f, ci)))
		die("%s: '%s'", f->err, name);
	if (col->max_rep > 0 && (c->o->where_op || c->o->row_start ||
				 c->o->row_end != UINT64_MAX))
		die("--rows and --where need a flat column; '%s' is nested: '%s'",
		    colname, name);
	if (c->o->where_op) {
		wi = pq_find_column(f, c->o->where_name);
		if (wi < 0)
			die_no_column(f, "--where", c->o->where_name, name);
		if (f->cols[wi].type == PQ_BYTE_ARRAY || f->cols[wi].type == PQ_FIXED_LEN_BYTE_ARRAY ||
		    f->cols[wi].type == PQ_INT96)
			die("--where column '%s' is not numeric: '%s'", c->o->where_name, name);
		if (f->cols[wi].max_rep > 0)
			die("--where column '%s' is nested: '%s'", c->o->where_name, name);
		if (!(w = pq_reader_new(f, wi)))
			die("%s: '%s'", f->err, name);
	}
	if (c->o->row_start) {
		uint64_t skip = c->o->row_start;

		if (pq_skip(r, skip) < 0)
			die("%s: '%s'", pq_error(r), name);
		if (w && pq_skip(w, skip) < 0)
			die("%s: '%s'", pq_error(w), name);
		skip = skip < (uint64_t)f->num_rows ? skip : (uint64_t)f->num_rows;
		c->row += skip;
		c->st->rows += skip;
	}
	while (!c->done && c->row < c->o->row_end) {
		got = pq_next(r, &v);
		if (got < 0)
			die("%s: '%s'", pq_error(r), name);
		if (got == 0)
			break;
		if (w) {
			got = pq_next(w, &wv);
			if (got < 0)
				die("%s: '%s'", pq_error(w), name);
			if (got == 0)
				die("column '%s' ends before column '%s': '%s'",
				    c->o->where_name, colname, name);
		}
		if (v.new_row)
			in_range = ctx_row(c);
		if (!in_range || v.null)
			continue;
		if (w && (wv.null || !where_ok(c->o, wv.d)))
			continue;
		if (col->type == PQ_BYTE_ARRAY || col->type == PQ_FIXED_LEN_BYTE_ARRAY)
			ctx_emit(c, v.s, v.len);
		else
			print_number(c, col, &v);
	}
	pq_reader_free(r);
	pq_reader_free(w);
}

static void parquet_path(struct ctx *c, const char *path, const char *name)
{
	struct pq_file f;

	if (pq_open(&f, path) < 0)
		die("%s: '%s'", f.err, name);
	read_parquet(c, &f, name);
	pq_close(&f);
}

static void parquet_stream(struct ctx *c, struct stream *s)
{
	size_t cap = s->len - s->pos + STREAM_BUF, n = 0;
	uint8_t *buf = xmalloc(cap);
	const uint8_t *p;
	size_t got;
	struct pq_file f;

	while ((got = stream_get(s, &p)) > 0) {
		if (n + got > MAX_MEMBER)
			die("parquet data over %zu bytes in a stream: '%s'", MAX_MEMBER, s->name);
		if (n + got > cap) {
			cap = (n + got) * 2;
			buf = xrealloc(buf, cap);
		}
		memcpy(buf + n, p, got);
		n += got;
	}
	if (pq_open_mem(&f, buf, n) < 0)
		die("%s: '%s'", f.err, s->name);
	read_parquet(c, &f, s->name);
	pq_close(&f);
	free(buf);
}

/* ----------------------------------------------------------- JSONL, text */

static void jsonl_line(struct ctx *c, const char *line, size_t n, uint64_t lineno,
		       const char *name)
{
	const char *field = c->o->field ? c->o->field : "text";
	const struct json *v;
	struct json j;
	char why[128];
	size_t k;

	if (lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3, n -= 3;      /* a byte-order mark */
	for (k = 0; k < n && isspace((unsigned char)line[k]); k++)
		;
	if (k == n)
		return;         /* blank lines are not rows */
	if (!ctx_row(c))
		return;
	if (json_parse(line, n, &j, why, sizeof why) < 0)
		die("bad JSON on line %llu (%s): '%s'", (unsigned long long)lineno, why, name);
	if (j.type != JSON_OBJ)
		die("line %llu is not a JSON object: '%s'", (unsigned long long)lineno, name);
	if (c->jl_rows++ == 0) {
		size_t at = 0, i;

		for (i = 0; i < j.n && at + 4 < sizeof c->jl_keys; i++)
			at += (size_t)snprintf(c->jl_keys + at, sizeof c->jl_keys - at, "%s%s",
					       i ? ", " : "", j.keys[i]);
		if (at >= sizeof c->jl_keys)
			memcpy(c->jl_keys + sizeof c->jl_keys - 4, "...", 4);
		if (j.n == 0)
			snprintf(c->jl_keys, sizeof c->jl_keys, "none");
	}
	v = json_get(&j, field);
	c->jl_field += v != NULL;
	if (c->o->where_op) {
		const struct json *w = json_get(&j, c->o->where_name);

		c->jl_where += w != NULL;
		if (w && w->type != JSON_NUM && w->type != JSON_NULL)
			die("--where field '%s' is not a number on line %llu: '%s'",
			    c->o->where_name, (unsigned long long)lineno, name);
		if (!w || w->type != JSON_NUM || !where_ok(c->o, w->num)) {
			json_free(&j);
			return;
		}
	}
	if (v && v->type == JSON_STR)
		ctx_emit(c, v->str, v->len);
	else if (v && v->type != JSON_NULL)
		die("field '%s' is not a string on line %llu: '%s'", field,
		    (unsigned long long)lineno, name);
	json_free(&j);
}

static void read_jsonl(struct ctx *c, struct stream *s)
{
	char *line = NULL;
	size_t len = 0, cap = 0, got;
	uint64_t lineno = 0;
	const uint8_t *p;

	c->jl_rows = c->jl_field = c->jl_where = 0;
	while (!c->done && c->row < c->o->row_end && (got = stream_get(s, &p)) > 0) {
		const uint8_t *end = p + got;

		while (p < end && !c->done) {
			const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
			size_t part = (size_t)((nl ? nl : end) - p);

			if (len == 0 && nl) {
				/* whole line in the buffer: no copy */
				jsonl_line(c, (const char *)p, part, ++lineno, s->name);
				p = nl + 1;
				continue;
			}
			if (len + part > MAX_LINE)
				die("line %llu longer than %zu bytes: '%s'",
				    (unsigned long long)lineno + 1, MAX_LINE, s->name);
			if (len + part > cap) {
				cap = (len + part) * 2;
				line = xrealloc(line, cap);
			}
			memcpy(line + len, p, part);
			len += part;
			p += part;
			if (nl) {
				jsonl_line(c, line, len, ++lineno, s->name);
				len = 0;
				p++;
			}
		}
	}
	if (len && !c->done)
		jsonl_line(c, line, len, ++lineno, s->name);
	free(line);
	/* as parquet names a missing column: a field no line holds is a
	 * mistake, not an input without documents */
	if (c->jl_rows && !c->jl_field)
		die("no field '%s' on any of the %llu lines read (the first has %s): '%s'",
		    c->o->field ? c->o->field : "text", (unsigned long long)c->jl_rows,
		    c->jl_keys, s->name);
	if (c->jl_rows && c->o->where_op && !c->jl_where)
		die("no --where field '%s' on any of the %llu lines read (the first has %s): '%s'",
		    c->o->where_name, (unsigned long long)c->jl_rows, c->jl_keys, s->name);
}

static void read_text(struct ctx *c, struct stream *s)
{
	const uint8_t *p;
	size_t got, total = 0;

	if (s->pos == s->len)
		stream_peek(s, 1);
	if (s->pos == s->len)
		return;         /* an empty file holds no document */
	if (!ctx_row(c))
		return;
	while ((got = stream_get(s, &p)) > 0) {
		out_write(c->out, p, got);
		total += got;
	}
	out_putc(c->out, 0);
	c->st->written++;
	c->st->bytes += total;
	if (c->o->limit && c->st->written >= c->o->limit)
		c->done = 1;
}

/* ------------------------------------------------------------ recognise */

enum kind { K_TEXT, K_JSONL, K_PARQUET, K_GZIP, K_COMPRESSED, K_ARCHIVE };

static const struct { const char *magic; size_t len; const char *what; } compressed[] = {
	{ "BZh", 3, "bzip2 data" }, { "\xfd" "7zXZ\0", 6, "xz data" },
	{ "\x28\xb5\x2f\xfd", 4, "zstd data" }, { "\x04\x22\x4d\x18", 4, "lz4 data" },
	{ "\x5d\0\0", 3, "lzma data" },
};

/* What compressed data at p is, for messages ("xz data"); NULL if none. */
static const char *compressed_what(const uint8_t *p, size_t n)
{
	size_t k;

	for (k = 0; k < sizeof compressed / sizeof *compressed; k++)
		if (n >= compressed[k].len && memcmp(p, compressed[k].magic, compressed[k].len) == 0)
			return compressed[k].what;
	return NULL;
}

static enum kind recognise(const uint8_t *p, size_t n)
{
	static const struct { const char *magic; size_t len; } arch[] = {
		{ "PK\x03\x04", 4 }, { "PK\x05\x06", 4 },
		{ "7z\xbc\xaf\x27\x1c", 6 }, { "070707", 6 }, { "070701", 6 },
		{ "070702", 6 },
	};
	size_t k;

	if (n >= 4 && memcmp(p, "PAR1", 4) == 0)
		return K_PARQUET;
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return K_GZIP;
	if (compressed_what(p, n))
		return K_COMPRESSED;
	for (k = 0; k < sizeof arch / sizeof *arch; k++)
		if (n >= arch[k].len && memcmp(p, arch[k].magic, arch[k].len) == 0)
			return K_ARCHIVE;
	if (n >= 262 && memcmp(p + 257, "ustar", 5) == 0)
		return K_ARCHIVE;
	k = 0;
	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		k = 3;
	while (k < n && isspace(p[k]))
		k++;
	if (k < n && p[k] == '{')
		return K_JSONL;
	return K_TEXT;
}

static void read_stream(struct ctx *c, struct stream *s, int depth);

static la_ssize_t la_read(struct archive *a, void *cd, const void **buf)
{
	struct stream *s = cd;
	const uint8_t *p = NULL;
	size_t n;

	(void)a;
	n = stream_get(s, &p);
	*buf = p;
	return (la_ssize_t)n;
}

static void read_archive(struct ctx *c, struct stream *s, int depth)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	uint8_t *buf = xmalloc(STREAM_BUF);
	size_t nlen = strlen(s->name);
	int rc;

	if (depth >= MAX_DEPTH)
		die("archives nested more than %d deep: '%s'", MAX_DEPTH, s->name);
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_format_zip(a);
	archive_read_support_format_7zip(a);
	archive_read_support_format_cpio(a);
	archive_read_support_format_raw(a);
	if (archive_read_open(a, s, NULL, la_read, NULL) != ARCHIVE_OK)
		die("cannot open archive (%s): '%s'", archive_error_string(a), s->name);
	while (!c->done && c->row < c->o->row_end) {
		struct stream m = { 0 };
		const char *path;
		char *name;

		rc = archive_read_next_header(a, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc < ARCHIVE_WARN)
			die("bad archive (%s): '%s'", archive_error_string(a), s->name);
		if (archive_entry_filetype(e) != AE_IFREG &&
		    archive_format(a) != ARCHIVE_FORMAT_RAW)
			continue;
		path = archive_entry_pathname(e);
		if (!path)
			path = "?";
		if (archive_format(a) == ARCHIVE_FORMAT_RAW) {
			name = xstrdup(s->name);
		} else {
			name = xmalloc(nlen + strlen(path) + 2);
			memcpy(name, s->name, nlen);
			name[nlen] = ':';
			memcpy(name + nlen + 1, path, strlen(path) + 1);
		}
		m.read = member_read;
		m.a = a;
		m.name = name;
		m.buf = buf;
		read_stream(c, &m, depth + 1);
		free(name);
	}
	archive_read_free(a);
	free(buf);
}

/* Reads what is left of a decompressed stream once its content is read,
 * so that the checksums at its end are checked too (a tar ends before its
 * padding does); not when -n or --rows ended the reading. */
static void drain(struct ctx *c, struct stream *m)
{
	const uint8_t *p;

	if (c->done || c->row >= c->o->row_end)
		return;
	while (stream_get(m, &p) > 0)
		;
}

static void read_gzip(struct ctx *c, struct stream *s, int depth)
{
	struct gz g;
	struct stream m = { 0 };

	if (depth >= MAX_DEPTH)
		die("archives nested more than %d deep: '%s'", MAX_DEPTH, s->name);
	memset(&g, 0, sizeof g);
	if (inflateInit2(&g.z, 15 + 16) != Z_OK)    /* gzip only, checked */
		die("out of memory");
	g.up = s;
	if (s->pos < s->len) {          /* the bytes already looked at */
		g.z.next_in = s->buf + s->pos;
		g.z.avail_in = (uInt)(s->len - s->pos);
		s->pos = s->len;
	}
	m.read = gz_read;
	m.gz = &g;
	m.name = s->name;
	m.buf = xmalloc(STREAM_BUF);
	read_stream(c, &m, depth + 1);
	drain(c, &m);
	inflateEnd(&g.z);
	free(m.buf);
}

/* bzip2, xz, zstd, lz4 and lzma through libarchive's decoders, which
 * check what checksums each format carries; the content is recognised
 * again. */
static void read_compressed(struct ctx *c, struct stream *s, int depth)
{
	struct archive *a;
	struct archive_entry *e;
	struct stream m = { 0 };
	const char *what = compressed_what(s->buf + s->pos, s->len - s->pos);

	if (depth >= MAX_DEPTH)
		die("archives nested more than %d deep: '%s'", MAX_DEPTH, s->name);
	a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open(a, s, NULL, la_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		die_filter(a, what, s->name);
	m.read = member_read;
	m.a = a;
	m.what = what;
	m.name = s->name;
	m.buf = xmalloc(STREAM_BUF);
	read_stream(c, &m, depth + 1);
	drain(c, &m);
	archive_read_free(a);
	free(m.buf);
}

/* Options that name what an input of this kind does not have. */
static void check_options(const struct ctx *c, enum kind k, const char *name)
{
	if (c->o->column && k == K_JSONL)
		die("--column is for parquet input, and this is JSONL (use --field): '%s'", name);
	if (c->o->column && k == K_TEXT)
		die("--column is for parquet input, and this is text: '%s'", name);
	if (c->o->field && k == K_PARQUET)
		die("--field is for JSONL input, and this is parquet (use --column): '%s'", name);
	if (c->o->field && k == K_TEXT)
		die("--field is for JSONL input, and this is text: '%s'", name);
	if (c->o->where_op && k == K_TEXT)
		die("--where needs parquet or JSONL input, and this is text: '%s'", name);
}

static void read_stream(struct ctx *c, struct stream *s, int depth)
{
	enum kind k;

	stream_peek(s, 512);
	k = recognise(s->buf + s->pos, s->len - s->pos);
	if (k == K_TEXT && s->pos == s->len)
		return;         /* an empty file holds no document */
	check_options(c, k, s->name);
	switch (k) {
	case K_PARQUET: parquet_stream(c, s); break;
	case K_GZIP: read_gzip(c, s, depth); break;
	case K_COMPRESSED: read_compressed(c, s, depth); break;
	case K_ARCHIVE: read_archive(c, s, depth); break;
	case K_JSONL: read_jsonl(c, s); break;
	default: read_text(c, s);
	}
}

int corpus_read(const char *path, const struct corpus_opts *o, struct out *out,
		struct corpus_stats *st)
{
	struct ctx c = { .o = o, .out = out, .st = st };
	struct stream s = { 0 };
	const char *name = o->label ? o->label : path;
	int is_stdin = strcmp(path, "-") == 0;

	if (o->limit && st->written >= o->limit)
		return 1;
	s.fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (s.fd < 0)
		die_errno("cannot open '%s'", name);
	s.read = fd_read;
	s.name = name;
	s.buf = xmalloc(STREAM_BUF);
	stream_peek(&s, 512);
	if (!is_stdin && recognise(s.buf, s.len) == K_PARQUET) {
		close(s.fd);
		s.fd = -1;
		check_options(&c, K_PARQUET, name);
		parquet_path(&c, path, name);
	} else
		read_stream(&c, &s, 0);
	if (s.fd > 0)
		close(s.fd);
	free(s.buf);
	return c.done;
}

void corpus_schema(const char *path, FILE *fp)
{
	struct pq_file f;

	if (pq_open(&f, path) < 0)
		die("%s: '%s'", f.err, path);
	pq_print_schema(&f, fp);
	pq_close(&f);
}
