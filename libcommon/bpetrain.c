/* bpetrain: counts the pieces of a text and learns BPE merges over them
 * with incremental pair counts and a lazy max-heap, so each merge costs
 * work in proportion to the pieces that hold the pair, not the corpus. */
#include "bpetrain.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define DOC_FLUSH (1u << 20)    /* split a long document's text this often */

struct bpe_piece {
	uint64_t hash;
	uint64_t off;           /* into arena, later into the symbol array */
	uint64_t count;
	uint32_t len;           /* bytes, later symbols */
};

struct bpe_pair {
	uint64_t key;           /* left << 32 | right */
	int64_t count;          /* occurrences weighted by piece count */
	uint32_t *pos;          /* pieces that may hold the pair (stale or
				 * repeated entries allowed) */
	uint32_t npos, cap;
	uint32_t last;          /* last piece appended to pos */
	uint32_t touched;       /* merge step that last raised the count */
	int banned;             /* the merged token would be too long */
};

struct heap_ent {
	int64_t count;
	uint64_t key;
	uint32_t idx;
};

/* State of the learning phase only. */
struct learner {
	struct bpetrain *t;
	uint32_t *sym;                  /* symbols of every piece */
	struct bpe_pair *pair;
	size_t n_pair, pair_cap;
	uint32_t *tab;                  /* pair index + 1, 0 empty */
	size_t tab_mask;
	struct heap_ent *heap;
	size_t n_heap, heap_cap;
	uint32_t *touched;
	size_t n_touched, touched_cap;
	uint32_t *stamp;                /* per piece: last merge step seen */
	uint32_t step;
	uint32_t *tok_tab;              /* token id + 1 by bytes, 0 empty */
	size_t tok_mask;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (c < need)
		c = xmul(c, 2);
	*cap = c;
	return xrealloc(p, xmul(c, size));
}

/* ---------------------------------------------------------- counting */

void bpetrain_init(struct bpetrain *t, const struct bpe_opts *opt)
{
	int i;

	memset(t, 0, sizeof *t);
	t->opt = *opt;
	t->doc_flush = DOC_FLUSH;
	t->piece_mask = 1023;
	t->piece_tab = xcalloc(t->piece_mask + 1, sizeof *t->piece_tab);
	t->tok_cap = 1024;
	t->tok_off = xmalloc(t->tok_cap * sizeof *t->tok_off);
	t->tok_len = xmalloc(t->tok_cap * sizeof *t->tok_len);
	t->tok_blob = grow(NULL, &t->tok_blob_cap, 4096, 1);
	for (i = 0; i < 256; i++) {
		t->tok_blob[i] = (unsigned char)i;
		t->tok_off[i] = (uint64_t)i;
		t->tok_len[i] = 1;
	}
	t->tok_blob_len = 256;
	t->n_tok = 256;
}

static void piece_rehash(struct bpetrain *t)
{
	size_t mask = t->piece_mask * 2 + 1, i;
	uint32_t *tab = xcalloc(mask + 1, sizeof *tab);

	for (i = 0; i < t->n_piece; i++) {
		size_t h = (size_t)t->piece[i].hash & mask;

		while (tab[h])
			h = (h + 1) & mask;
		tab[h] = (uint32_t)(i + 1);
	}
	free(t->piece_tab);
	t->piece_tab = tab;
	t->piece_mask = mask;
}

static void piece_add(struct bpetrain *t, const unsigned char *s, size_t n)
{
	uint64_t h = XXH3_64bits(s, n);
	size_t i = (size_t)h & t->piece_mask;
	struct bpe_piece *pc;
	uint32_t idx;

	t->pieces_total++;
	while ((idx = t->piece_tab[i]) != 0) {
		pc = &t->piece[idx - 1];
		if (pc->hash == h && pc->len == n &&
		    memcmp(t->arena + pc->off, s, n) == 0) {
			pc->count++;
			return;
		}
		i = (i + 1) & t->piece_mask;
	}
	if (n > UINT32_MAX || t->n_piece >= UINT32_MAX - 1)
		die("too many distinct pieces in the input");
	if ((t->n_piece + 1) * 10 > (t->piece_mask + 1) * 7) {
		piece_rehash(t);
		i = (size_t)h & t->piece_mask;
		while (t->piece_tab[i])
			i = (i + 1) & t->piece_mask;
	}
	if (t->n_piece % 4096 == 0)
		t->piece = xrealloc(t->piece, xmul(t->n_piece + 4096, sizeof *t->piece));
	t->arena = grow(t->arena, &t->arena_cap, t->arena_len + n, 1);
	pc = &t->piece[t->n_piece];
	pc->hash = h;
	pc->off = t->arena_len;
	pc->len = (uint32_t)n;
	pc->count = 1;
	memcpy(t->arena + t->arena_len, s, n);
	t->arena_len += n;
	t->piece_tab[i] = (uint32_t)++t->n_piece;
}

/* Counts the pieces of s[0..n) split as a whole text. */
static void count_text(struct bpetrain *t, const unsigned char *s, size_t n)
{
	size_t pos = 0, e;

	t->bytes_used += n;
	while (pos < n) {
		e = pretok_next(t->opt.pattern, s, n, pos);
		if (e - pos >= 2)
			piece_add(t, s + pos, e - pos);
		else
			t->pieces_total++;
		pos = e;
	}
}

/* Splits off and counts a prefix of a long document's pending text. */
static void doc_flush_prefix(struct bpetrain *t)
{
	size_t q = pretok_safe_split(t->opt.pattern, t->doc, t->doc_len,
				     t->doc_len / 2);

	if (q == 0) {   /* one long piece: wait for more text */
		t->doc_flush = t->doc_len * 2;
		return;
	}
	count_text(t, t->doc, q);
	memmove(t->doc, t->doc + q, t->doc_len - q);
	t->doc_len -= q;
	t->doc_flush = t->doc_len + DOC_FLUSH;
}

static void doc_end(struct bpetrain *t)
{
	if (t->doc_len)
		count_text(t, t->doc, t->doc_len);
	t->doc_len = 0;
	t->doc_flush = DOC_FLUSH;
}

/* Adds text to the current document; end says the document ends here. */
static void doc_add(struct bpetrain *t, const unsigned char *p, size_t n,
		    int end)
{
	if (end && t->doc_len == 0) {
		count_text(t, p, n);
		return;
	}
	if (n) {
		t->doc = grow(t->doc, &t->doc_cap_bytes, t->doc_len + n, 1);
		memcpy(t->doc + t->doc_len, p, n);
		t->doc_len += n;
	}
	if (end)
		doc_end(t);
	else if (t->doc_len >= t->doc_flush)
		doc_flush_prefix(t);
}

/* Bytes of p[0..n) holding at most left characters: the cut falls before
 * the first byte of character left + 1 (a character is a byte that is not
 * a UTF-8 continuation byte, with the continuation bytes after it). */
static size_t take_chars(const unsigned char *p, size_t n, uint64_t left,
			 uint64_t *got)
{
	uint64_t c = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80) {
			if (c == left)
				break;
			c++;
		}
	}
	*got = c;
	return i;
}

int bpetrain_feed(struct bpetrain *t, const void *data, size_t n)
{
	const unsigned char *p = data;
	int limited = t->opt.max_chars != BPE_NO_LIMIT ||
		      t->opt.doc_cap != BPE_NO_LIMIT;

	while (n > 0 && !t->full) {
		size_t seg = n, take;
		int nul = 0, capped = 0;

		if (t->opt.zero) {
			const unsigned char *z = memchr(p, 0, n);

			if (z) {
				seg = (size_t)(z - p);
				nul = 1;
			}
		}
		t->bytes_in += seg + (size_t)nul;
		if (!t->skipping) {
			take = seg;
			if (limited) {
				uint64_t left = t->opt.max_chars - t->chars, got;

				if (t->opt.doc_cap - t->doc_chars < left)
					left = t->opt.doc_cap - t->doc_chars;
				take = take_chars(p, seg, left, &got);
				t->doc_chars += got;
				t->chars += got;
				capped = take < seg;
			}
			doc_add(t, p, take, nul || capped);
			if (capped) {
				if (t->chars >= t->opt.max_chars) {
					t->full = 1;
					if (t->opt.zero && !nul)
						t->docs++;
				} else {
					t->skipping = 1;
				}
			}
		}
		if (nul) {
			t->skipping = 0;
			t->doc_chars = 0;
			t->docs++;
		}
		p += seg + (size_t)nul;
		n -= seg + (size_t)nul;
	}
	return !t->full;
}

void bpetrain_end(struct bpetrain *t)
{
	if (t->doc_len || (!t->opt.zero && t->bytes_in) ||
	    (t->opt.zero && t->skipping))
		t->docs++;
	doc_end(t);
	t->skipping = 0;
	free(t->doc);
	t->doc = NULL;
	t->doc_cap_bytes = 0;
}

size_t bpetrain_unique(const struct bpetrain *t)
{
	return t->n_piece;
}

/* ---------------------------------------------------------- tokens */

static size_t tok_hash(const unsigned char *s, size_t n)
{
	return (size_t)XXH3_64bits(s, n);
}

/* Token id of these bytes, or UINT32_MAX. */
static uint32_t tok_find(const struct learner *L, const unsigned char *s,
			 size_t n)
{
	const struct bpetrain *t = L->t;
	size_t i = tok_hash(s, n) & L->tok_mask;
	uint32_t v;

	while ((v = L->tok_tab[i]) != 0) {
		uint32_t id = v - 1;

		if (t->tok_len[id] == n &&
		    memcmp(t->tok_blob + t->tok_off[id], s, n) == 0)
			return id;
		i = (i + 1) & L->tok_mask;
	}
	return UINT32_MAX;
}

static void tok_index(struct learner *L, uint32_t id)
{
	struct bpetrain *t = L->t;
	size_t i = tok_hash(t->tok_blob + t->tok_off[id], t->tok_len[id]) &
		   L->tok_mask;

	while (L->tok_tab[i])
		i = (i + 1) & L->tok_mask;
	L->tok_tab[i] = id + 1;
}

static void tok_rehash(struct learner *L)
{
	uint32_t id;

	free(L->tok_tab);
	L->tok_mask = L->tok_mask * 2 + 1;
	L->tok_tab = xcalloc(L->tok_mask + 1, sizeof *L->tok_tab);
	for (id = 0; id < L->t->n_tok; id++)
		tok_index(L, id);
}

/* The token made of left's bytes then right's: an existing one with those
 * bytes, else a new id. */
static uint32_t tok_join(struct learner *L, uint32_t a, uint32_t b)
{
	struct bpetrain *t = L->t;
	size_t la = t->tok_len[a], lb = t->tok_len[b];
	uint32_t id;

	t->tok_blob = grow(t->tok_blob, &t->tok_blob_cap,
			   t->tok_blob_len + la + lb, 1);
	memcpy(t->tok_blob + t->tok_blob_len, t->tok_blob + t->tok_off[a], la);
	memcpy(t->tok_blob + t->tok_blob_len + la, t->tok_blob + t->tok_off[b], lb);
	id = tok_find(L, t->tok_blob + t->tok_blob_len, la + lb);
	if (id != UINT32_MAX)
		return id;
	if (t->n_tok == t->tok_cap) {
		t->tok_cap = xmul(t->tok_cap, 2);
		t->tok_off = xrealloc(t->tok_off, xmul(t->tok_cap, sizeof *t->tok_off));
		t->tok_len = xrealloc(t->tok_len, xmul(t->tok_cap, sizeof *t->tok_len));
	}
	id = t->n_tok++;
	t->tok_off[id] = t->tok_blob_len;
	t->tok_len[id] = (uint32_t)(la + lb);
	t->tok_blob_len += la + lb;
	if ((size_t)t->n_tok * 2 > L->tok_mask + 1)
		tok_rehash(L);
	else
		tok_index(L, id);
	return id;
}

/* ---------------------------------------------------------- pairs */

static inline size_t pair_slot(uint64_t key, size_t mask)
{
	uint64_t h = key * 0x9E3779B97F4A7C15ull;

	return (size_t)(h ^ (h >> 31)) & mask;
}

static void pair_rehash(struct learner *L)
{
	size_t i;

	free(L->tab);
	L->tab_mask = L->tab_mask * 2 + 1;
	L->tab = xcalloc(L->tab_mask + 1, sizeof *L->tab);
	for (i = 0; i < L->n_pair; i++) {
		size_t s = pair_slot(L->pair[i].key, L->tab_mask);

		while (L->tab[s])
			s = (s + 1) & L->tab_mask;
		L->tab[s] = (uint32_t)(i + 1);
	}
}

static uint32_t pair_get(struct learner *L, uint64_t key)
{
	size_t s = pair_slot(key, L->tab_mask);
	struct bpe_pair *p;
	uint32_t v;

	while ((v = L->tab[s]) != 0) {
		if (L->pair[v - 1].key == key)
			return v - 1;
		s = (s + 1) & L->tab_mask;
	}
	if (L->n_pair >= UINT32_MAX - 1)
		die("too many distinct pairs");
	if ((L->n_pair + 1) * 2 > L->tab_mask + 1) {
		pair_rehash(L);
		s = pair_slot(key, L->tab_mask);
		while (L->tab[s])
			s = (s + 1) & L->tab_mask;
	}
	L->pair = grow(L->pair, &L->pair_cap, L->n_pair + 1, sizeof *L->pair);
	p = &L->pair[L->n_pair];
	memset(p, 0, sizeof *p);
	p->key = key;
	p->last = UINT32_MAX;
	p->touched = UINT32_MAX;
	L->tab[s] = (uint32_t)(L->n_pair + 1);
	return (uint32_t)L->n_pair++;
}

/* count += delta for pair (a, b) in piece w; a rise records w as a place
 * of the pair and marks the pair for the heap. */
static void pair_add(struct learner *L, uint32_t a, uint32_t b, int64_t delta,
		     uint32_t w)
{
	uint32_t i = pair_get(L, (uint64_t)a << 32 | b);
	struct bpe_pair *p = &L->pair[i];

	p->count += delta;
	if (delta <= 0)
		return;
	if (p->last != w) {
		if (p->npos == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 2;
			if (p->cap == 0)
				die("too many places of one pair");
			p->pos = xrealloc(p->pos, xmul(p->cap, sizeof *p->pos));
		}
		p->pos[p->npos++] = w;
		p->last = w;
	}
	if (p->touched != L->step) {
		p->touched = L->step;
		L->touched = grow(L->touched, &L->touched_cap, L->n_touched + 1,
				  sizeof *L->touched);
		L->touched[L->n_touched++] = i;
	}
}

/* ---------------------------------------------------------- heap */

/* Higher count first; equal counts: smaller (left, right) first. */
static inline int heap_before(const struct heap_ent *x, const struct heap_ent *y)
{
	return x->count > y->count || (x->count == y->count && x->key < y->key);
}

static void heap_down(struct heap_ent *h, size_t n, size_t i)
{
	struct heap_ent e = h[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && heap_before(&h[c + 1], &h[c]))
			c++;
		if (!heap_before(&h[c], &e))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = e;
}

static void heap_push(struct learner *L, uint32_t idx)
{
	struct heap_ent e = { L->pair[idx].count, L->pair[idx].key, idx };
	size_t i;

	L->heap = grow(L->heap, &L->heap_cap, L->n_heap + 1, sizeof *L->heap);
	i = L->n_heap++;
	while (i > 0 && heap_before(&e, &L->heap[(i - 1) / 2])) {
		L->heap[i] = L->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	L->heap[i] = e;
}

static struct heap_ent heap_pop(struct learner *L)
{
	struct heap_ent top = L->heap[0];

	L->heap[0] = L->heap[--L->n_heap];
	if (L->n_heap)
		heap_down(L->heap, L->n_heap, 0);
	return top;
}

/* The pair with the highest count now, ties to the smallest key; -1 when
 * none is left.  Entries are lazy: a pair's count only rises in the step
 * that pushes it again, so every live pair has an entry at or above its
 * count; an entry above is pushed back at the true count, one below is a
 * leftover of an earlier push and dropped. */
static int64_t best_pair(struct learner *L)
{
	while (L->n_heap) {
		struct heap_ent e = heap_pop(L);
		struct bpe_pair *p = &L->pair[e.idx];

		if (p->banned || p->count <= 0)
			continue;
		if (p->count == e.count)
			return e.idx;
		if (p->count < e.count)
			heap_push(L, e.idx);
	}
	return -1;
}

/* ---------------------------------------------------------- learning */

/* Replaces a b by c left to right in piece w, moving the pair counts. */
static void merge_piece(struct learner *L, uint32_t w, uint32_t a, uint32_t b,
			uint32_t c)
{
	struct bpe_piece *pc = &L->t->piece[w];
	uint32_t *s = L->sym + pc->off;
	size_t n = pc->len, i = 0, j = 0;
	int64_t cnt = (int64_t)pc->count;

	while (i < n) {
		if (i + 1 < n && s[i] == a && s[i + 1] == b) {
			if (j > 0) {
				pair_add(L, s[j - 1], a, -cnt, w);
				pair_add(L, s[j - 1], c, cnt, w);
			}
			if (i + 2 < n) {
				pair_add(L, b, s[i + 2], -cnt, w);
				pair_add(L, c, s[i + 2], cnt, w);
			}
			pair_add(L, a, b, -cnt, w);
			s[j++] = c;
			i += 2;
		} else {
			s[j++] = s[i++];
		}
	}
	pc->len = (uint32_t)j;
}

static void learn_setup(struct learner *L, struct bpetrain *t)
{
	size_t w, k;
	uint32_t id;

	memset(L, 0, sizeof *L);
	L->t = t;
	L->sym = xmalloc(xmul(t->arena_len ? t->arena_len : 1, sizeof *L->sym));
	for (k = 0; k < t->arena_len; k++)
		L->sym[k] = t->arena[k];
	free(t->arena);
	t->arena = NULL;
	free(t->piece_tab);
	t->piece_tab = NULL;
	L->tab_mask = 1023;
	while (L->tab_mask < t->n_piece * 4)
		L->tab_mask = L->tab_mask * 2 + 1;
	L->tab = xcalloc(L->tab_mask + 1, sizeof *L->tab);
	L->stamp = xmalloc(xmul(t->n_piece ? t->n_piece : 1, sizeof *L->stamp));
	L->step = 0;
	for (w = 0; w < t->n_piece; w++) {
		const uint32_t *s = L->sym + t->piece[w].off;

		L->stamp[w] = UINT32_MAX;
		for (k = 0; k + 1 < t->piece[w].len; k++)
			pair_add(L, s[k], s[k + 1], (int64_t)t->piece[w].count,
				 (uint32_t)w);
	}
	L->heap = grow(L->heap, &L->heap_cap, L->n_pair + 1, sizeof *L->heap);
	for (k = 0; k < L->n_pair; k++) {
		L->heap[k].count = L->pair[k].count;
		L->heap[k].key = L->pair[k].key;
		L->heap[k].idx = (uint32_t)k;
	}
	L->n_heap = L->n_pair;
	for (k = L->n_heap / 2; k-- > 0;)
		heap_down(L->heap, L->n_heap, k);
	L->tok_mask = 1023;
	while (L->tok_mask + 1 < (size_t)t->n_tok * 2)
		L->tok_mask = L->tok_mask * 2 + 1;
	L->tok_tab = xcalloc(L->tok_mask + 1, sizeof *L->tok_tab);
	for (id = 0; id < t->n_tok; id++)
		tok_index(L, id);
}

static void learn_free(struct learner *L)
{
	size_t i;

	for (i = 0; i < L->n_pair; i++)
		free(L->pair[i].pos);
	free(L->pair);
	free(L->tab);
	free(L->heap);
	free(L->touched);
	free(L->stamp);
	free(L->sym);
	free(L->tok_tab);
}

uint32_t bpetrain_learn(struct bpetrain *t, uint32_t n_tokens,
			struct progress *prog)
{
	struct learner L;
	int64_t best;

	learn_setup(&L, t);
	while (t->n_tok < n_tokens && (best = best_pair(&L)) >= 0) {
		struct bpe_pair *p = &L.pair[best];
		uint32_t a = (uint32_t)(p->key >> 32), b = (uint32_t)p->key, c;
		uint32_t *pos = p->pos, npos = p->npos, k;
		struct bpe_merge *m;

		if ((uint64_t)t->tok_len[a] + t->tok_len[b] > BPE_MAX_TOKEN_BYTES) {
			p->banned = 1;
			continue;
		}
		c = tok_join(&L, a, b);
		t->merges = grow(t->merges, &t->merges_cap, t->n_merges + 1,
				 sizeof *t->merges);
		m = &t->merges[t->n_merges++];
		m->left = a;
		m->right = b;
		m->id = c;
		/* The list is taken: (a, b) can come back only through a later
		 * merge that reuses a or b's bytes, and gets a new list then. */
		p->pos = NULL;
		p->npos = p->cap = 0;
		p->last = UINT32_MAX;
		L.step++;
		L.n_touched = 0;
		for (k = 0; k < npos; k++) {
			uint32_t w = pos[k];

			if (L.stamp[w] == L.step)
				continue;
			L.stamp[w] = L.step;
			merge_piece(&L, w, a, b, c);
		}
		free(pos);
		for (k = 0; k < L.n_touched; k++)
			if (L.pair[L.touched[k]].count > 0 &&
			    !L.pair[L.touched[k]].banned)
				heap_push(&L, L.touched[k]);
		if (prog)
			progress_update(prog, t->n_merges);
	}
	learn_free(&L);
	free(t->piece);
	t->piece = NULL;
	return t->n_tok;
}

/* ---------------------------------------------------------- output */

static void put_base64(struct out *o, const unsigned char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		out_putc(o, tab[v >> 18]);
		out_putc(o, tab[(v >> 12) & 63]);
		out_putc(o, tab[(v >> 6) & 63]);
		out_putc(o, tab[v & 63]);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		out_putc(o, tab[v >> 18]);
		out_putc(o, tab[(v >> 12) & 63]);
		out_write(o, "==", 2);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		out_putc(o, tab[v >> 18]);
		out_putc(o, tab[(v >> 12) & 63]);
		out_putc(o, tab[(v >> 6) & 63]);
		out_putc(o, '=');
	}
}

void bpetrain_write_ranks(const struct bpetrain *t, struct out *o)
{
	uint32_t id;

	for (id = 0; id < t->n_tok; id++) {
		put_base64(o, t->tok_blob + t->tok_off[id], t->tok_len[id]);
		out_putc(o, ' ');
		out_u64(o, id);
		out_putc(o, '\n');
	}
}

void bpetrain_write_merges(const struct bpetrain *t, struct out *o)
{
	size_t i;

	for (i = 0; i < t->n_merges; i++) {
		out_u64(o, t->merges[i].left);
		out_putc(o, ' ');
		out_u64(o, t->merges[i].right);
		out_putc(o, ' ');
		out_u64(o, t->merges[i].id);
		out_putc(o, '\n');
	}
}

void bpetrain_free(struct bpetrain *t)
{
	free(t->doc);
	free(t->piece);
	free(t->piece_tab);
	free(t->arena);
	free(t->tok_blob);
	free(t->tok_off);
	free(t->tok_len);
	free(t->merges);
	memset(t, 0, sizeof *t);
}
