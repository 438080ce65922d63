/* tokenize: chunked, multi-threaded encoding whose output does not depend
 * on how the input arrives.  With -j 1 one thread reads, cuts, encodes and
 * writes in turn; with -j N a reader cuts chunks into a ring of slots, N
 * workers encode (and format) them, and a writer writes them in input
 * order, with no barrier between batches. */
#include "le.h"
#include "tokenize.h"
#include "err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK (1u << 20)
/* ids encoded straight into the output at a time (u32 form) */
#define DIRECT_IDS 8192
/* How much of a mapped input is encoded and written between letting its
 * pages go. */
#define RELEASE_EVERY (8u << 20)

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
	const unsigned char *s; /* the chunk (pipeline only): in.p, or in the */
	size_t n;               /* source's mapping */
	struct bytes in;        /* a copy of the chunk when it is not mapped */
	int line_start;         /* no token written yet on the current line */
	int ends_nul;           /* the chunk's last byte is a NUL */
	struct bytes out;
	uint64_t *seg;          /* -c -z: tokens per NUL-separated segment */
	size_t nseg, segcap;
	uint64_t tokens;
	int done;               /* pipeline: encoded, waiting for the writer */
	uint32_t *ids;          /* scratch for vocab_encode_text's batches */
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

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* u32 ids are the output's bytes: encoded in place, not copied there
	 * (the output holds whole ids, so the place is aligned) */
	if (e->fmt == FMT_U32 && !e->count_only) {
		while (pos < n) {
			size_t m;

			bytes_reserve(e->out, 4 * DIRECT_IDS);
			m = vocab_encode_text_to(v, s, n, &pos,
						 (uint32_t *)(void *)(e->out->p + e->out->len),
						 DIRECT_IDS);
			if (!m) {       /* a piece of more ids than that */
				emit_ids(e, *ids, vocab_encode_text(v, s, n, &pos, ids, idcap));
				continue;
			}
			e->out->len += 4 * m;
			e->n += m;
		}
		return;
	}
#endif
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

/* Encodes s[0..n) into j->out (ids in their final form) and j->seg;
 * j->line_start is the line state before the chunk, and after it on return. */
static void job_run(const struct vocab *v, const unsigned char *s, size_t n,
		    const struct tokenize_opts *opt, struct job *j)
{
	struct emitter e = { &j->out, opt->fmt, opt->count, j->line_start, 0 };

	j->out.len = 0;
	j->nseg = 0;
	j->ends_nul = n && s[n - 1] == 0;
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
	j->line_start = e.line_start;
}

static void job_free(struct job *j)
{
	free(j->in.p);
	free(j->out.p);
	free(j->seg);
	free(j->ids);
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

/* The inputs read in order as one stream.  One regular file is mapped, not
 * read: data points into the mapping until it is used up, then (should the
 * file have grown) into a buffer that holds the mapping's uncut tail and
 * what read() gives after it.  Otherwise data is a growing buffer. */
struct source {
	struct in in;
	struct in_mapping map;
	char *const *paths;
	int npaths, cur, eof, mapped;
	const unsigned char *data;
	unsigned char *buf;
	size_t len, cap;
};

static void source_open(struct source *src)
{
	size_t n;
	const unsigned char *p;

	in_open(&src->in, src->paths[0]);
	if (src->npaths != 1 || !(p = in_map(&src->in, &src->map, &n)))
		return;
	src->data = p;
	src->len = n;
	src->mapped = 1;
}

/* Reads until the buffer holds want bytes or the inputs end. */
static void source_fill(struct source *src, size_t want)
{
	if (src->cap < want) {
		src->cap = want + want / 2;
		src->buf = xrealloc(src->buf, src->cap);
		src->data = src->buf;
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

/* The mapping is used up from pos on (len - pos bytes are left, fewer than
 * the cutter wants): at the input's end, or else on to a buffer that starts
 * with those bytes.  Returns how far the data moved back (pos or 0). */
static size_t source_unmap(struct source *src, size_t pos)
{
	unsigned char probe[4096];
	size_t got = in_read(&src->in, probe, sizeof probe), left;

	if (!got) {
		src->eof = 1;
		in_close(&src->in);
		return 0;
	}
	left = src->len - pos;
	src->cap = left + got + (1u << 16);
	src->buf = xmalloc(src->cap);
	memcpy(src->buf, src->data + pos, left);
	memcpy(src->buf + left, probe, got);
	src->len = left + got;
	src->data = src->buf;
	src->mapped = 0;
	return pos;
}

/* The stream cut into chunks at safe places; one instance, one thread. */
struct cutter {
	const struct vocab *v;
	const struct tokenize_opts *opt;
	struct source src;
	size_t chunk, pos;      /* src.data[pos..len) is not cut yet */
	int prev_nul;           /* the byte before pos is a NUL, or none is */
	int first;              /* no chunk cut yet */
	int warned;
	uint64_t base;          /* stream offset of src.data[0] */
};

struct chunk {
	const unsigned char *s; /* valid until the next cutter_next, or while */
	size_t n;               /* the source lives when mapped is set */
	int mapped;
	int line_start;
};

/* The next chunk of the stream; 0 at its end.  A chunk ends at the first
 * safe cut after chunk bytes (find_cut), so what is read ahead is about one
 * chunk, more only while no safe cut is in sight (up to TOKENIZE_MAX_RUN). */
static int cutter_next(struct cutter *c, struct chunk *k)
{
	struct source *src = &c->src;
	size_t need = 2 * c->chunk, q;

	for (;;) {
		size_t avail = src->len - c->pos;

		if (!src->eof && avail < need && src->mapped) {
			size_t back = source_unmap(src, c->pos);

			c->base += back;
			c->pos -= back;
			avail = src->len - c->pos;
		}
		if (!src->eof && avail < need) {
			if (c->pos && c->pos + need > src->cap) {
				memmove(src->buf, src->buf + c->pos, avail);
				src->len = avail;
				c->base += c->pos;
				c->pos = 0;
			}
			source_fill(src, c->pos + need);
			avail = src->len - c->pos;
		}
		if (avail == 0)
			return 0;
		if (src->eof && avail <= c->chunk) {
			q = src->len;
		} else {
			q = find_cut(c->v, src->data, src->len, c->pos,
				     c->pos + c->chunk, c->opt);
			if (!q && src->eof)
				q = src->len;
			if (!q && avail > TOKENIZE_MAX_RUN) {
				q = utf8_boundary(src->data, c->pos + c->chunk, c->pos);
				if (!c->warned++)
					warnx("warning: %zu bytes without a safe place to cut; cutting at byte %llu",
					      avail, (unsigned long long)(c->base + q));
			}
			if (!q) {
				need = avail + c->chunk;
				continue;
			}
		}
		k->s = src->data + c->pos;
		k->n = q - c->pos;
		k->mapped = src->mapped;
		k->line_start = c->opt->zero ? c->prev_nul : c->first;
		c->prev_nul = src->data[q - 1] == 0;
		c->first = 0;
		c->pos = q;
		return 1;
	}
}

/* Where encoded chunks go, in input order; one thread at a time. */
struct sink {
	struct out *o;
	const struct tokenize_opts *opt;
	struct progress prog;
	struct in_mapping *map; /* the source's, its pages let go as written */
	uint64_t released;
	uint64_t consumed, total, doc;
	int line_start, ends_nul, any;
};

static void sink_job(struct sink *k, const struct job *j, size_t len)
{
	k->total += j->tokens;
	if (k->opt->count && k->opt->zero) {
		size_t i;

		k->doc += j->seg[0];
		for (i = 1; i < j->nseg; i++) {
			out_u64(k->o, k->doc);
			out_putc(k->o, '\n');
			k->doc = j->seg[i];
		}
	} else if (!k->opt->count) {
		out_write(k->o, j->out.p, j->out.len);
	}
	k->line_start = j->line_start;
	k->ends_nul = j->ends_nul;
	k->any = 1;
	k->consumed += len;
	if (k->map->base && k->consumed - k->released >= RELEASE_EVERY) {
		in_map_release(k->map, k->consumed);
		k->released = k->consumed;
	}
	progress_update(&k->prog, k->consumed);
}

/* -j N: slots[seq % nslots] holds chunk seq.  Chunks below nread are cut,
 * below ntaken taken by a worker, below nwritten written (their slots free
 * again); every count only grows, under mu. */
struct pipeline {
	const struct vocab *v;
	const struct tokenize_opts *opt;
	struct sink *sink;
	struct job *slots;
	uint64_t nslots, nread, ntaken, nwritten;
	int eof;
	pthread_mutex_t mu;
	pthread_cond_t filled;  /* nread grew or eof: workers */
	pthread_cond_t done;    /* a job was encoded or eof: the writer */
	pthread_cond_t freed;   /* nwritten grew: the reader */
};

static void *pipeline_worker(void *arg)
{
	struct pipeline *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j;

		while (p->ntaken == p->nread && !p->eof)
			pthread_cond_wait(&p->filled, &p->mu);
		if (p->ntaken == p->nread)
			break;
		j = &p->slots[p->ntaken++ % p->nslots];
		pthread_mutex_unlock(&p->mu);
		job_run(p->v, j->s, j->n, p->opt, j);
		pthread_mutex_lock(&p->mu);
		j->done = 1;
		if (j == &p->slots[p->nwritten % p->nslots])
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void *pipeline_writer(void *arg)
{
	struct pipeline *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j = &p->slots[p->nwritten % p->nslots];

		while (!(p->nwritten < p->nread && j->done) &&
		       !(p->eof && p->nwritten == p->nread))
			pthread_cond_wait(&p->done, &p->mu);
		if (p->nwritten == p->nread)
			break;
		pthread_mutex_unlock(&p->mu);
		sink_job(p->sink, j, j->n);
		pthread_mutex_lock(&p->mu);
		j->done = 0;
		p->nwritten++;
		pthread_cond_signal(&p->freed);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void xthread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int e = pthread_create(t, NULL, fn, arg);

	if (e)
		die("cannot start a thread: %s", strerror(e));
}

/* The calling thread reads and cuts; threads workers encode; one writer
 * writes.  Memory: nslots chunks in and their ids out, plus the cutter's
 * buffer. */
static void pipeline_run(struct cutter *c, struct sink *k, int threads)
{
	struct pipeline p = { 0 };
	pthread_t *workers = xcalloc((size_t)threads, sizeof *workers);
	pthread_t writer;
	struct chunk ch;
	uint64_t i;
	int t;

	p.v = c->v;
	p.opt = c->opt;
	p.sink = k;
	p.nslots = 2 * (uint64_t)threads + 2;
	p.slots = xcalloc(p.nslots, sizeof *p.slots);
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.filled, NULL);
	pthread_cond_init(&p.done, NULL);
	pthread_cond_init(&p.freed, NULL);
	for (t = 0; t < threads; t++)
		xthread(&workers[t], pipeline_worker, &p);
	xthread(&writer, pipeline_writer, &p);
	while (cutter_next(c, &ch)) {
		struct job *j;

		pthread_mutex_lock(&p.mu);
		while (p.nread - p.nwritten == p.nslots)
			pthread_cond_wait(&p.freed, &p.mu);
		j = &p.slots[p.nread % p.nslots];
		pthread_mutex_unlock(&p.mu);
		/* The slot is ours: no worker takes it before nread grows, and
		 * the writer is done with its last chunk. */
		if (ch.mapped) {
			j->s = ch.s;
		} else {
			j->in.len = 0;
			bytes_reserve(&j->in, ch.n);
			memcpy(j->in.p, ch.s, ch.n);
			j->in.len = ch.n;
			j->s = j->in.p;
		}
		j->n = ch.n;
		j->line_start = ch.line_start;
		pthread_mutex_lock(&p.mu);
		p.nread++;
		pthread_cond_signal(&p.filled);
		pthread_mutex_unlock(&p.mu);
	}
	pthread_mutex_lock(&p.mu);
	p.eof = 1;
	pthread_cond_broadcast(&p.filled);
	pthread_cond_signal(&p.done);
	pthread_mutex_unlock(&p.mu);
	for (t = 0; t < threads; t++)
		pthread_join(workers[t], NULL);
	pthread_join(writer, NULL);
	for (i = 0; i < p.nslots; i++)
		job_free(&p.slots[i]);
	free(p.slots);
	free(workers);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.filled);
	pthread_cond_destroy(&p.done);
	pthread_cond_destroy(&p.freed);
}

uint64_t tokenize_stream(const struct vocab *v, char *const *paths, int npaths,
			 struct out *o, const struct tokenize_opts *opt)
{
	static char *stdin_path[] = { "-" };
	int threads = opt->threads > 0 ? opt->threads : 1;
	struct cutter c = { 0 };
	struct sink k = { 0 };

	if (opt->zero && v->eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|> token for -z");
	if (npaths == 0) {
		paths = stdin_path;
		npaths = 1;
	}
	c.v = v;
	c.opt = opt;
	c.chunk = opt->chunk ? opt->chunk : DEFAULT_CHUNK;
	c.prev_nul = 1;
	c.first = 1;
	c.src.paths = paths;
	c.src.npaths = npaths;
	source_open(&c.src);
	k.o = o;
	k.map = &c.src.map;
	k.opt = opt;
	k.line_start = 1;
	progress_init(&k.prog, opt->progress, "gpt-tokenize", "B", 0);
	if (threads == 1) {
		struct job j = { 0 };
		struct chunk ch;

		while (cutter_next(&c, &ch)) {
			j.line_start = ch.line_start;
			job_run(v, ch.s, ch.n, opt, &j);
			sink_job(&k, &j, ch.n);
		}
		job_free(&j);
	} else {
		pipeline_run(&c, &k, threads);
	}
	progress_end(&k.prog);
	if (opt->count) {
		if (!opt->zero) {
			out_u64(o, k.total);
			out_putc(o, '\n');
		} else if (k.any && !k.ends_nul) {
			out_u64(o, k.doc);
			out_putc(o, '\n');
		}
	} else if (opt->fmt == FMT_TEXT && (!k.line_start || (!opt->zero && !k.any))) {
		out_putc(o, '\n');
	}
	in_unmap(&c.src.map);
	free(c.src.buf);
	return k.total;
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
