/* model: the GPT-2 training engine of gpt_cuda.h on the GPU: float32
 * master weights with bf16 copies in the tensor table of model.h,
 * activations planned in one allocation, the forward and backward passes
 * (layers.cu, kernels.cu), and AdamW on the device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt_cuda.h"
#include "gpt_cuda_infer.h"
#include "internal.h"

/* ---- the model ---- */

extern "C" struct gcuda_model *gcuda_model_init(const struct gpt_config *c)
{
	const char *why = gpt_config_check(c);
	struct gcuda_model *g;

	if (why)
		die("gpu model: bad configuration: '%s'", why);
	g = (struct gcuda_model *)xcalloc(1, sizeof *g);
	g->cfg = *c;
	/* model.h's tensor table; each tensor's bf16 copy starts aligned */
	gpt_layout_init(&g->L, c);
	g->boff = (size_t *)xcalloc((size_t)g->L.n_tensors, sizeof *g->boff);
	for (int i = 0; i < g->L.n_tensors; i++) {
		g->boff[i] = g->n_bf16;
		g->n_bf16 += (g->L.tensors[i].size + BF16_ALIGN - 1) / BF16_ALIGN * BF16_ALIGN;
	}

	ctx_init(&g->x);
	g->params = (float *)dalloc(&g->x, g->L.n_params * sizeof(float), "weights");
	g->wb = (bf16 *)dalloc(&g->x, g->n_bf16 * sizeof(bf16), "bf16 weights");
	CUDA_CHECK(cudaMemsetAsync(g->params, 0, g->L.n_params * sizeof(float), g->x.s));
	CUDA_CHECK(cudaMemsetAsync(g->wb, 0, g->n_bf16 * sizeof(bf16), g->x.s));
	g->norm = (float *)dalloc(&g->x, sizeof(float), "gradient norm");
	g->norm_part = (double *)dalloc(&g->x, GK_NORM_PARTS * sizeof(double), "gradient norm");
	CUDA_CHECK(cudaMemsetAsync(g->norm, 0, sizeof(float), g->x.s));
	CUDA_CHECK(cudaMallocHost((void **)&g->h_loss, 2 * sizeof(float)));
	g->counts = (int *)xcalloc((size_t)c->vocab_size, sizeof(int));
	adamw_config_default(&g->acfg);
	return g;
}

static void plan_free(struct gcuda_model *g)
{
	if (g->act_mem)
		dfree(&g->x, g->act_mem, g->act_bytes);
	if (g->att.D)
		attn_free(&g->x, &g->att, g->B, g->T, g->cfg.n_embd, g->cfg.n_head);
	if (g->d_stage)
		dfree(&g->x, g->d_stage, (4 * (size_t)g->B * g->T + 1) * sizeof(uint32_t));
	if (g->h_stage)
		CUDA_CHECK(cudaFreeHost(g->h_stage));
	if (g->d_last) {
		dfree(&g->x, g->d_last, (size_t)g->B * sizeof(int));
		dfree(&g->x, g->d_labels, (size_t)g->B * sizeof(uint32_t));
		dfree(&g->x, g->cls_logits, (size_t)g->B * g->cfg.n_classes * sizeof(float));
		dfree(&g->x, g->cls_loss, (size_t)g->B * sizeof(float));
		g->d_last = NULL;
	}
	free(g->layer);
	g->act_mem = NULL;
	g->d_stage = g->h_stage = NULL;
	g->layer = NULL;
}

extern "C" void gcuda_model_plan(struct gcuda_model *g, int B, int T, int training,
                                 int recompute)
{
	const struct gpt_config *c = &g->cfg;
	size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, H = (size_t)c->n_head;
	size_t BT, nl, at = 0, total;
	char *base;

	if (B < 1 || T < 1 || T > c->n_ctx)
		die("gpu model: bad batch shape: '%dx%d'", B, T);
	/* rows are counted in int: B*T by every kernel and cuBLASLt, B*H*T by
	 * the attention softmax and the log-sum-exp; 2^30 leaves the kernels'
	 * rounding up (rows + chunk - 1) room in an int */
	if ((size_t)B * (size_t)T * H > (size_t)1 << 30)
		die("gpu model: batch shape beyond 2^30 rows of attention (batch x context x "
		    "heads): '%dx%d'", B, T);
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	plan_free(g);
	BT = (size_t)B * T;
	if (training && !g->grads) {
		g->grads = (float *)dalloc(&g->x, g->L.n_params * sizeof(float), "gradients");
		CUDA_CHECK(cudaMemsetAsync(g->grads, 0, g->L.n_params * sizeof(float), g->x.s));
		g->norm_fresh = 0;
	}
	g->B = B;
	g->T = T;
	g->training = training;
	g->recompute = training && recompute;
	nl = training ? L : 1;
	g->layer = (struct glayer_acts *)xcalloc(L, sizeof *g->layer);

	/* two passes over the same carving: the first counts, the second
	 * hands out pointers into one allocation (each piece 256-aligned) */
	for (int pass = 0; pass < 2; pass++) {
		base = pass ? (char *)g->act_mem : NULL;
		at = 0;
#define TAKE(type, n) ((type *)(at += ((n) * sizeof(type) + 255) / 256 * 256, \
                               base ? base + at - ((n) * sizeof(type) + 255) / 256 * 256 : NULL))
		for (size_t l = 0; l < L; l++) {
			struct glayer_acts *la = &g->layer[l];
			int own = l < nl, shared = g->recompute && l > 0;
			if (!own) {
				*la = g->layer[0];
				continue;
			}
			la->ln1 = shared ? g->layer[0].ln1 : TAKE(bf16, BT * C);
			la->ln1_mean = TAKE(float, BT);
			la->ln1_rstd = TAKE(float, BT);
			la->qkv = TAKE(bf16, BT * 3 * C);
			la->lse = TAKE(float, BT * H);
			la->atty = TAKE(bf16, BT * C);
			la->res2 = TAKE(bf16, BT * C);
			la->ln2 = shared ? g->layer[0].ln2 : TAKE(bf16, BT * C);
			la->ln2_mean = TAKE(float, BT);
			la->ln2_rstd = TAKE(float, BT);
			la->fch = TAKE(bf16, BT * 4 * C);
			la->fch_gelu = shared ? g->layer[0].fch_gelu : TAKE(bf16, BT * 4 * C);
			la->res3 = TAKE(bf16, BT * C);
		}
		g->encoded = TAKE(bf16, BT * C);
		g->lnf = TAKE(bf16, BT * C);
		g->lnf_mean = TAKE(float, BT);
		g->lnf_rstd = TAKE(float, BT);
		/* a classifier has no language-model logits */
		g->logits = TAKE(bf16, c->n_classes ? 1 : BT * (size_t)c->padded_vocab);
		g->row_loss = TAKE(float, BT);
		g->row_lse = TAKE(float, BT);
		g->loss = TAKE(float, 1);
		g->dres = NULL;
		g->dres_bf = g->dC = g->dC2 = g->d4C = NULL;
		g->part = NULL;
		if (training) {
			g->dres = TAKE(float, BT * C);
			g->dres_bf = TAKE(bf16, BT * C);
			g->dC = TAKE(bf16, BT * C);
			g->dC2 = TAKE(bf16, BT * C);
			g->d4C = TAKE(bf16, BT * 4 * C);
			g->part = TAKE(float, (size_t)GK_PARTS * 4 * C);
		}
#undef TAKE
		if (!pass) {
			total = at;
			g->act_bytes = total;
			g->act_mem = dalloc(&g->x, total, "activations");
		}
	}
	attn_alloc(&g->x, &g->att, B, T, c->n_embd, c->n_head);
	g->d_stage = (uint32_t *)dalloc(&g->x, (4 * BT + 1) * sizeof(uint32_t), "token ids");
	if (c->n_classes) {
		g->d_last = (int *)dalloc(&g->x, (size_t)B * sizeof(int), "classifier rows");
		g->d_labels = (uint32_t *)dalloc(&g->x, (size_t)B * sizeof(uint32_t), "classifier rows");
		g->cls_logits = (float *)dalloc(&g->x, (size_t)B * c->n_classes * sizeof(float),
		                                "classifier logits");
		g->cls_loss = (float *)dalloc(&g->x, (size_t)B * sizeof(float), "classifier rows");
	}
	CUDA_CHECK(cudaMallocHost((void **)&g->h_stage, (4 * BT + 1) * sizeof(uint32_t)));
	g->has_targets = 0;
}

/* The same configuration is the same tensor table: the engine and the
 * cpu model both build theirs with gpt_layout_init. */
static void same_model(const struct gcuda_model *g, const struct gpt_model *m)
{
	if (memcmp(&g->cfg, &m->cfg, sizeof g->cfg) != 0)
		die("gpu model: the cpu model's configuration differs from the gpu engine's");
}

/* Refresh every bf16 copy from the float32 weights. */
static void refresh_bf16(struct gcuda_model *g)
{
	for (int i = 0; i < g->L.n_tensors; i++)
		k_f32_to_bf16(g->wb + g->boff[i], g->params + g->L.tensors[i].offset,
		              g->L.tensors[i].size, g->x.s);
}

extern "C" void gcuda_model_upload(struct gcuda_model *g, const struct gpt_model *m)
{
	same_model(g, m);
	CUDA_CHECK(cudaMemcpyAsync(g->params, m->params, g->L.n_params * sizeof(float),
	                           cudaMemcpyHostToDevice, g->x.s));
	refresh_bf16(g);
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_download(struct gcuda_model *g, struct gpt_model *m)
{
	same_model(g, m);
	CUDA_CHECK(cudaMemcpyAsync(m->params, g->params, g->L.n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_download_grads(struct gcuda_model *g, float *dst)
{
	if (!g->grads)
		die("gpu model: no gradients before a training plan");
	CUDA_CHECK(cudaMemcpyAsync(dst, g->grads, g->L.n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_upload_grads(struct gcuda_model *g, const float *src)
{
	if (!g->grads)
		die("gpu model: no gradients before a training plan");
	g->norm_fresh = 0;
	CUDA_CHECK(cudaMemcpyAsync(g->grads, src, g->L.n_params * sizeof(float),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_overlap(struct gcuda_model *g, struct gcuda_comm *k)
{
	if (!g->cs) {
		CUDA_CHECK(cudaStreamCreateWithFlags(&g->cs, cudaStreamNonBlocking));
		g->cev = (cudaEvent_t *)xcalloc((size_t)g->cfg.n_layer + 1, sizeof *g->cev);
		for (int i = 0; i <= g->cfg.n_layer; i++)
			CUDA_CHECK(cudaEventCreateWithFlags(&g->cev[i], cudaEventDisableTiming));
	}
	g->overlap = k;
}

extern "C" void gcuda_model_allreduce(struct gcuda_model *g, struct gcuda_comm *k)
{
	if (!g->grads)
		die("gpu model: no gradients before a training plan");
	g->norm_fresh = 0;
	if (g->pending) {
		/* the backward queued the sums; wait for them */
		gcuda_comm_wait(g->pending, g->cs);
		g->pending = NULL;
		return;
	}
	gcuda_comm_allreduce(k, g->grads, g->L.n_params, g->x.s);
}

int group_by_token(const uint32_t *inputs, size_t n, int V, int *cnt, uint32_t *order,
                   uint32_t *seg)
{
	int run = 0, nseg = 0;
	memset(cnt, 0, (size_t)V * sizeof *cnt);
	for (size_t i = 0; i < n; i++)
		cnt[inputs[i]]++;
	for (int v = 0; v < V; v++) {
		int k = cnt[v];
		cnt[v] = run;
		run += k;
	}
	for (size_t i = 0; i < n; i++)
		order[cnt[inputs[i]]++] = (uint32_t)i;
	for (size_t j = 0; j < n; j++)
		if (j == 0 || inputs[order[j]] != inputs[order[j - 1]])
			seg[nseg++] = (uint32_t)j;
	seg[nseg] = (uint32_t)n;
	return nseg;
}

/* Token ids to the device; with targets in training, also the positions
 * grouped by input token for the embedding backward (a stable counting
 * sort). */
static void stage_inputs(struct gcuda_model *g, const uint32_t *inputs,
                         const uint32_t *targets, int B, int T)
{
	const struct gpt_config *c = &g->cfg;
	size_t BT = (size_t)B * T, PBT = (size_t)g->B * g->T;
	uint32_t *in = g->h_stage, *tg = in + PBT, *order = tg + PBT, *seg = order + PBT;
	long counted = 0;
	int nseg = 0;

	if (!g->h_stage)
		die("gpu model: forward before gcuda_model_plan");
	if (B < 1 || T < 1 || B > g->B || T > g->T)
		die("gpu model: batch shape beyond the plan: '%dx%d'", B, T);
	/* the previous step's copy out of this buffer is complete: every
	 * forward ends in a wait for the loss, or the caller synced */
	for (size_t i = 0; i < BT; i++) {
		if (inputs[i] >= (uint32_t)c->vocab_size)
			die("gpu model: token id out of range: '%u'", inputs[i]);
		if (targets && targets[i] != GPT_IGNORE && targets[i] >= (uint32_t)c->vocab_size)
			die("gpu model: target id out of range: '%u'", targets[i]);
		if (targets && targets[i] != GPT_IGNORE)
			counted++;
	}
	memcpy(in, inputs, BT * sizeof *in);
	if (targets)
		memcpy(tg, targets, BT * sizeof *tg);
	if (targets && g->training)
		nseg = group_by_token(in, BT, c->vocab_size, g->counts, order, seg);
	phase(&g->x, "upload");
	CUDA_CHECK(cudaMemcpyAsync(g->d_stage, g->h_stage, (4 * PBT + 1) * sizeof(uint32_t),
	                           cudaMemcpyHostToDevice, g->x.s));
	g->fB = B;
	g->fT = T;
	g->has_targets = targets != NULL;
	g->counted = counted;
	g->nseg = nseg;
}

/* dlogits = (softmax - onehot) dscale, for a loss of scale / counted. */
static float loss_dscale(const struct gcuda_model *g, float scale)
{
	return g->counted ? scale / (float)g->counted : 0.0f;
}

/* Queue the forward pass (inputs already staged).  fused (training, with
 * targets): the loss kernel also leaves the logits' gradient for dscale
 * in place of the logits, so the backward starts at the head. */
/* The embeddings, the blocks and ln_f (inputs staged): the final hidden
 * states in g->lnf. */
static void trunk_queue(struct gcuda_model *g)
{
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int B = g->fB, T = g->fT, BT = B * T, C = c->n_embd, H = c->n_head;
	const uint32_t *in = g->d_stage;
	const bf16 *xin;

	const struct gpt_dropout *d = g->dropping ? &g->drop : NULL;

	phase(x, "embed");
	k_embed_fwd(g->encoded, in, W16(g, g->L.wte), W16(g, g->L.wpe), BT, T, C, x->s);
	if (d)
		k_drop_rows(g->encoded, g->encoded, NULL, d, 0, BT, T, C, c->n_ctx, x->s);
	xin = g->encoded;
	for (int l = 0; l < c->n_layer; l++) {
		const struct gpt_layer_ix *o = &g->L.layer[l];
		struct glayer_acts *la = &g->layer[l];
		struct att_drop ad = make_att_drop(d, 1 + 3 * l, H, c->n_ctx);
		phase(x, "ln1");
		k_layernorm_fwd(la->ln1, la->ln1_mean, la->ln1_rstd, xin, W16(g, o->ln1w),
		                W16(g, o->ln1b), BT, C, x->s);
		phase(x, "qkv");
		linear_fwd(x, la->qkv, la->ln1, W16(g, o->qkvw), W16(g, o->qkvb), NULL, BT, C, 3 * C);
		phase(x, "attention");
		attention_fwd(x, &g->att, la->atty, la->lse, la->qkv, B, T, C, H, &ad);
		phase(x, "proj+residual");
		if (d) { /* res2 = xin + dropout(proj(atty)) */
			linear_fwd(x, la->res2, la->atty, W16(g, o->projw), W16(g, o->projb), NULL, BT,
			           C, C);
			k_drop_rows(la->res2, la->res2, xin, d, 2 + 3 * l, BT, T, C, c->n_ctx, x->s);
		} else {
			linear_fwd(x, la->res2, la->atty, W16(g, o->projw), W16(g, o->projb), xin, BT,
			           C, C);
		}
		phase(x, "ln2");
		k_layernorm_fwd(la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, W16(g, o->ln2w),
		                W16(g, o->ln2b), BT, C, x->s);
		if (g->recompute) { /* the backward's recomputed GELU must be this one */
			phase(x, "fc");
			linear_fwd(x, la->fch, la->ln2, W16(g, o->fcw), W16(g, o->fcb), NULL, BT, C,
			           4 * C);
			phase(x, "gelu");
			k_gelu_fwd(la->fch_gelu, la->fch, (size_t)BT * 4 * C, x->s);
		} else {
			phase(x, "fc+gelu"); /* GELU in cuBLASLt's epilogue, fch its input */
			linear_gelu_fwd(x, la->fch_gelu, la->fch, la->ln2, W16(g, o->fcw),
			                W16(g, o->fcb), BT, C, 4 * C);
		}
		phase(x, "mlp proj+residual");
		if (d) {
			linear_fwd(x, la->res3, la->fch_gelu, W16(g, o->mprojw), W16(g, o->mprojb), NULL,
			           BT, 4 * C, C);
			k_drop_rows(la->res3, la->res3, la->res2, d, 3 + 3 * l, BT, T, C, c->n_ctx,
			            x->s);
		} else {
			linear_fwd(x, la->res3, la->fch_gelu, W16(g, o->mprojw), W16(g, o->mprojb),
			           la->res2, BT, 4 * C, C);
		}
		xin = la->res3;
	}
	phase(x, "lnf");
	k_layernorm_fwd(g->lnf, g->lnf_mean, g->lnf_rstd, xin, W16(g, g->L.lnfw), W16(g, g->L.lnfb),
	                BT, C, x->s);
}

static void forward_queue(struct gcuda_model *g, int fused, float dscale)
{
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int BT = g->fB * g->fT, C = c->n_embd;
	size_t PBT = (size_t)g->B * g->T;
	const uint32_t *tg = g->d_stage + PBT;

	if (c->n_classes)
		die("gpu model: a classifier runs through gcuda_model_classify, not the language "
		    "model's forward");
	trunk_queue(g);
	phase(x, "head");
	linear_fwd(x, g->logits, g->lnf, W16(g, g->L.head), NULL, NULL, BT, C, c->padded_vocab);
	if (g->has_targets) {
		phase(x, "loss");
		if (fused)
			k_xent_fused(g->logits, g->row_loss, g->row_lse, tg, dscale, BT, c->vocab_size,
			             c->padded_vocab, x->s);
		else
			k_xent_fwd(g->row_loss, g->row_lse, g->logits, tg, BT, c->vocab_size,
			           c->padded_vocab, x->s);
		k_sum(g->loss, g->row_loss, BT, x->s);
	}
}

static float read_loss(struct gcuda_model *g)
{
	phase(&g->x, "wait for the loss"); /* the GPU idles while the host reads it */
	CUDA_CHECK(cudaMemcpyAsync(g->h_loss, g->loss, sizeof(float), cudaMemcpyDeviceToHost,
	                           g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	return g->counted ? (float)((double)g->h_loss[0] / (double)g->counted) : 0.0f;
}

extern "C" float gcuda_model_forward(struct gcuda_model *g, const uint32_t *inputs,
                                     const uint32_t *targets, int B, int T)
{
	stage_inputs(g, inputs, targets, B, T);
	forward_queue(g, 0, 0.0f);
	if (!targets) {
		CUDA_CHECK(cudaStreamSynchronize(g->x.s));
		return 0.0f;
	}
	return read_loss(g);
}

extern "C" long gcuda_model_counted(const struct gcuda_model *g)
{
	return g->counted;
}

extern "C" void gcuda_model_logits(struct gcuda_model *g, int r0, int n, float *dst)
{
	const struct gpt_config *c = &g->cfg;
	size_t row = (size_t)c->padded_vocab;
	float *tmp;
	if (r0 < 0 || n < 0 || r0 + n > g->fB * g->fT)
		die("gpu model: logits rows out of range: '%d+%d'", r0, n);
	if (n == 0)
		return;
	tmp = (float *)dalloc(&g->x, (size_t)n * row * sizeof(float), "logits copy");
	k_logits_to_f32(tmp, g->logits + (size_t)r0 * row, n, c->vocab_size, c->padded_vocab,
	                g->x.s);
	CUDA_CHECK(cudaMemcpyAsync(dst, tmp, (size_t)n * row * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	dfree(&g->x, tmp, (size_t)n * row * sizeof(float));
}

extern "C" void gcuda_model_row_loss(struct gcuda_model *g, int r0, int n, float *dst)
{
	if (!g->has_targets)
		die("gpu model: row losses need a forward with targets just before");
	if (r0 < 0 || n < 0 || r0 + n > g->fB * g->fT)
		die("gpu model: loss rows out of range: '%d+%d'", r0, n);
	if (n == 0)
		return;
	CUDA_CHECK(cudaMemcpyAsync(dst, g->row_loss + r0, (size_t)n * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_zero_grad(struct gcuda_model *g)
{
	if (!g->grads)
		return;
	phase(&g->x, "zero grad");
	g->norm_fresh = 0;
	CUDA_CHECK(cudaMemsetAsync(g->grads, 0, g->L.n_params * sizeof(float), g->x.s));
}

static void need_backward(const struct gcuda_model *g)
{
	if (!g->training || !g->has_targets)
		die("gpu model: backward needs a training plan and a forward with targets");
}

/* Data parallel: queue the sum of grads[off, off + n) over the ranks on
 * the communication stream, after everything queued so far on the
 * compute stream (the kernels that made them). */
static void overlap_bucket(struct gcuda_model *g, int b, size_t off, size_t n)
{
	CUDA_CHECK(cudaEventRecord(g->cev[b], g->x.s));
	CUDA_CHECK(cudaStreamWaitEvent(g->cs, g->cev[b], 0));
	gcuda_comm_enqueue(g->overlap, g->grads + off, n, g->cs);
}

/* Queue the backward pass; have_dlogits: the fused forward left the
 * logits' gradient already. */
/* From g->dC, the gradient of ln_f's output: ln_f's backward, the
 * blocks' from the last down to block lo, and below block 0 (lo 0) the
 * embeddings'. */
static void trunk_backward_queue(struct gcuda_model *g, int lo)
{
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int B = g->fB, T = g->fT, BT = B * T, C = c->n_embd, H = c->n_head;
	size_t PBT = (size_t)g->B * g->T;
	const uint32_t *in = g->d_stage, *tg = in + PBT, *order = tg + PBT, *seg = order + PBT;
	const struct gpt_dropout *d = g->dropping ? &g->drop : NULL;

	phase(x, "lnf bwd");
	CUDA_CHECK(cudaMemsetAsync(g->dres, 0, (size_t)BT * C * sizeof(float), x->s));
	k_layernorm_bwd(g->dres, g->dres_bf, G32(g, g->L.lnfw), G32(g, g->L.lnfb), g->part, g->dC,
	                g->layer[c->n_layer - 1].res3, W16(g, g->L.lnfw), g->lnf_mean, g->lnf_rstd,
	                BT, C, x->s);
	for (int l = c->n_layer - 1; l >= lo; l--) {
		const struct gpt_layer_ix *o = &g->L.layer[l];
		struct glayer_acts *la = &g->layer[l];
		const bf16 *xin = l ? g->layer[l - 1].res3 : g->encoded;
		struct att_drop ad = make_att_drop(d, 1 + 3 * l, H, c->n_ctx);
		if (g->recompute) {
			phase(x, "recompute");
			k_layernorm_fwd(la->ln1, la->ln1_mean, la->ln1_rstd, xin, W16(g, o->ln1w),
			                W16(g, o->ln1b), BT, C, x->s);
			k_layernorm_fwd(la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, W16(g, o->ln2w),
			                W16(g, o->ln2b), BT, C, x->s);
			k_gelu_fwd(la->fch_gelu, la->fch, (size_t)BT * 4 * C, x->s);
		}
		/* a dropped branch's gradient: the residual's, masked (dres_bf
		 * is remade from dres by the LayerNorm backward below) */
		if (d)
			k_drop_rows(g->dres_bf, g->dres_bf, NULL, d, 3 + 3 * l, BT, T, C, c->n_ctx,
			            x->s);
		phase(x, "mlp proj+gelu bwd");
		/* and through the GELU: d4C is the gradient of its input fch (in
		 * the kernel with --recompute, as its forward: GPT_CUDA_GELU=kernel's
		 * arithmetic) */
		if (g->recompute) {
			linear_bwd(x, g->d4C, G32(g, o->mprojw), G32(g, o->mprojb), g->part, g->dres_bf,
			           la->fch_gelu, W16(g, o->mprojw), BT, 4 * C, C);
			k_gelu_bwd(g->d4C, la->fch, (size_t)BT * 4 * C, x->s);
		} else {
			linear_bwd_gelu(x, g->d4C, la->fch, G32(g, o->mprojw), G32(g, o->mprojb),
			                g->part, g->dres_bf, la->fch_gelu, W16(g, o->mprojw), BT, 4 * C,
			                C);
		}
		phase(x, "fc bwd");
		linear_bwd(x, g->dC, G32(g, o->fcw), G32(g, o->fcb), g->part, g->d4C, la->ln2,
		           W16(g, o->fcw), BT, C, 4 * C);
		phase(x, "ln2 bwd");
		k_layernorm_bwd(g->dres, g->dres_bf, G32(g, o->ln2w), G32(g, o->ln2b), g->part, g->dC,
		                la->res2, W16(g, o->ln2w), la->ln2_mean, la->ln2_rstd, BT, C, x->s);
		phase(x, "proj bwd");
		if (d)
			k_drop_rows(g->dres_bf, g->dres_bf, NULL, d, 2 + 3 * l, BT, T, C, c->n_ctx,
			            x->s);
		linear_bwd(x, g->dC2, G32(g, o->projw), G32(g, o->projb), g->part, g->dres_bf,
		           la->atty, W16(g, o->projw), BT, C, C);
		phase(x, "attention bwd");
		attention_bwd(x, &g->att, g->d4C, g->dC2, la->atty, la->qkv, la->lse, B, T, C, H,
		              &ad);
		phase(x, "qkv bwd");
		linear_bwd(x, g->dC, G32(g, o->qkvw), G32(g, o->qkvb), g->part, g->d4C, la->ln1,
		           W16(g, o->qkvw), BT, C, 3 * C);
		phase(x, "ln1 bwd");
		k_layernorm_bwd(g->dres, g->dres_bf, G32(g, o->ln1w), G32(g, o->ln1b), g->part, g->dC,
		                xin, W16(g, o->ln1w), la->ln1_mean, la->ln1_rstd, BT, C, x->s);
		if (g->overlap) {
			/* layer l's gradients are final: sum them while the
			 * backward goes on below (its tensors are contiguous) */
			size_t lo = g->L.tensors[o->ln1w].offset;
			size_t hi = l + 1 < c->n_layer ? g->L.tensors[g->L.layer[l + 1].ln1w].offset
			                               : g->L.tensors[g->L.lnfw].offset;
			overlap_bucket(g, l, lo, hi - lo);
		}
	}
	if (lo > 0)
		return;
	phase(x, "embed bwd");
	if (d)
		k_drop_rows_f32(g->dres, d, 0, BT, T, C, c->n_ctx, x->s);
	k_embed_bwd(G32(g, g->L.wte), G32(g, g->L.wpe), g->dres, in, order, seg, g->nseg, B, T, C,
	            x->s);
	if (g->overlap) {
		/* the rest: embeddings before the first layer, final LayerNorm
		 * and head after the last (the head's gradient lands in wte's
		 * when tied, so both wait for the embedding's backward) */
		size_t first = g->L.tensors[g->L.layer[0].ln1w].offset;
		size_t lnf = g->L.tensors[g->L.lnfw].offset;
		overlap_bucket(g, c->n_layer, 0, first);
		gcuda_comm_enqueue(g->overlap, g->grads + lnf, g->L.n_params - lnf, g->cs);
		g->pending = g->overlap;
		g->overlap = NULL;
	}
}

static void backward_queue(struct gcuda_model *g, float dscale, int have_dlogits)
{
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int BT = g->fB * g->fT, C = c->n_embd;
	size_t PBT = (size_t)g->B * g->T;
	const uint32_t *tg = g->d_stage + PBT;

	g->norm_fresh = 0;
	if (!have_dlogits) {
		phase(x, "loss bwd");
		k_xent_bwd(g->logits, g->row_lse, tg, dscale, BT, c->vocab_size, c->padded_vocab,
		           x->s);
	}
	/* head; its weight gradient lands in wte's when tied */
	phase(x, "head bwd");
	linear_bwd(x, g->dC, G32(g, g->L.head), NULL, NULL, g->logits, g->lnf, W16(g, g->L.head), BT,
	           C, c->padded_vocab);
	trunk_backward_queue(g, 0);
	g->has_targets = 0; /* the logits are gone */
}

extern "C" void gcuda_model_backward(struct gcuda_model *g, float scale)
{
	need_backward(g);
	backward_queue(g, loss_dscale(g, scale), 0);
}

extern "C" float gcuda_model_forward_backward(struct gcuda_model *g, const uint32_t *inputs,
                                              const uint32_t *targets, int B, int T,
                                              float scale)
{
	if (!targets)
		die("gpu model: forward_backward needs targets");
	if (!g->training)
		need_backward(g); /* before the fused loss overwrites the logits */
	stage_inputs(g, inputs, targets, B, T);
	g->dropping = g->drop.p > 0.0f;
	forward_queue(g, 1, loss_dscale(g, scale));
	backward_queue(g, loss_dscale(g, scale), 1);
	g->dropping = 0;
	return read_loss(g);
}

/* ---- a classifier (model.h's gpt_model_classify) ---- */

static float *F32(struct gcuda_model *g, int t)
{
	return g->params + g->L.tensors[t].offset;
}

extern "C" float gcuda_model_classify(struct gcuda_model *g, const uint32_t *inputs,
                                      const int *last, const uint32_t *labels, int B, int T)
{
	const struct gpt_config *c = &g->cfg;
	int K = c->n_classes;
	long counted = 0;
	uint32_t *ign, *lab;

	if (!K)
		die("gpu model: classify on a model without classes");
	if (B < 1 || B > g->B)
		die("gpu model: batch shape beyond the plan: '%dx%d'", B, T);
	lab = (uint32_t *)xmalloc((size_t)B * sizeof *lab);
	for (int b = 0; b < B; b++) {
		if (last[b] < 0 || last[b] >= T)
			die("gpu model: last position out of range: '%d'", last[b]);
		if (labels && labels[b] != GPT_IGNORE && labels[b] >= (uint32_t)K)
			die("gpu model: class out of range: '%u'", labels[b]);
		lab[b] = labels ? labels[b] : GPT_IGNORE;
		counted += lab[b] != GPT_IGNORE;
	}
	/* no target counts in the language model's sense; the grouping by
	 * token the embeddings' backward needs is made all the same */
	ign = (uint32_t *)xmalloc((size_t)B * T * sizeof *ign);
	for (size_t i = 0; i < (size_t)B * T; i++)
		ign[i] = GPT_IGNORE;
	stage_inputs(g, inputs, ign, B, T);
	free(ign);
	CUDA_CHECK(cudaMemcpyAsync(g->d_last, last, (size_t)B * sizeof(int), cudaMemcpyHostToDevice,
	                           g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->d_labels, lab, (size_t)B * sizeof(uint32_t),
	                           cudaMemcpyHostToDevice, g->x.s));
	g->dropping = 0;
	trunk_queue(g);
	phase(&g->x, "classifier");
	k_cls_fwd(g->cls_logits, g->cls_loss, g->lnf, g->d_last, g->d_labels, F32(g, g->L.cls_w),
	          F32(g, g->L.cls_b), B, T, c->n_embd, K, g->x.s);
	k_sum(g->loss, g->cls_loss, B, g->x.s);
	g->has_targets = labels != NULL;
	g->counted = counted;
	{
		float l = read_loss(g); /* waits: lab may go */
		free(lab);
		return l;
	}
}

extern "C" void gcuda_model_class_logits(struct gcuda_model *g, int B, float *dst)
{
	CUDA_CHECK(cudaMemcpyAsync(dst, g->cls_logits, (size_t)B * g->cfg.n_classes * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_classify_backward(struct gcuda_model *g, float scale, int trainable)
{
	const struct gpt_config *c = &g->cfg;
	int B = g->fB, T = g->fT, C = c->n_embd;

	need_backward(g);
	g->norm_fresh = 0;
	phase(&g->x, "classifier bwd");
	CUDA_CHECK(cudaMemsetAsync(g->dC, 0, (size_t)B * T * C * sizeof(bf16), g->x.s));
	k_cls_bwd(g->dC, G32(g, g->L.cls_w), G32(g, g->L.cls_b), g->cls_logits, g->d_labels, g->lnf,
	          g->d_last, F32(g, g->L.cls_w), loss_dscale(g, scale), B, T, C, c->n_classes,
	          g->x.s);
	if (trainable != GPT_TRAIN_HEAD)
		trunk_backward_queue(g, trainable == GPT_TRAIN_ALL ? 0 : c->n_layer - 1);
	g->has_targets = 0;
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_dropout(struct gcuda_model *g, const struct gpt_dropout *d)
{
	const struct gpt_config *c = &g->cfg;

	if (!d || !(d->p > 0.0f)) {
		g->drop.p = 0.0f;
		return;
	}
	g->drop = *d;
	if (g->att.flash) {
		/* flash.cu's kernels have no dropout: the batched products */
		CUDA_CHECK(cudaStreamSynchronize(g->x.s));
		attn_free(&g->x, &g->att, g->B, g->T, c->n_embd, c->n_head);
		g->x.flash = 0;
		attn_alloc(&g->x, &g->att, g->B, g->T, c->n_embd, c->n_head);
	}
}

extern "C" float gcuda_model_grad_norm(struct gcuda_model *g)
{
	float n;
	if (!g->grads)
		die("gpu model: no gradients before a training plan");
	phase(&g->x, "grad norm");
	k_grad_norm(g->norm, g->norm_part, g->grads, g->L.n_params, g->x.s);
	phase(&g->x, "wait for the norm");
	CUDA_CHECK(cudaMemcpyAsync(&g->h_loss[1], g->norm, sizeof(float), cudaMemcpyDeviceToHost,
	                           g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	g->norm_fresh = 1; /* gcuda_adamw_step clips by it without a second pass */
	n = g->h_loss[1];
	return n;
}

/* ---- AdamW ---- */

extern "C" void gcuda_adamw_init(struct gcuda_model *g, const struct adamw *opt)
{
	size_t *off = (size_t *)xcalloc((size_t)g->L.n_tensors, sizeof *off);
	size_t *boff = (size_t *)xcalloc((size_t)g->L.n_tensors, sizeof *boff);
	int *dec = (int *)xcalloc((size_t)g->L.n_tensors, sizeof *dec);

	if (opt->n != g->L.n_params)
		die("gpu model: optimizer size differs from the model's: '%zu'", opt->n);
	for (int i = 0; i < g->L.n_tensors; i++) {
		const struct gpt_tensor *t = &g->L.tensors[i];
		off[i] = t->offset;
		boff[i] = g->boff[i];
		for (int r = 0; r < opt->n_decay; r++) {
			size_t lo = opt->decay[r].offset, hi = lo + opt->decay[r].count;
			if (lo <= t->offset && t->offset + t->size <= hi)
				dec[i] = 1;
			else if (lo < t->offset + t->size && t->offset < hi)
				die("gpu model: a decay range splits tensor '%s'", t->name);
		}
		for (int r = 0; r < opt->n_frozen; r++) {
			size_t lo = opt->frozen[r].offset, hi = lo + opt->frozen[r].count;
			if (lo <= t->offset && t->offset + t->size <= hi)
				dec[i] = -1; /* frozen (kernels.cu's adamw_one) */
			else if (lo < t->offset + t->size && t->offset < hi)
				die("gpu model: a frozen range splits tensor '%s'", t->name);
		}
	}
	if (!g->have_opt) {
		g->m = (float *)dalloc(&g->x, g->L.n_params * sizeof(float), "adamw m");
		g->v = (float *)dalloc(&g->x, g->L.n_params * sizeof(float), "adamw v");
		g->t_off = (size_t *)dalloc(&g->x, (size_t)g->L.n_tensors * sizeof(size_t), "adamw table");
		g->t_boff = (size_t *)dalloc(&g->x, (size_t)g->L.n_tensors * sizeof(size_t), "adamw table");
		g->t_decay = (int *)dalloc(&g->x, (size_t)g->L.n_tensors * sizeof(int), "adamw table");
		g->have_opt = 1;
	}
	CUDA_CHECK(cudaMemcpyAsync(g->m, opt->m, g->L.n_params * sizeof(float),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->v, opt->v, g->L.n_params * sizeof(float),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->t_off, off, (size_t)g->L.n_tensors * sizeof(size_t),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->t_boff, boff, (size_t)g->L.n_tensors * sizeof(size_t),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->t_decay, dec, (size_t)g->L.n_tensors * sizeof(int),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	g->acfg = opt->cfg;
	g->step = opt->step;
	free(off);
	free(boff);
	free(dec);
}

extern "C" void gcuda_adamw_step(struct gcuda_model *g, float lr, float max_norm)
{
	struct adamw_args a;
	double bc1, bc2;
	if (!g->have_opt || !g->grads)
		die("gpu model: adamw step before gcuda_adamw_init and a training plan");
	g->step++;
	/* the scalars exactly as optim.c computes them */
	bc1 = 1.0 - pow(g->acfg.beta1, (double)g->step);
	bc2 = 1.0 - pow(g->acfg.beta2, (double)g->step);
	a.one_b1 = (float)(1.0 - g->acfg.beta1);
	a.b2 = (float)g->acfg.beta2;
	a.one_b2 = (float)(1.0 - g->acfg.beta2);
	a.eps = (float)g->acfg.eps;
	a.step_size = (float)((double)lr / bc1);
	a.bc2_sqrt = (float)sqrt(bc2);
	a.keep = (float)(1.0 - (double)lr * g->acfg.weight_decay);
	a.max_norm = max_norm;
	if (!g->norm_fresh) {
		phase(&g->x, "grad norm");
		k_grad_norm(g->norm, g->norm_part, g->grads, g->L.n_params, g->x.s);
	}
	phase(&g->x, "adamw");
	k_adamw(g->params, g->wb, g->grads, g->m, g->v, g->L.n_params, g->t_off, g->t_boff,
	        g->t_decay, g->L.n_tensors, g->norm, a, g->x.s);
}

extern "C" float gcuda_adamw_last_norm(struct gcuda_model *g)
{
	CUDA_CHECK(cudaMemcpyAsync(&g->h_loss[1], g->norm, sizeof(float), cudaMemcpyDeviceToHost,
	                           g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	return g->h_loss[1];
}

extern "C" void gcuda_adamw_download(struct gcuda_model *g, struct adamw *opt)
{
	if (!g->have_opt)
		die("gpu model: no optimizer state before gcuda_adamw_init");
	if (opt->n != g->L.n_params)
		die("gpu model: optimizer size differs from the model's: '%zu'", opt->n);
	CUDA_CHECK(cudaMemcpyAsync(opt->m, g->m, g->L.n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(opt->v, g->v, g->L.n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	opt->step = g->step;
}

extern "C" void gcuda_phases_on(struct gcuda_model *g, int on)
{
	phase_on(&g->x, on);
}

extern "C" int gcuda_phases_take(struct gcuda_model *g, int max, const char **names, float *ms)
{
	return phase_take(&g->x, max, names, ms);
}

extern "C" size_t gcuda_model_bytes(const struct gcuda_model *g)
{
	return g->x.bytes;
}

extern "C" size_t gcuda_model_peak_bytes(const struct gcuda_model *g)
{
	return g->x.peak;
}

extern "C" void gcuda_model_sync(struct gcuda_model *g)
{
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_free(struct gcuda_model *g)
{
	if (!g)
		return;
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	plan_free(g);
	dfree(&g->x, g->params, g->L.n_params * sizeof(float));
	dfree(&g->x, g->wb, g->n_bf16 * sizeof(bf16));
	if (g->grads)
		dfree(&g->x, g->grads, g->L.n_params * sizeof(float));
	if (g->have_opt) {
		dfree(&g->x, g->m, g->L.n_params * sizeof(float));
		dfree(&g->x, g->v, g->L.n_params * sizeof(float));
		dfree(&g->x, g->t_off, (size_t)g->L.n_tensors * sizeof(size_t));
		dfree(&g->x, g->t_boff, (size_t)g->L.n_tensors * sizeof(size_t));
		dfree(&g->x, g->t_decay, (size_t)g->L.n_tensors * sizeof(int));
	}
	dfree(&g->x, g->norm, sizeof(float));
	dfree(&g->x, g->norm_part, GK_NORM_PARTS * sizeof(double));
	CUDA_CHECK(cudaFreeHost(g->h_loss));
	if (g->cs) {
		for (int i = 0; i <= g->cfg.n_layer; i++)
			CUDA_CHECK(cudaEventDestroy(g->cev[i]));
		free(g->cev);
		CUDA_CHECK(cudaStreamDestroy(g->cs));
	}
	ctx_free(&g->x);
	free(g->counts);
	gpt_layout_free(&g->L);
	free(g->boff);
	free(g);
}

