/* tokenize: chunked, multi-threaded encoding whose output does not depend
 * on how the input arrives.  Reading and writing are serial; the chunks of
 * one batch are encoded in parallel and written back in order. */
#include "le.h"
#include "tokenize.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK (1u << 20)

struct bytes {
	unsigned char *p;
	size_t len, cap;
};

static inline void bytes_reserve(struct bytes *b, size_t more)
{
	if (b->len + more > b->cap) {
		b->cap = (b->len + more) * 2 + 4096;
		b->p = xrealloc(b->p, b->cap);
	}
}

struct job {
	size_t start, len;
	int line_start;         /* no token written yet on the current line */
	struct bytes out;
	uint64_t *seg;          /* -c -z: tokens per NUL-separated segment */
	size_t nseg, segcap;
	uint64_t tokens;
	uint32_t *ids;          /* scratch for one piece */
	size_t idcap;
};

struct emitter {
	struct bytes *out;
	enum tok_format fmt;
	int count_only;
	int line_start;
	uint64_t n;
};

/* Appends ids[0..m) in the output form: one reservation and one switch
 * per batch (vocab_encode_text's, thousands of ids), not per id. */
static inline void emit_ids(struct emitter *e, const uint32_t *ids, size_t m)
{
	size_t k;
	unsigned char *p;

	e->n += m;
	if (e->count_only || m == 0)
		return;
	if (e->fmt == FMT_U32) {
		bytes_reserve(e->out, 4 * m);
		p = e->out->p + e->out->len;
		for (k = 0; k < m; k++)
			le_put_u32(p + 4 * k, ids[k]);
		e->out->len += 4 * m;
	} else if (e->fmt == FMT_U16) {
		bytes_reserve(e->out, 2 * m);
		p = e->out->p + e->out->len;
		for (k = 0; k < m; k++)
			le_put_u16(p + 2 * k, (uint16_t)ids[k]);
		e->out->len += 2 * m;
	} else {
		bytes_reserve(e->out, 11 * m);
		p = e->out->p + e->out->len;
		for (k = 0; k < m; k++) {
			char tmp[10];
			int i = 10;
			uint32_t x = ids[k];

			if (!e->line_start)
				*p++ = ' ';
			do {
				tmp[--i] = (char)('0' + x % 10);
				x /= 10;
			} while (x);
			memcpy(p, tmp + i, (size_t)(10 - i));
			p += 10 - i;
			e->line_start = 0;
		}
		e->out->len = (size_t)(p - e->out->p);
	}
}

static inline void emit(struct emitter *e, uint32_t id)
{
	emit_ids(e, &id, 1);
}

static void emit_newline(struct emitter *e)
{
	if (e->count_only || e->fmt != FMT_TEXT)
		return;
	bytes_reserve(e->out, 1);
	e->out->p[e->out->len++] = '\n';
	e->line_start = 1;
}

/* Earliest special token in s[0..n): its index, or -1. */
static int find_special(const struct vocab *v, const unsigned char *s, size_t n,
			size_t *at)
{
	int i, best = -1;
	size_t bpos = n;

	for (i = 0; i < v->n_special; i++) {
		const unsigned char *p = memmem(s, bpos, v->special[i].text,
						v->special[i].len);

		if (p && (size_t)(p - s) < bpos) {
			bpos = (size_t)(p - s);
			best = i;
		}
	}
	*at = bpos;
	return best;
}

/* Pieces of one ordinary text (no specials, no document ends). */
static void encode_plain(const struct vocab *v, const unsigned char *s, size_t n,
			 struct emitter *e, uint32_t **ids, size_t *idcap)
{
	size_t pos = 0;

	while (pos < n)
		emit_ids(e, *ids, vocab_encode_text(v, s, n, &pos, ids, idcap));
}

static void encode_segment(const struct vocab *v, const unsigned char *s,
			   size_t n, int allow_special, struct emitter *e,
			   uint32_t **ids, size_t *idcap)
{
	while (allow_special && n) {
		size_t at;
		int sp = find_special(v, s, n, &at);

		if (sp < 0)
			break;
		encode_plain(v, s, at, e, ids, idcap);
		emit(e, v->special[sp].id);
		s += at + v->special[sp].len;
		n -= at + v->special[sp].len;
	}
	encode_plain(v, s, n, e, ids, idcap);
}

static void job_seg_push(struct job *j, uint64_t c)
{
	if (j->nseg == j->segcap) {
		j->segcap = j->segcap ? j->segcap * 2 : 16;
		j->seg = xrealloc(j->seg, xmul(j->segcap, sizeof *j->seg));
	}
	j->seg[j->nseg++] = c;
}

static void job_run(const struct vocab *v, const unsigned char *buf,
		    const struct tokenize_opts *opt, struct job *j)
{
	const unsigned char *s = buf + j->start;
	size_t n = j->len;
	struct emitter e = { &j->out, opt->fmt, opt->count, j->line_start, 0 };

	j->out.len = 0;
	j->nseg = 0;
	if (!opt->zero) {
		encode_segment(v, s, n, opt->allow_special, &e, &j->ids, &j->idcap);
	} else {
		for (;;) {
			const unsigned char *nul = memchr(s, 0, n);
			size_t len = nul ? (size_t)(nul - s) : n;
			uint64_t before = e.n;

			encode_segment(v, s, len, opt->allow_special, &e,
				       &j->ids, &j->idcap);
			if (opt->count)
				job_seg_push(j, e.n - before);
			if (!nul)
				break;
			emit(&e, v->eot);
			if (opt->count)
				e.n--;  /* counts are of the document's text */
			emit_newline(&e);
			s = nul + 1;
			n -= len + 1;
		}
	}
	j->tokens = e.n;
	j->line_start = e.line_start;  /* now: state at the job's end */
}

size_t tokenize_text(const struct vocab *v, const unsigned char *s, size_t n,
		     int allow_special, uint32_t **ids)
{
	struct bytes b = { 0 };
	struct emitter e = { &b, FMT_U32, 0, 1, 0 };
	uint32_t *scratch = NULL;
	size_t cap = 0;

	encode_segment(v, s, n, allow_special, &e, &scratch, &cap);
	free(scratch);
	*ids = (uint32_t *)(void *)b.p;
	if (!*ids)
		*ids = xmalloc(4);
	return (size_t)e.n;
}

/* Position of the last hard boundary (NUL end or special end) in
 * [pos, lim), as the offset just after it; pos when none. */
static size_t last_hard(const struct vocab *v, const unsigned char *buf,
			size_t pos, size_t lim, const struct tokenize_opts *opt)
{
	size_t best = pos;
	int i;

	if (opt->zero) {
		const unsigned char *p = memrchr(buf + pos, 0, lim - pos);

		if (p)
			best = (size_t)(p - buf) + 1;
	}
	if (opt->allow_special) {
		for (i = 0; i < v->n_special; i++) {
			size_t from = best, at;
			const unsigned char *p;

			while (from < lim &&
			       (p = memmem(buf + from, lim - from, v->special[i].text,
					   v->special[i].len)) != NULL) {
				at = (size_t)(p - buf);
				if (at >= lim)
					break;
				best = at + v->special[i].len;
				from = best;
			}
		}
	}
	return best;
}

/* Where to end the job that starts at pos, aiming at target; 0 when more
 * input is needed. */
static size_t find_cut(const struct vocab *v, const unsigned char *buf,
		       size_t blen, size_t pos, size_t target,
		       const struct tokenize_opts *opt)
{
	size_t base, lim = blen, q, maxsp = 0;
	int i;

	/* Byte by byte, every place is safe unless a special text spans it. */
	if (v->n_merges == 0 && !opt->allow_special)
		return target;
	if (opt->zero) {
		const unsigned char *p = memchr(buf + target, 0, blen - target);

		if (p)
			lim = (size_t)(p - buf) + 1;
	}
	if (opt->allow_special) {
		size_t at;

		for (i = 0; i < v->n_special; i++)
			if (v->special[i].len > maxsp)
				maxsp = v->special[i].len;
		if (find_special(v, buf + target, lim - target, &at) >= 0 &&
		    target + at > pos)
			return target + at;
	}
	if (lim < blen)
		return lim;
	base = last_hard(v, buf, pos, target, opt);
	if (blen - base <= maxsp + 4)
		return 0;
	q = pretok_safe_split(v->pattern, buf + base, blen - base - maxsp,
			      target - base);
	return q ? base + q : 0;
}

static size_t utf8_boundary(const unsigned char *buf, size_t q, size_t pos)
{
	size_t k;

	for (k = 0; k < 4 && q > pos + 1 && (buf[q] & 0xC0) == 0x80; k++)
		q--;
	return q;
}

/* The inputs read in order as one stream into a growing buffer. */
struct source {
	struct in in;
	char *const *paths;
	int npaths, cur, eof;
	unsigned char *buf;
	size_t len, cap;
};

/* Reads until the buffer holds want bytes or the inputs end. */
static void source_fill(struct source *src, size_t want)
{
	if (src->cap < want) {
		src->cap = want + want / 2;
		src->buf = xrealloc(src->buf, src->cap);
	}
	while (!src->eof && src->len < want) {
		size_t got = in_read(&src->in, src->buf + src->len,
				     src->cap - src->len);

		if (got) {
			src->len += got;
			continue;
		}
		in_close(&src->in);
		if (++src->cur < src->npaths)
			in_open(&src->in, src->paths[src->cur]);
		else
			src->eof = 1;
	}
}

uint64_t tokenize_stream(const struct vocab *v, char *const *paths, int npaths,
			 struct out *o, const struct tokenize_opts *opt)
{
	size_t chunk = opt->chunk ? opt->chunk : DEFAULT_CHUNK;
	int threads = opt->threads > 0 ? opt->threads : 1;
	int maxjobs = threads * 2, nj, i, warned = 0;
	struct job *jobs = xcalloc((size_t)maxjobs, sizeof *jobs);
	struct source src = { 0 };
	unsigned char *buf;
	size_t blen;
	int prev_nul = 1, stream_start = 1, line_start = 1, any = 0;
	uint64_t total = 0, doc = 0;
	struct progress prog;
	uint64_t consumed = 0;
	static char *stdin_path[] = { "-" };

	if (opt->zero && v->eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|> token for -z");
	if (npaths == 0) {
		paths = stdin_path;
		npaths = 1;
	}
	src.paths = paths;
	src.npaths = npaths;
	in_open(&src.in, paths[0]);
	progress_init(&prog, opt->progress, "gpt-tokenize", "B", 0);
	for (;;) {
		size_t pos = 0;

		/* Enough for a batch, or everything that is left. */
		source_fill(&src, chunk * (size_t)maxjobs);
		buf = src.buf;
		blen = src.len;
		nj = 0;
		while (nj < maxjobs && pos < blen) {
			size_t q;

			if (src.eof && blen - pos <= chunk) {
				q = blen;
			} else if (blen - pos <= chunk) {
				break;
			} else {
				q = find_cut(v, buf, blen, pos, pos + chunk, opt);
				if (!q && src.eof)
					q = blen;
				if (!q && blen - pos > TOKENIZE_MAX_RUN) {
					q = utf8_boundary(buf, pos + chunk, pos);
					if (!warned++)
						warnx("warning: %zu bytes without a safe place to cut; cutting at byte %llu",
						      blen - pos,
						      (unsigned long long)(consumed + q));
				}
				if (!q)
					break;
			}
			jobs[nj].start = pos;
			jobs[nj].len = q - pos;
			jobs[nj].line_start = opt->zero ?
				(pos ? buf[pos - 1] == 0 : prev_nul) : stream_start && pos == 0;
			nj++;
			pos = q;
		}
		if (nj == 0 && !src.eof) {
			/* No safe cut yet: read more into a larger buffer. */
			source_fill(&src, blen + chunk);
			continue;
		}
		if (nj == 0)
			break;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && nj > 1)
		for (i = 0; i < nj; i++)
			job_run(v, buf, opt, &jobs[i]);
		for (i = 0; i < nj; i++) {
			struct job *j = &jobs[i];

			total += j->tokens;
			if (opt->count && opt->zero) {
				size_t k;

				doc += j->seg[0];
				for (k = 1; k < j->nseg; k++) {
					out_u64(o, doc);
					out_putc(o, '\n');
					doc = j->seg[k];
				}
			} else if (!opt->count) {
				out_write(o, j->out.p, j->out.len);
			}
			line_start = j->line_start;
			any = 1;
		}
		prev_nul = buf[pos - 1] == 0;
		stream_start = 0;
		consumed += pos;
		progress_update(&prog, consumed);
		memmove(buf, buf + pos, blen - pos);
		src.len = blen - pos;
	}
	progress_end(&prog);
	if (opt->count) {
		if (!opt->zero) {
			out_u64(o, total);
			out_putc(o, '\n');
		} else if (any && !prev_nul) {
			out_u64(o, doc);
			out_putc(o, '\n');
		}
	} else if (opt->fmt == FMT_TEXT && (!line_start || (!opt->zero && !any))) {
		out_putc(o, '\n');
	}
	for (i = 0; i < maxjobs; i++) {
		free(jobs[i].out.p);
		free(jobs[i].seg);
		free(jobs[i].ids);
	}
	free(jobs);
	free(src.buf);
	return total;
}

static void decode_one(const struct vocab *v, struct out *o, uint32_t id,
		       uint64_t index, int zero)
{
	size_t len;
	const unsigned char *p;

	if (zero && id == v->eot) {
		out_putc(o, 0);
		return;
	}
	p = vocab_token(v, id, &len);
	if (!p)
		die("token id %u at position %llu is not in the vocabulary (%u ids)",
		    id, (unsigned long long)index, v->n_ids);
	out_write(o, p, len);
}

void detokenize_stream(const struct vocab *v, char *const *paths, int npaths,
		       struct out *o, enum tok_format fmt, int zero)
{
	static char *stdin_path[] = { "-" };
	unsigned char buf[1 << 16];
	uint64_t index = 0, offset = 0, val = 0;
	int cur, digits = 0;
	size_t width = fmt == FMT_U16 ? 2 : 4, have = 0;
	unsigned char part[4];

	if (zero && v->eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|> token for -z");
	if (npaths == 0) {
		paths = stdin_path;
		npaths = 1;
	}
	for (cur = 0; cur < npaths; cur++) {
		struct in in;
		size_t got, i;

		in_open(&in, paths[cur]);
		while ((got = in_read(&in, buf, sizeof buf)) > 0) {
			for (i = 0; i < got; i++, offset++) {
				unsigned c = buf[i];

				if (fmt != FMT_TEXT) {
					part[have++] = (unsigned char)c;
					if (have < width)
						continue;
					val = width == 4 ? le_get_u32(part) : le_get_u16(part);
					decode_one(v, o, (uint32_t)val, index++, zero);
					have = 0;
				} else if (c >= '0' && c <= '9') {
					val = val * 10 + (c - '0');
					if (val > UINT32_MAX)
						die("token id too large at byte %llu",
						    (unsigned long long)offset);
					digits = 1;
				} else if (c == ' ' || c == '\n' || c == '\t' ||
					   c == '\r' || c == '\v' || c == '\f') {
					if (digits)
						decode_one(v, o, (uint32_t)val, index++, zero);
					val = 0;
					digits = 0;
				} else {
					die("not a token id at byte %llu: '%c'; binary input needs -f u16 or -f u32",
					    (unsigned long long)offset,
					    c >= 0x20 && c < 0x7f ? (int)c : '?');
				}
			}
		}
		in_close(&in);
	}
	if (digits)
		decode_one(v, o, (uint32_t)val, index, zero);
	if (have)
		die("input ends mid-token (%zu of %zu bytes)", have, width);
}
