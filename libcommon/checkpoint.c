/* checkpoint: the byte layout of gpt-checkpoint(5) files, written
 * atomically with xxHash64 checksums over the header and each section,
 * read back with every field bounded before it is trusted, and the
 * files of a run folder (numbered checkpoints, a "latest" link). */
#include "checkpoint.h"
#include "err.h"
#include "io.h"
#include "le.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c stores floats as they lie in memory: little-endian hosts only"
#endif

#define ALIGN 64u
#define CHUNK (8u << 20)

/* Header field offsets (see gpt-checkpoint(5)). */
enum {
	H_MAGIC = 0, H_VERSION = 8, H_HBYTES = 12, H_FSIZE = 16, H_FLAGS = 24,
	H_NTENSORS = 28, H_NPARAMS = 32, H_LAYERS = 40, H_HEADS = 44,
	H_WIDTH = 48, H_CONTEXT = 52, H_VOCAB = 56, H_PVOCAB = 60, H_TIED = 64,
	H_BIAS = 68, H_QKVBIAS = 72, H_SCHED = 76, H_STEP = 80, H_TOKENS = 88,
	H_ADAMSTEP = 96, H_RNG = 104, H_LR = 136, H_MINLR = 144, H_WARMUP = 152,
	H_TOTAL = 160, H_WD = 168, H_BETA1 = 176, H_BETA2 = 184, H_EPS = 192,
	H_CLIP = 200, H_DECAY = 208, H_TOKENIZER = 216, H_SECTIONS = 280,
	H_CLASSES = 448, H_ARCH = 452, H_INPUT = 456, H_HASH = 504
};

/* Tensor table entry offsets. */
enum { E_NAME = 0, E_DTYPE = 64, E_NDIM = 68, E_SHAPE = 72, E_OFFSET = 104, E_COUNT = 112 };

static const char *sec_names[CKPT_NSEC] = {
	"tensor table", "weights", "AdamW first moments", "AdamW second moments",
	"data-loader position", "settings", "labels"
};

static uint64_t align_up(uint64_t x)
{
	return (x + ALIGN - 1) / ALIGN * ALIGN;
}

static unsigned char *table_encode(const struct ckpt *c, size_t *len)
{
	size_t n = xmul(c->n_tensors, CKPT_ENTRY_BYTES);
	unsigned char *t = xcalloc(n ? n : 1, 1);

	for (uint32_t i = 0; i < c->n_tensors; i++) {
		const struct ckpt_tensor *e = &c->tensors[i];
		unsigned char *p = t + (size_t)i * CKPT_ENTRY_BYTES;

		memcpy(p + E_NAME, e->name, strnlen(e->name, CKPT_NAME_MAX - 1));
		le_put_u32(p + E_DTYPE, e->dtype);
		le_put_u32(p + E_NDIM, e->ndim);
		for (int d = 0; d < 4; d++)
			le_put_u64(p + E_SHAPE + 8 * d, e->shape[d]);
		le_put_u64(p + E_OFFSET, e->offset);
		le_put_u64(p + E_COUNT, e->count);
	}
	*len = n;
	return t;
}

static void write_pad(struct out *o, uint64_t *pos, uint64_t to)
{
	static const unsigned char zero[ALIGN];

	while (*pos < to) {
		size_t k = (size_t)(to - *pos) < sizeof zero ? (size_t)(to - *pos) : sizeof zero;

		out_write(o, zero, k);
		*pos += k;
	}
}

void ckpt_write(const struct ckpt *c, const char *path)
{
	unsigned char h[CKPT_HEADER_BYTES];
	const void *data[CKPT_NSEC];
	uint64_t len[CKPT_NSEC], off[CKPT_NSEC], pos = CKPT_HEADER_BYTES;
	size_t tlen;
	int nsec;
	uint32_t version;
	unsigned char *table = table_encode(c, &tlen);
	struct afile af;

	data[CKPT_SEC_TABLE] = table;
	len[CKPT_SEC_TABLE] = tlen;
	data[CKPT_SEC_PARAMS] = c->params;
	len[CKPT_SEC_PARAMS] = c->n_params * sizeof(float);
	data[CKPT_SEC_M] = c->has_optim ? c->m : NULL;
	data[CKPT_SEC_V] = c->has_optim ? c->v : NULL;
	len[CKPT_SEC_M] = len[CKPT_SEC_V] = c->has_optim ? c->n_params * sizeof(float) : 0;
	data[CKPT_SEC_LOADER] = c->loader;
	len[CKPT_SEC_LOADER] = c->loader ? c->loader_len : 0;
	data[CKPT_SEC_SETTINGS] = c->settings;
	len[CKPT_SEC_SETTINGS] = c->settings ? c->settings_len : 0;
	data[CKPT_SEC_LABELS] = c->labels;
	len[CKPT_SEC_LABELS] = c->labels ? c->labels_len : 0;
	/* a language model's file is version 1, as it always was; a
	 * classifier's is version 2, another family's version 3, which
	 * older readers refuse */
	version = c->model.arch ? CKPT_VERSION_ARCH
	                        : c->model.classes ? CKPT_VERSION_CLASSES : CKPT_VERSION;
	nsec = version == CKPT_VERSION ? CKPT_SEC_LABELS : CKPT_NSEC;

	memset(h, 0, sizeof h);
	memcpy(h + H_MAGIC, CKPT_MAGIC, 8);
	le_put_u32(h + H_VERSION, version);
	if (version != CKPT_VERSION)
		le_put_u32(h + H_CLASSES, c->model.classes);
	if (version == CKPT_VERSION_ARCH) {
		le_put_u32(h + H_ARCH, c->model.arch);
		le_put_u32(h + H_INPUT, c->model.input);
	}
	le_put_u32(h + H_HBYTES, CKPT_HEADER_BYTES);
	le_put_u32(h + H_FLAGS, c->has_optim ? 1u : 0u);
	le_put_u32(h + H_NTENSORS, c->n_tensors);
	le_put_u64(h + H_NPARAMS, c->n_params);
	le_put_u32(h + H_LAYERS, c->model.layers);
	le_put_u32(h + H_HEADS, c->model.heads);
	le_put_u32(h + H_WIDTH, c->model.width);
	le_put_u32(h + H_CONTEXT, c->model.context);
	le_put_u32(h + H_VOCAB, c->model.vocab);
	le_put_u32(h + H_PVOCAB, c->model.padded_vocab);
	le_put_u32(h + H_TIED, c->model.tied);
	le_put_u32(h + H_BIAS, c->model.bias);
	le_put_u32(h + H_QKVBIAS, c->model.qkv_bias);
	le_put_u64(h + H_STEP, c->step);
	le_put_u64(h + H_TOKENS, c->tokens);
	le_put_u64(h + H_ADAMSTEP, c->adam_step);
	for (int i = 0; i < 4; i++)
		le_put_u64(h + H_RNG + 8 * i, c->rng[i]);
	le_put_u32(h + H_SCHED, c->sched.kind);
	le_put_f64(h + H_LR, c->sched.lr);
	le_put_f64(h + H_MINLR, c->sched.min_lr_frac);
	le_put_u64(h + H_WARMUP, c->sched.warmup);
	le_put_u64(h + H_TOTAL, c->sched.total_steps);
	le_put_f64(h + H_WD, c->sched.weight_decay);
	le_put_f64(h + H_BETA1, c->sched.beta1);
	le_put_f64(h + H_BETA2, c->sched.beta2);
	le_put_f64(h + H_EPS, c->sched.eps);
	le_put_f64(h + H_CLIP, c->sched.clip);
	le_put_u64(h + H_DECAY, c->sched.decay);
	memcpy(h + H_TOKENIZER, c->tokenizer, strnlen(c->tokenizer, CKPT_NAME_MAX - 1));
	for (int s = 0; s < nsec; s++) {
		pos = align_up(pos);
		off[s] = pos;
		pos += len[s];
		le_put_u64(h + H_SECTIONS + 24 * s, off[s]);
		le_put_u64(h + H_SECTIONS + 24 * s + 8, len[s]);
		le_put_u64(h + H_SECTIONS + 24 * s + 16,
		      XXH64(len[s] ? data[s] : "", (size_t)len[s], 0));
	}
	le_put_u64(h + H_FSIZE, pos);
	le_put_u64(h + H_HASH, XXH64(h, H_HASH, 0));

	afile_open(&af, path);
	out_write(&af.out, h, sizeof h);
	pos = CKPT_HEADER_BYTES;
	for (int s = 0; s < nsec; s++) {
		write_pad(&af.out, &pos, off[s]);
		if (len[s])
			out_write(&af.out, data[s], (size_t)len[s]);
		pos += len[s];
	}
	afile_commit(&af);
	free(table);
}

static int fail(struct ckpt *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ckpt *c, const char *fmt, ...)
{
	va_list ap;
	char msg[300];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, sizeof c->err, "%s: '%s'", msg, c->path ? c->path : "?");
	return -1;
}

/* Read exactly n bytes at off, feeding the hash; -1 on a short read. */
static int read_at(struct ckpt *c, void *dst, uint64_t off, uint64_t n, XXH64_state_t *st)
{
	unsigned char *p = dst;

	while (n) {
		size_t want = n < CHUNK ? (size_t)n : CHUNK;
		ssize_t got = pread(c->fd, p, want, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return fail(c, "cannot read checkpoint: %s", strerror(errno));
		if (got == 0)
			return fail(c, "checkpoint is truncated");
		if (st)
			XXH64_update(st, p, (size_t)got);
		p += got;
		off += (uint64_t)got;
		n -= (uint64_t)got;
	}
	return 0;
}

/* Read section s into dst (which holds its whole length), verified. */
static int read_section(struct ckpt *c, int s, void *dst)
{
	XXH64_state_t *st = XXH64_createState();
	int r;

	if (!st)
		die("out of memory");
	XXH64_reset(st, 0);
	r = read_at(c, dst, c->sec_off[s], c->sec_len[s], st);
	if (r == 0 && XXH64_digest(st) != c->sec_hash[s])
		r = fail(c, "checkpoint is corrupt (checksum mismatch in %s)", sec_names[s]);
	XXH64_freeState(st);
	return r;
}

static int finite_in(double x, double lo, double hi)
{
	return isfinite(x) && x >= lo && x <= hi;
}

static int check_header(struct ckpt *c, const unsigned char *h)
{
	struct ckpt_model *m = &c->model;
	uint32_t flags;
	uint64_t want[CKPT_NSEC], prev_end = CKPT_HEADER_BYTES;

	if (memcmp(h + H_MAGIC, CKPT_MAGIC, 8) != 0)
		return fail(c, "not a gpt checkpoint (bad magic)");
	uint32_t version = le_get_u32(h + H_VERSION);
	int nsec = version == CKPT_VERSION ? CKPT_SEC_LABELS : CKPT_NSEC;

	if (version != CKPT_VERSION && version != CKPT_VERSION_CLASSES &&
	    version != CKPT_VERSION_ARCH)
		return fail(c, "unsupported checkpoint version %" PRIu32 " (this program reads %u "
			    "to %u)", version, CKPT_VERSION, CKPT_VERSION_ARCH);
	if (XXH64(h, H_HASH, 0) != le_get_u64(h + H_HASH))
		return fail(c, "checkpoint is corrupt (header checksum mismatch)");
	if (le_get_u32(h + H_HBYTES) != CKPT_HEADER_BYTES)
		return fail(c, "checkpoint is corrupt (header size %" PRIu32 ")", le_get_u32(h + H_HBYTES));
	c->file_size = le_get_u64(h + H_FSIZE);
	flags = le_get_u32(h + H_FLAGS);
	if (flags > 1)
		return fail(c, "checkpoint has unknown flags %#" PRIx32, flags);
	c->has_optim = (int)(flags & 1);
	c->n_tensors = le_get_u32(h + H_NTENSORS);
	c->n_params = le_get_u64(h + H_NPARAMS);
	m->layers = le_get_u32(h + H_LAYERS);
	m->heads = le_get_u32(h + H_HEADS);
	m->width = le_get_u32(h + H_WIDTH);
	m->context = le_get_u32(h + H_CONTEXT);
	m->vocab = le_get_u32(h + H_VOCAB);
	m->padded_vocab = le_get_u32(h + H_PVOCAB);
	m->tied = le_get_u32(h + H_TIED);
	m->bias = le_get_u32(h + H_BIAS);
	m->qkv_bias = le_get_u32(h + H_QKVBIAS);
	m->classes = version != CKPT_VERSION ? le_get_u32(h + H_CLASSES) : 0;
	if (version == CKPT_VERSION_CLASSES && (m->classes < 2 || m->classes > 1024))
		return fail(c, "checkpoint has an impossible number of classes %" PRIu32, m->classes);
	m->arch = version == CKPT_VERSION_ARCH ? le_get_u32(h + H_ARCH) : 0;
	m->input = version == CKPT_VERSION_ARCH ? le_get_u32(h + H_INPUT) : 0;
	if (version == CKPT_VERSION_ARCH &&
	    (m->arch != 1 || m->input < 1 || m->input > (1u << 16) || m->classes != 0))
		return fail(c, "checkpoint has an impossible architecture %" PRIu32
			    " (embedding width %" PRIu32 ", %" PRIu32 " classes)", m->arch, m->input,
			    m->classes);
	if (m->layers < 1 || m->layers > 1024 || m->heads < 1 || m->heads > 1024 ||
	    m->width < 1 || m->width > (1u << 16) || m->width % m->heads != 0 ||
	    m->context < 1 || m->context > (1u << 20) || m->vocab < 1 ||
	    m->vocab > (1u << 24) || m->padded_vocab < m->vocab ||
	    m->padded_vocab > m->vocab + (1u << 16) || m->tied > 1 || m->bias > 1 || m->qkv_bias > 1)
		return fail(c, "checkpoint has an impossible model configuration "
			    "(%" PRIu32 " layers, %" PRIu32 " heads, width %" PRIu32 ", context %" PRIu32
			    ", vocabulary %" PRIu32 "/%" PRIu32 ")", m->layers, m->heads, m->width,
			    m->context, m->vocab, m->padded_vocab);
	if (c->n_tensors < 1 || c->n_tensors > CKPT_MAX_TENSORS)
		return fail(c, "checkpoint has an impossible tensor count %" PRIu32, c->n_tensors);
	if (c->n_params < 1 || c->n_params > CKPT_MAX_PARAMS)
		return fail(c, "checkpoint has an impossible parameter count %" PRIu64, c->n_params);
	c->step = le_get_u64(h + H_STEP);
	c->tokens = le_get_u64(h + H_TOKENS);
	c->adam_step = le_get_u64(h + H_ADAMSTEP);
	for (int i = 0; i < 4; i++)
		c->rng[i] = le_get_u64(h + H_RNG + 8 * i);
	c->sched.kind = le_get_u32(h + H_SCHED);
	c->sched.lr = le_get_f64(h + H_LR);
	c->sched.min_lr_frac = le_get_f64(h + H_MINLR);
	c->sched.warmup = le_get_u64(h + H_WARMUP);
	c->sched.total_steps = le_get_u64(h + H_TOTAL);
	c->sched.weight_decay = le_get_f64(h + H_WD);
	c->sched.beta1 = le_get_f64(h + H_BETA1);
	c->sched.beta2 = le_get_f64(h + H_BETA2);
	c->sched.eps = le_get_f64(h + H_EPS);
	c->sched.clip = le_get_f64(h + H_CLIP);
	c->sched.decay = le_get_u64(h + H_DECAY);
	if (c->sched.kind > CKPT_SCHED_WSD || !finite_in(c->sched.lr, 0, 1e30) ||
	    !finite_in(c->sched.min_lr_frac, 0, 1) || !finite_in(c->sched.weight_decay, 0, 1e30) ||
	    !finite_in(c->sched.beta1, 0, 1) || !finite_in(c->sched.beta2, 0, 1) ||
	    !finite_in(c->sched.eps, 0, 1) || !finite_in(c->sched.clip, 0, 1e30))
		return fail(c, "checkpoint has impossible optimizer settings");
	memcpy(c->tokenizer, h + H_TOKENIZER, CKPT_NAME_MAX);
	if (memchr(c->tokenizer, '\0', CKPT_NAME_MAX) == NULL)
		return fail(c, "checkpoint has an unterminated tokenizer name");

	want[CKPT_SEC_TABLE] = (uint64_t)c->n_tensors * CKPT_ENTRY_BYTES;
	want[CKPT_SEC_PARAMS] = c->n_params * sizeof(float);
	want[CKPT_SEC_M] = want[CKPT_SEC_V] = c->has_optim ? c->n_params * sizeof(float) : 0;
	for (int s = 0; s < nsec; s++) {
		const unsigned char *p = h + H_SECTIONS + 24 * s;

		c->sec_off[s] = le_get_u64(p);
		c->sec_len[s] = le_get_u64(p + 8);
		c->sec_hash[s] = le_get_u64(p + 16);
		if (s < CKPT_SEC_LOADER ? c->sec_len[s] != want[s] : c->sec_len[s] > CKPT_MAX_BLOB)
			return fail(c, "checkpoint is corrupt (%s has %" PRIu64 " bytes)",
				    sec_names[s], c->sec_len[s]);
		if (c->sec_off[s] % ALIGN || c->sec_off[s] < prev_end ||
		    c->sec_off[s] > c->file_size || c->sec_len[s] > c->file_size - c->sec_off[s])
			return fail(c, "checkpoint is corrupt (%s lies outside the file)", sec_names[s]);
		prev_end = c->sec_off[s] + c->sec_len[s];
	}
	if (prev_end != c->file_size)
		return fail(c, "checkpoint is corrupt (file size %" PRIu64 " does not match its sections)",
			    c->file_size);
	if (version == CKPT_VERSION_CLASSES && c->sec_len[CKPT_SEC_LABELS] == 0)
		return fail(c, "checkpoint is corrupt (a classifier without labels)");
	return 0;
}

static int check_table(struct ckpt *c, const unsigned char *t)
{
	uint64_t next = 0;

	c->tensors = xcalloc(c->n_tensors, sizeof *c->tensors);
	for (uint32_t i = 0; i < c->n_tensors; i++) {
		const unsigned char *p = t + (size_t)i * CKPT_ENTRY_BYTES;
		struct ckpt_tensor *e = &c->tensors[i];
		uint64_t prod = 1;

		memcpy(e->name, p + E_NAME, CKPT_NAME_MAX);
		if (memchr(e->name, '\0', CKPT_NAME_MAX) == NULL || e->name[0] == '\0')
			return fail(c, "checkpoint is corrupt (tensor %" PRIu32 " has a bad name)", i);
		e->dtype = le_get_u32(p + E_DTYPE);
		e->ndim = le_get_u32(p + E_NDIM);
		if (e->dtype != 0 || e->ndim < 1 || e->ndim > 4)
			return fail(c, "checkpoint is corrupt (tensor %s: type %" PRIu32 ", %" PRIu32
				    " dimensions)", e->name, e->dtype, e->ndim);
		for (uint32_t d = 0; d < 4; d++) {
			e->shape[d] = le_get_u64(p + E_SHAPE + 8 * d);
			if (d < e->ndim ? e->shape[d] < 1 || e->shape[d] > CKPT_MAX_PARAMS
					: e->shape[d] != 0)
				return fail(c, "checkpoint is corrupt (tensor %s has a bad shape)", e->name);
			if (d < e->ndim) {
				prod *= e->shape[d];
				if (prod > CKPT_MAX_PARAMS)
					return fail(c, "checkpoint is corrupt (tensor %s is too large)", e->name);
			}
		}
		e->offset = le_get_u64(p + E_OFFSET);
		e->count = le_get_u64(p + E_COUNT);
		if (e->count != prod || e->offset != next || e->count > c->n_params - next)
			return fail(c, "checkpoint is corrupt (tensor %s does not fit the weights)", e->name);
		next += e->count;
	}
	if (next != c->n_params)
		return fail(c, "checkpoint is corrupt (tensors cover %" PRIu64 " of %" PRIu64 " weights)",
			    next, c->n_params);
	return 0;
}

/* The file a path means: a run folder means its "latest", and a link is
 * followed one level so messages name the real checkpoint. */
static char *resolve(const char *path)
{
	struct stat st;
	char *p, target[4096];
	ssize_t n;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		size_t len = strlen(path) + 8;

		p = xmalloc(len);
		snprintf(p, len, "%s/latest", path);
	} else {
		p = xstrdup(path);
	}
	n = readlink(p, target, sizeof target - 1);
	if (n > 0) {
		const char *slash = strrchr(p, '/');
		size_t dir = target[0] == '/' || !slash ? 0 : (size_t)(slash - p) + 1;
		size_t len = dir + (size_t)n + 1;
		char *q = xmalloc(len);

		target[n] = '\0';
		snprintf(q, len, "%.*s%s", (int)dir, p, target);
		free(p);
		p = q;
	}
	return p;
}

static int open_checked(struct ckpt *c)
{
	unsigned char h[CKPT_HEADER_BYTES], *t;
	struct stat st;
	ssize_t got;
	int r;

	c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0)
		return fail(c, "cannot open checkpoint: %s", strerror(errno));
	if (fstat(c->fd, &st) != 0)
		return fail(c, "cannot stat checkpoint: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(c, "checkpoint is not a regular file");
	do
		got = pread(c->fd, h, sizeof h, 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return fail(c, "cannot read checkpoint: %s", strerror(errno));
	if (got >= 8 && memcmp(h, CKPT_MAGIC, 8) != 0)
		return fail(c, "not a gpt checkpoint (bad magic)");
	if ((size_t)got < sizeof h)
		return fail(c, "checkpoint is truncated (%zd bytes, the header alone needs %u)",
			    got, CKPT_HEADER_BYTES);
	if (check_header(c, h) != 0)
		return -1;
	if ((uint64_t)st.st_size < c->file_size)
		return fail(c, "checkpoint is truncated (%" PRIu64 " of %" PRIu64 " bytes)",
			    (uint64_t)st.st_size, c->file_size);
	if ((uint64_t)st.st_size > c->file_size)
		return fail(c, "checkpoint has %" PRIu64 " bytes of trailing garbage",
			    (uint64_t)st.st_size - c->file_size);
	t = xmalloc((size_t)c->sec_len[CKPT_SEC_TABLE]);
	r = read_section(c, CKPT_SEC_TABLE, t);
	if (r == 0)
		r = check_table(c, t);
	free(t);
	if (r != 0)
		return r;
	c->loader_len = (size_t)c->sec_len[CKPT_SEC_LOADER];
	c->loader = xmalloc(c->loader_len + 1);
	if (read_section(c, CKPT_SEC_LOADER, c->loader) != 0)
		return -1;
	c->settings_len = (size_t)c->sec_len[CKPT_SEC_SETTINGS];
	c->settings = xmalloc(c->settings_len + 1);
	if (read_section(c, CKPT_SEC_SETTINGS, c->settings) != 0)
		return -1;
	c->settings[c->settings_len] = '\0';
	if (strlen(c->settings) != c->settings_len)
		return fail(c, "checkpoint is corrupt (NUL byte in settings)");
	if (c->model.classes) {
		uint32_t lines = 0;
		int empty = 0;

		c->labels_len = (size_t)c->sec_len[CKPT_SEC_LABELS];
		c->labels = xmalloc(c->labels_len + 1);
		if (read_section(c, CKPT_SEC_LABELS, c->labels) != 0)
			return -1;
		c->labels[c->labels_len] = '\0';
		for (size_t i = 0; i < c->labels_len; i++) {
			unsigned char b = (unsigned char)c->labels[i];
			if (b == '\n') {
				empty |= i == 0 || c->labels[i - 1] == '\n';
				lines++;
			} else if (b < 0x20 || b == 0x7f) {
				empty = 1;
			}
		}
		if (empty || lines != c->model.classes || c->labels[c->labels_len - 1] != '\n')
			return fail(c, "checkpoint is corrupt (labels do not name its %" PRIu32 " classes)",
				    c->model.classes);
	}
	return 0;
}

int ckpt_open(struct ckpt *c, const char *path)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->path = resolve(path);
	if (open_checked(c) != 0) {
		char err[sizeof c->err];

		memcpy(err, c->err, sizeof err);
		ckpt_close(c);
		memcpy(c->err, err, sizeof err);
		return -1;
	}
	return 0;
}

int ckpt_read_params(struct ckpt *c, float *dst)
{
	return read_section(c, CKPT_SEC_PARAMS, dst);
}

int ckpt_read_optim(struct ckpt *c, float *m, float *v)
{
	if (!c->has_optim)
		return fail(c, "checkpoint holds weights only, no optimizer state");
	if (read_section(c, CKPT_SEC_M, m) != 0)
		return -1;
	return read_section(c, CKPT_SEC_V, v);
}

int ckpt_verify(struct ckpt *c)
{
	static const int secs[] = { CKPT_SEC_PARAMS, CKPT_SEC_M, CKPT_SEC_V };
	unsigned char *buf = xmalloc(CHUNK);
	XXH64_state_t *st = XXH64_createState();
	int r = 0;

	if (!st)
		die("out of memory");
	for (size_t i = 0; r == 0 && i < sizeof secs / sizeof secs[0]; i++) {
		int s = secs[i];
		uint64_t off = c->sec_off[s], left = c->sec_len[s];

		XXH64_reset(st, 0);
		while (r == 0 && left) {
			uint64_t k = left < CHUNK ? left : CHUNK;

			r = read_at(c, buf, off, k, st);
			off += k;
			left -= k;
		}
		if (r == 0 && XXH64_digest(st) != c->sec_hash[s])
			r = fail(c, "checkpoint is corrupt (checksum mismatch in %s)", sec_names[s]);
	}
	XXH64_freeState(st);
	free(buf);
	return r;
}

void ckpt_close(struct ckpt *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->tensors);
	free(c->loader);
	free(c->settings);
	free(c->labels);
	free(c->path);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

int ckpt_match_tensors(struct ckpt *c, const struct ckpt_tensor *want, uint32_t n)
{
	if (n != c->n_tensors)
		return fail(c, "checkpoint has %" PRIu32 " tensors, the model %" PRIu32,
			    c->n_tensors, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct ckpt_tensor *a = &c->tensors[i], *b = &want[i];

		if (strncmp(a->name, b->name, CKPT_NAME_MAX) != 0 || a->ndim != b->ndim ||
		    memcmp(a->shape, b->shape, sizeof a->shape) != 0 ||
		    a->offset != b->offset || a->count != b->count)
			return fail(c, "checkpoint tensor %" PRIu32 " (%s) does not match the model's (%s)",
				    i, a->name, b->name);
	}
	return 0;
}

char *ckpt_run_path(const char *run, uint64_t step)
{
	size_t n = strlen(run) + 40;
	char *p = xmalloc(n);

	snprintf(p, n, "%s/ckpt-%08" PRIu64 ".gpt", run, step);
	return p;
}

void ckpt_run_set_latest(const char *run, uint64_t step)
{
	size_t n = strlen(run) + 64;
	char *tmp = xmalloc(n), *dst = xmalloc(n), target[40];

	snprintf(target, sizeof target, "ckpt-%08" PRIu64 ".gpt", step);
	snprintf(tmp, n, "%s/.latest.tmp.%ld", run, (long)getpid());
	snprintf(dst, n, "%s/latest", run);
	unlink(tmp);
	if (symlink(target, tmp) != 0)
		die_errno("cannot create link '%s'", tmp);
	if (rename(tmp, dst) != 0) {
		unlink(tmp);
		die_errno("cannot rename '%s' to '%s'", tmp, dst);
	}
	free(tmp);
	free(dst);
}

/* Step of a name "ckpt-NNNNNNNN.gpt", or -1 for any other name. */
static int parse_name(const char *s, uint64_t *step)
{
	uint64_t v = 0;
	const char *p = s + 5;

	if (strncmp(s, "ckpt-", 5) != 0 || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > UINT64_MAX / 10 - 1)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (strcmp(p, ".gpt") != 0)
		return -1;
	*step = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

uint64_t *ckpt_run_list(const char *run, size_t *n)
{
	DIR *d = opendir(run);
	struct dirent *e;
	uint64_t *v = NULL;
	size_t cap = 0;

	*n = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		uint64_t step;

		if (parse_name(e->d_name, &step) != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, xmul(cap, sizeof *v));
		}
		v[(*n)++] = step;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof *v, cmp_u64);
	return v;
}

int ckpt_run_prune(const char *run, unsigned keep)
{
	size_t n, i, left;
	uint64_t *steps = ckpt_run_list(run, &n), latest = UINT64_MAX;
	size_t ln = strlen(run) + 8;
	char *lpath = xmalloc(ln), target[256];
	ssize_t tl;
	int removed = 0;

	snprintf(lpath, ln, "%s/latest", run);
	tl = readlink(lpath, target, sizeof target - 1);
	if (tl > 0) {
		target[tl] = '\0';
		if (parse_name(target, &latest) != 0)
			latest = UINT64_MAX;
	}
	free(lpath);
	left = n;
	for (i = 0; keep && i < n && left > keep; i++) {
		char *p;

		if (steps[i] == latest)
			continue;
		p = ckpt_run_path(run, steps[i]);
		if (unlink(p) != 0 && errno != ENOENT)
			die_errno("cannot remove '%s'", p);
		free(p);
		left--;
		removed++;
	}
	free(steps);
	return removed;
}

/* Whether a and b name one file (or, when either is missing, one path). */
static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	return strcmp(a, b) == 0;
}

char *ckpt_run_newest_good(const char *run, const char *bad)
{
	size_t n;
	uint64_t *steps = ckpt_run_list(run, &n), below = UINT64_MAX;
	const char *base = bad ? strrchr(bad, '/') : NULL;
	char *found = NULL;

	if (bad && parse_name(base ? base + 1 : bad, &below) != 0)
		below = UINT64_MAX;
	for (size_t i = n; i-- > 0 && !found;) {
		char *p = ckpt_run_path(run, steps[i]);
		struct ckpt c;

		if (steps[i] < below && !(bad && same_file(p, bad)) && ckpt_open(&c, p) == 0) {
			if (ckpt_verify(&c) == 0)
				found = p;
			ckpt_close(&c);
		}
		if (!found)
			free(p);
	}
	free(steps);
	return found;
}

/* Whether name is a temporary of ckpt_write, ckpt_run_set_latest or an
 * afile of the run folder: "." NAME ".tmp." SUFFIX for a run file NAME. */
static int stale_temp(const char *name)
{
	static const char *const files[] = { "latest", "log.tsv", "config" };
	const char *t = strstr(name, ".tmp.");
	uint64_t step;
	char stem[256];
	size_t len;

	if (name[0] != '.' || !t || !t[5])
		return 0;
	len = (size_t)(t - name) - 1;
	if (len >= sizeof stem)
		return 0;
	memcpy(stem, name + 1, len);
	stem[len] = '\0';
	if (parse_name(stem, &step) == 0)
		return 1;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		if (strcmp(stem, files[i]) == 0)
			return 1;
	return 0;
}

int ckpt_run_clean(const char *run)
{
	DIR *d = opendir(run);
	struct dirent *e;
	int removed = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t n;
		char *p;

		if (!stale_temp(e->d_name))
			continue;
		n = strlen(run) + strlen(e->d_name) + 2;
		p = xmalloc(n);
		snprintf(p, n, "%s/%s", run, e->d_name);
		if (unlink(p) == 0)
			removed++;
		else if (errno != ENOENT)
			die_errno("cannot remove '%s'", p);
		free(p);
	}
	closedir(d);
	return removed;
}
