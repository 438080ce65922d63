/* model: GPT-2 on the CPU, the reference engine.  Float32 forward and
 * backward passes with OpenMP threads and CBLAS (OpenBLAS) matrix products,
 * checked against PyTorch (tests/gen_model_fixtures.py).
 *
 * Offers: the configuration (gpt_config_*), the model (gpt_model_*), a small
 * seeded random generator whose state can be saved (gpt_rng_*), and the tie
 * to the optimizer (gpt_model_adamw_init, see optim.h).
 *
 * Memory: gpt_model_init allocates the parameters; gpt_model_plan allocates
 * gradients and activations once for a batch shape; nothing is allocated
 * per step.  Everything is owned by the model and released by
 * gpt_model_free.  Pointers returned (params, grads, logits, tensors) stay
 * valid until gpt_model_free (logits: see gpt_model_logits).
 *
 * The model.  GPT-2 as OpenAI built it: token embedding wte and learned
 * positional embedding wpe, n_layer pre-LayerNorm blocks
 *     x = x + attn_proj(causal_self_attention(ln_1(x)))
 *     x = x + mlp_proj(gelu_tanh(mlp_fc(ln_2(x))))
 * then ln_f and the output head: logits = ln_f(x) . W^T, with W = wte when
 * tied, else a separate lm_head.  The head has no bias.  LayerNorm has a
 * weight and a bias, eps 1e-5.  Dropout where GPT-2 has it (the embedding
 * output, the attention weights, each residual branch), off unless
 * gpt_model_dropout turns it on for the training passes; dropout.h
 * defines the masks.
 *
 * Parameters live in ONE contiguous float32 buffer (m->params, n_params
 * floats); m->grads has the same layout.  m->tensors[0..n_tensors) names
 * every tensor, in buffer order, with its shape and offset:
 *     wte.weight              [padded_vocab, n_embd]
 *     wpe.weight              [n_ctx, n_embd]
 *   for each layer i:
 *     h.i.ln_1.weight         [n_embd]          h.i.ln_1.bias [n_embd]
 *     h.i.attn.c_attn.weight  [3*n_embd, n_embd]  (rows: q, k, v; heads
 *                                                 in order within each)
 *     h.i.attn.c_attn.bias    [3*n_embd]        (only when qkv_bias)
 *     h.i.attn.c_proj.weight  [n_embd, n_embd]
 *     h.i.attn.c_proj.bias    [n_embd]          (only when bias)
 *     h.i.ln_2.weight, h.i.ln_2.bias [n_embd]
 *     h.i.mlp.c_fc.weight     [4*n_embd, n_embd]
 *     h.i.mlp.c_fc.bias       [4*n_embd]        (only when bias)
 *     h.i.mlp.c_proj.weight   [n_embd, 4*n_embd]
 *     h.i.mlp.c_proj.bias     [n_embd]          (only when bias)
 *     ln_f.weight, ln_f.bias  [n_embd]
 *     lm_head.weight          [padded_vocab, n_embd]  (only when untied)
 *     cls.weight [n_classes, n_embd], cls.bias [n_classes]  (only in a
 *                             classifier, n_classes > 0)
 * Matrices are stored [out, in] row-major, as torch.nn.Linear.  The names
 * are Hugging Face GPT-2's; note Hugging Face stores c_attn, c_proj and
 * c_fc weights as Conv1D, i.e. [in, out]: transpose them on import/export,
 * and drop (or zero-fill) the vocabulary padding rows.
 *
 * Vocabulary padding.  padded_vocab is vocab_size rounded up to a multiple
 * of 128.  Padding rows of wte/lm_head are zero after init, get zero
 * gradient, and are never predicted: the softmax runs over the first
 * vocab_size logits only, and the padding logits read -INFINITY.
 *
 * Initialisation (gpt_model_init_weights), as GPT-2: every matrix and both
 * embeddings normal(0, 0.02), except attn.c_proj.weight and
 * mlp.c_proj.weight normal(0, 0.02/sqrt(2*n_layer)); biases 0; LayerNorm
 * weight 1, bias 0; padding rows 0.  The normal deviate of the parameter at
 * buffer offset k is
 *     u1 = (s[2k]   >> 11) * 2^-53,  u2 = (s[2k+1] >> 11) * 2^-53,
 *     z  = sqrt(-2 ln(1 - u1)) * cos(2 pi u2)     (in double)
 *     param = (float)(std * z)
 * where s[j] is output j (0-based) of splitmix64 seeded with the seed
 * (state += 0x9E3779B97F4A7C15; z = state; z = (z ^ z>>30) *
 * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31).
 * So a weight depends only on the seed and its offset, and
 * tests/gen_model_fixtures.py reproduces the init exactly in Python.
 *
 * Loss.  gpt_model_forward with targets computes the mean cross-entropy
 * over the positions whose target is not GPT_IGNORE; those positions do
 * not count (no loss, no gradient).  gpt_model_backward(m, scale) ADDS
 * scale * d(mean loss)/d(params) into m->grads.  Gradient accumulation over
 * A micro-batches: gpt_model_zero_grad once, then per micro-batch forward +
 * backward(m, 1.0f/A), then one optimizer step.
 *
 * Threads and reproducibility.  The model uses omp_get_max_threads()
 * threads, read at gpt_model_plan (set OMP_NUM_THREADS to choose).  Matrix
 * products are split among those threads by the model itself, and
 * gpt_model_plan sets OpenBLAS to one thread (openblas_set_num_threads(1))
 * so that two thread pools do not fight over the cores; code that wants
 * threaded OpenBLAS after that sets it back.  Results are bit-identical
 * run to run on one machine with the same thread count: every reduction
 * is done in a fixed order, never by atomics.  Different thread counts or
 * CPUs may differ in the last bits.
 *
 * Errors.  Invalid configurations and out-of-range token ids die() with a
 * message; callers validate untrusted input first (gpt_config_check). */
#ifndef GPT_MODEL_H
#define GPT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dropout.h"
#include "optim.h"

/* A target equal to this does not count in the loss. */
#define GPT_IGNORE UINT32_MAX

/* The model family a configuration describes. */
enum gpt_arch {
	GPT_ARCH_GPT2 = 0,  /* the transformer above (the default: zero) */
	GPT_ARCH_LSTM = 1   /* the character-level LSTM (below) */
};

struct gpt_config {
	int arch;         /* enum gpt_arch */
	int n_layer;      /* transformer blocks; an LSTM's stacked layers */
	int n_head;       /* attention heads; n_embd % n_head == 0 */
	int n_embd;       /* width */
	int n_ctx;        /* maximum sequence length (rows of wpe) */
	int vocab_size;   /* real vocabulary: token ids are < vocab_size */
	int padded_vocab; /* vocab_size rounded up to 128; gpt_config_finish */
	int tied;         /* 1: the head is wte; 0: a separate lm_head */
	int bias;         /* 1: attn.c_proj, mlp.c_fc, mlp.c_proj have biases */
	int qkv_bias;     /* 1: attn.c_attn has a bias */
	int n_classes;    /* 0: a language model; else a classifier with a
	                     head cls.weight [n_classes, n_embd] and cls.bias
	                     on the last token's final hidden state */
	int n_input;      /* an LSTM's embedding width E; 0 for GPT-2 */
};

/* The LSTM (arch GPT_ARCH_LSTM), Karpathy's char-rnn as PyTorch writes
 * it: an embedding, n_layer stacked LSTM layers of hidden size n_embd (H),
 * a linear decoder to the vocabulary.  n_head is 1, tied 0, bias 1,
 * qkv_bias 0, n_classes 0; n_ctx bounds the window a forward takes and
 * a decoder's positions, not what the model can see (its state carries
 * on).  The tensors, in buffer order, with PyTorch's names and shapes
 * (nn.Embedding, nn.LSTM(batch_first=True), nn.Linear):
 *     embedding.weight        [padded_vocab, E]
 *   for each layer k (input width I = E for k = 0, else H):
 *     lstm.weight_ih_l{k}     [4H, I]   rows: gates i, f, g, o
 *     lstm.weight_hh_l{k}     [4H, H]
 *     lstm.bias_ih_l{k}, lstm.bias_hh_l{k}  [4H]
 *     decoder.weight          [padded_vocab, H]
 *     decoder.bias            [padded_vocab]
 * Per layer and time step, with x the layer's input and (h, c) its state:
 *     z = W_ih x + b_ih + W_hh h + b_hh;  i, f, o = sigmoid(z_i, z_f, z_o),
 *     g = tanh(z_g);  c = f c + i g;  h = o tanh(c)
 * and the logits are decoder(h of the top layer).  Dropout (when on)
 * multiplies each layer's output h before the next layer, never the top
 * layer's (nn.LSTM's dropout): site k for layer k's output, index
 * (row * n_ctx + t) * H + j as dropout.h says.
 *
 * The carried state.  A plan of B rows holds B rows of state, h and c of
 * each layer: gpt_model_state_floats(m, B) floats laid out
 * [layer][h, c][row][H].  A forward on B rows starts from rows 0..B-1 of
 * it and leaves there the state after its last position, so consecutive
 * windows of a stream continue where the last stopped (truncated
 * backpropagation through time: the backward stops at the window's
 * start).  gpt_model_plan zeroes it; gpt_model_state_set(m, NULL, B)
 * zeroes it too.  The padding rows of the embedding and the decoder are
 * zero and stay so, as GPT-2's.
 *
 * Initialisation: every LSTM tensor and the decoder uniform in
 * (-1/sqrt(H), 1/sqrt(H)) as PyTorch's, the embedding normal(0, 1), the
 * draws those of the offsets as above (u1 alone for a uniform). */
#define GPT_MAX_LSTM_INPUT 65536

/* The most classes a classifier may have. */
#define GPT_MAX_CLASSES 1024

/* Fill c from a preset name: "d12" (GPT-2 small, 124M, tied, biases),
 * "d24" (medium), "d36" (large), "d48" (XL), "163m" (d12 with untied head
 * and no qkv bias, the RTX 3090 experiment, which trained it with dropout
 * 0.1: gpt-train --dropout; a preset holds no dropout).  All use vocab
 * 50257 and context 1024; padded_vocab is set.  Returns 0, or -1 for an
 * unknown name (c untouched). */
int gpt_config_preset(const char *name, struct gpt_config *c);
/* An LSTM's configuration: vocabulary V, embedding E, hidden H, layers
 * L, windows and decoders of at most n_ctx positions; finished. */
void gpt_config_lstm(struct gpt_config *c, int V, int E, int H, int L, int n_ctx);
/* Set padded_vocab from vocab_size (next multiple of 128). */
void gpt_config_finish(struct gpt_config *c);
/* NULL when c is a valid, finished configuration within sane bounds (as
 * read from an untrusted file), else a short lowercase reason. */
const char *gpt_config_check(const struct gpt_config *c);
/* Parameter count without the vocabulary padding (the number to report;
 * "163m" gives 163,009,536 and "d12" 124,439,808). */
size_t gpt_config_count_params(const struct gpt_config *c);

struct gpt_tensor {
	char name[40];   /* e.g. "h.3.mlp.c_fc.weight" */
	int ndim;        /* 1 or 2 */
	int shape[2];    /* shape[1] is 1 when ndim == 1 */
	size_t offset;   /* in floats, into params and grads */
	size_t size;     /* shape[0] * shape[1] */
	int decay;       /* 1: AdamW weight decay applies (ndim == 2, see
	                    gpt_model_adamw_init) */
};

/* The tensor table: GPT-2's parameter layout, defined once (in model.c)
 * for every engine.  tensors[0..n_tensors) in buffer order as listed at
 * the top of this file; the indices below name tensors in it, and
 * GPT_NO_TENSOR marks one the configuration leaves out (a bias).  The
 * CPU model uses it as it is; another engine adds its own storage (the
 * GPU's bf16 copies) per entry. */
#define GPT_NO_TENSOR (-1)

struct gpt_layer_ix {
	int ln1w, ln1b, qkvw, qkvb, projw, projb;
	int ln2w, ln2b, fcw, fcb, mprojw, mprojb;
};

/* An LSTM layer's tensors. */
struct gpt_lstm_ix {
	int wih, whh, bih, bhh;
};

struct gpt_layout {
	int n_tensors;
	struct gpt_tensor *tensors;
	size_t n_params;           /* floats, padding included */
	int wte, wpe, lnfw, lnfb;  /* tensor indices */
	int head;                  /* == wte when tied */
	int cls_w, cls_b;          /* a classifier's head, else GPT_NO_TENSOR */
	struct gpt_layer_ix *layer; /* n_layer entries (GPT-2) */
	/* an LSTM's: every GPT-2 index above is GPT_NO_TENSOR, layer NULL */
	int emb, dec_w, dec_b;
	struct gpt_lstm_ix *lstm;   /* n_layer entries (LSTM), else NULL */
};

/* Build the table for c (dies unless gpt_config_check(c) passes); owned
 * by L, released by gpt_layout_free. */
void gpt_layout_init(struct gpt_layout *L, const struct gpt_config *c);
void gpt_layout_free(struct gpt_layout *L);

struct gpt_model_acts; /* private */
struct gpt_lstm_acts;  /* private */

struct gpt_model {
	struct gpt_config cfg;
	struct gpt_layout layout;
	int n_tensors;                /* layout.n_tensors */
	struct gpt_tensor *tensors;   /* layout.tensors */
	size_t n_params;       /* floats in params (padding included) */
	float *params;
	float *grads;          /* NULL until gpt_model_plan(..., training=1) */
	/* planned shape; 0 before gpt_model_plan */
	int plan_B, plan_T, plan_training;
	/* results of the last forward with targets */
	float loss;            /* mean over counted positions; 0 if none */
	long n_counted;        /* positions that counted */
	struct gpt_dropout drop; /* p == 0: off (gpt_model_dropout) */
	struct gpt_model_acts *acts;
	struct gpt_lstm_acts *lstm; /* an LSTM's activations and state */
};

/* Build the tensor table and allocate the (zeroed) parameters for c, which
 * must pass gpt_config_check (dies otherwise). */
void gpt_model_init(struct gpt_model *m, const struct gpt_config *c);
/* GPT-2 initialisation from seed (see above).  Deterministic, any threads. */
void gpt_model_init_weights(struct gpt_model *m, uint64_t seed);
/* The tensor named name, or NULL. */
const struct gpt_tensor *gpt_model_tensor(const struct gpt_model *m,
                                          const char *name);
/* Allocate activations (and, when training, gradients and backward
 * buffers) for batches of up to B sequences of up to T <= n_ctx tokens.
 * May be called again to re-plan; grads are kept (zeroed on first plan). */
void gpt_model_plan(struct gpt_model *m, int B, int T, int training);
/* Forward pass on inputs[B*T] (row-major, B sequences of T tokens), with
 * B <= plan_B, T <= plan_T.  targets[B*T] (or NULL: no loss, returns 0)
 * are the next tokens, GPT_IGNORE where a position must not count.
 * Returns the mean loss (also in m->loss) and sets m->n_counted. */
float gpt_model_forward(struct gpt_model *m, const uint32_t *inputs,
                        const uint32_t *targets, int B, int T);
/* Logits of the last forward: B*T rows of padded_vocab floats (the
 * first vocab_size count; padding entries are -INFINITY).  Valid until the
 * next forward or backward (backward overwrites them). */
float *gpt_model_logits(struct gpt_model *m);
/* Set m->grads to zero. */
void gpt_model_zero_grad(struct gpt_model *m);
/* Add scale * gradient of the last forward's mean loss into m->grads.
 * Needs plan(training=1) and a forward with targets just before. */
void gpt_model_backward(struct gpt_model *m, float scale);
void gpt_model_free(struct gpt_model *m);
/* Classification (n_classes > 0).  gpt_model_classify runs the blocks on
 * inputs[B*T] and the head on each sequence's hidden state after ln_f at
 * position last[b] (its last real token; later positions are padding),
 * giving B rows of n_classes logits (gpt_model_class_logits); with labels
 * (class ids, or GPT_IGNORE for a row that does not count) it returns the
 * mean cross-entropy over the rows that count and sets m->n_counted.
 * gpt_model_classify_backward adds scale * its gradient for the tensors
 * `trainable` names, leaving every other gradient as it was, and stops the
 * backward pass where nothing below is trained:
 *   GPT_TRAIN_HEAD        cls.weight and cls.bias
 *   GPT_TRAIN_LAST_BLOCK  those, ln_f and the last block (the series')
 *   GPT_TRAIN_ALL         every tensor */
enum gpt_trainable { GPT_TRAIN_HEAD, GPT_TRAIN_LAST_BLOCK, GPT_TRAIN_ALL };
float gpt_model_classify(struct gpt_model *m, const uint32_t *inputs, const int *last,
                         const uint32_t *labels, int B, int T);
const float *gpt_model_class_logits(const struct gpt_model *m);
void gpt_model_classify_backward(struct gpt_model *m, float scale, enum gpt_trainable trainable);
/* 1 when tensor t gets a gradient (and an update) under trainable. */
int gpt_tensor_trainable(const struct gpt_layout *L, int t, enum gpt_trainable trainable,
                         int n_layer);
/* Dropout with probability p (0: off, the default) in the forward passes
 * from now on and the backward after each, with the masks of key for
 * rows numbered from row0 (dropout.h).  With p == 0 every result is
 * the same, bit for bit, as a model that never heard of dropout.  The
 * forward and the backward after it must see the same setting. */
void gpt_model_dropout(struct gpt_model *m, float p, uint64_t key, uint64_t row0);

/* An LSTM's carried state (above): floats for B rows (0 for GPT-2);
 * get copies rows 0..B-1 into dst, set copies them from src (NULL:
 * zeros).  B <= plan_B. */
size_t gpt_model_state_floats(const struct gpt_model *m, int B);
void gpt_model_state_get(const struct gpt_model *m, float *dst, int B);
void gpt_model_state_set(struct gpt_model *m, const float *src, int B);

/* An LSTM one token at a time (sampling), with a state of its own: the
 * model's carried state and plan are untouched, so a trainer may sample
 * between steps.  feed returns the logits after id (padded_vocab
 * floats, padding -INFINITY, valid until the next feed); reset goes back
 * to the zero state.  Reads m's weights as they are at each feed. */
struct gpt_lstm_step;
struct gpt_lstm_step *gpt_lstm_step_open(const struct gpt_model *m);
const float *gpt_lstm_step_feed(struct gpt_lstm_step *s, uint32_t id);
void gpt_lstm_step_reset(struct gpt_lstm_step *s);
void gpt_lstm_step_close(struct gpt_lstm_step *s);

/* Initialise opt for this model's parameter buffer with AdamW decay on the
 * tensors whose decay flag is set: every 2-D tensor, i.e. all matrices AND
 * both embeddings (wte, wpe) and lm_head, as GPT-2/nanoGPT do; biases and
 * LayerNorm parameters are not decayed. */
void gpt_model_adamw_init(const struct gpt_model *m, struct adamw *opt,
                          const struct adamw_config *c);

/* A seeded generator for the trainer (sampling, data order): xoshiro256**
 * seeded through splitmix64.  The state is plain data: save and restore
 * s[] to continue the exact stream. */
struct gpt_rng { uint64_t s[4]; };
void gpt_rng_seed(struct gpt_rng *r, uint64_t seed);
uint64_t gpt_rng_next(struct gpt_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double gpt_rng_uniform(struct gpt_rng *r);

#endif
