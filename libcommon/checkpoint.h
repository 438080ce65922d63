/* checkpoint: one file holding everything a training run needs to go on
 * bit for bit (format in man/man5/gpt-checkpoint.5), and the layout of a
 * run folder (RUN/ckpt-STEP.gpt, RUN/latest, RUN/log.tsv, RUN/config,
 * RUN/lock).
 *
 * Writing: fill a struct ckpt (pointers are borrowed, never freed) and
 * call ckpt_write; the file appears atomically under its final name.
 * Reading: ckpt_open checks the header, the tensor table and the small
 * sections (loader position, settings) and keeps the file open;
 * ckpt_read_params / ckpt_read_optim then fill caller-owned arrays,
 * each verified against its checksum; ckpt_verify checks every checksum
 * without keeping the arrays; ckpt_close frees what ckpt_open
 * allocated (tensors, loader, settings).  Reading functions return 0,
 * or -1 with a one-line message naming the file in c->err; nothing they
 * do trusts a size before it is bounded. */
#ifndef GPT_CHECKPOINT_H
#define GPT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_MAGIC "GPTCKPT\0"
#define CKPT_VERSION 1u            /* a language model's */
#define CKPT_VERSION_CLASSES 2u    /* a classifier's: classes and labels */
#define CKPT_VERSION_ARCH 3u       /* another family's (an LSTM): version 2's
                                      layout with the architecture and its
                                      embedding width in the header */
#define CKPT_HEADER_BYTES 512u
#define CKPT_NAME_MAX 64          /* tensor and tokenizer names, with NUL */
#define CKPT_ENTRY_BYTES 128u     /* one tensor table entry */
#define CKPT_MAX_TENSORS 65536u
#define CKPT_MAX_PARAMS (1ull << 36)   /* 64G floats */
#define CKPT_MAX_BLOB (16u << 20)      /* loader and settings sections */

enum ckpt_section {
	CKPT_SEC_TABLE = 0, CKPT_SEC_PARAMS, CKPT_SEC_M, CKPT_SEC_V,
	CKPT_SEC_LOADER, CKPT_SEC_SETTINGS,
	CKPT_SEC_LABELS,           /* versions 2 and 3 */
	CKPT_NSEC
};

/* Schedule kinds, as stored. */
enum ckpt_schedule {
	CKPT_SCHED_COSINE = 0, CKPT_SCHED_LINEAR, CKPT_SCHED_CONSTANT, CKPT_SCHED_WSD
};

struct ckpt_model {
	uint32_t layers, heads, width, context;
	uint32_t vocab;          /* real vocabulary size (ids predicted) */
	uint32_t padded_vocab;   /* rows of the embedding table */
	uint32_t tied;           /* 1: output head is the token embedding */
	uint32_t bias;           /* 1: attn.c_proj, mlp.c_fc, mlp.c_proj biases */
	uint32_t qkv_bias;       /* 1: attn.c_attn bias */
	uint32_t classes;        /* 0: a language model; 2..1024: a classifier */
	uint32_t arch;           /* enum gpt_arch: 0 GPT-2, 1 LSTM */
	uint32_t input;          /* an LSTM's embedding width; 0 for GPT-2 */
};

struct ckpt_schedule_cfg {
	uint32_t kind;           /* enum ckpt_schedule */
	double lr, min_lr_frac;
	uint64_t warmup, total_steps;
	uint64_t decay;          /* WSD: steps of the final decay */
	double weight_decay, beta1, beta2, eps, clip;
};

struct ckpt_tensor {
	char name[CKPT_NAME_MAX];   /* NUL-terminated */
	uint32_t dtype;             /* 0: float32, the only one so far */
	uint32_t ndim;              /* 1..4 */
	uint64_t shape[4];          /* unused dimensions are 0 */
	uint64_t offset;            /* first float in the parameter array */
	uint64_t count;             /* floats: product of shape */
};

struct ckpt {
	struct ckpt_model model;
	struct ckpt_schedule_cfg sched;
	uint64_t step;              /* optimizer steps done */
	uint64_t tokens;            /* training tokens consumed */
	uint64_t adam_step;         /* AdamW's t (bias correction) */
	uint64_t rng[4];            /* the trainer's random state */
	char tokenizer[CKPT_NAME_MAX];
	uint64_t n_params;          /* floats in params (and in m, v) */
	uint32_t n_tensors;
	int has_optim;              /* m and v present */
	struct ckpt_tensor *tensors;
	const float *params, *m, *v;    /* for ckpt_write only */
	void *loader;               /* data-loader position, opaque */
	size_t loader_len;
	char *settings;             /* resolved run settings, "key value\n" text */
	size_t settings_len;
	char *labels;               /* a classifier's: its labels, each ended by
	                               '\n', in class order (NUL-ended on read) */
	size_t labels_len;
	/* Reading state. */
	char *path;
	int fd;
	uint64_t file_size;
	uint64_t sec_off[CKPT_NSEC], sec_len[CKPT_NSEC], sec_hash[CKPT_NSEC];
	char err[512];
};

/* Write c to path atomically (temporary file, fsync, rename).  Needs
 * model, tensors/n_tensors, n_params, params; m and v when has_optim.
 * Dies (status 1) on I/O errors. */
void ckpt_write(const struct ckpt *c, const char *path);

/* Open and check a checkpoint; path may name a run folder, which means
 * its "latest".  On failure c->err says why and nothing stays open. */
int ckpt_open(struct ckpt *c, const char *path);
/* Fill dst[n_params] with the weights, verified. */
int ckpt_read_params(struct ckpt *c, float *dst);
/* Fill m and v [n_params], verified; fails when the file has none. */
int ckpt_read_optim(struct ckpt *c, float *m, float *v);
/* Verify the checksums of the weights and the moments too, reading them
 * once in chunks into nothing: 0 when the whole file is sound. */
int ckpt_verify(struct ckpt *c);
void ckpt_close(struct ckpt *c);

/* Check that the file's tensor table is exactly the given one (names,
 * shapes, offsets); 0 or -1 with c->err set. */
int ckpt_match_tensors(struct ckpt *c, const struct ckpt_tensor *want, uint32_t n);

/* Run folder layout. */
/* "RUN/ckpt-00001234.gpt"; caller frees. */
char *ckpt_run_path(const char *run, uint64_t step);
/* Point RUN/latest (a symbolic link) at the checkpoint of step, atomically. */
void ckpt_run_set_latest(const char *run, uint64_t step);
/* Remove all but the newest keep checkpoints of RUN (never the one
 * RUN/latest names); keep 0 keeps everything.  Returns how many went. */
int ckpt_run_prune(const char *run, unsigned keep);
/* Steps of the checkpoints in RUN, ascending; caller frees.  */
uint64_t *ckpt_run_list(const char *run, size_t *n);
/* The newest checkpoint of RUN that opens and verifies whole
 * (ckpt_verify), older than the checkpoint file bad (which may be NULL,
 * or name a file of another name: then any step); NULL when none.
 * Caller frees. */
char *ckpt_run_newest_good(const char *run, const char *bad);
/* Remove the temporary files a process killed while saving left in RUN
 * (".ckpt-*.gpt.tmp.*", ".latest.tmp.*", ".log.tsv.tmp.*",
 * ".config.tmp.*"); only safe while RUN is locked.  Returns how many
 * went. */
int ckpt_run_clean(const char *run);

#endif
