/* lstmweights: a character-level LSTM as PyTorch saves it (a folder with
 * config.json, model_type "char-lstm", and model.safetensors holding the
 * state dict of nn.Embedding "embedding", nn.LSTM "lstm" and nn.Linear
 * "decoder") to and from our LSTM (model.h, arch GPT_ARCH_LSTM).
 *
 *   lstmweights_import(cfg, cpath, wpath, context, m)
 *        cfg is config.json parsed (cpath names it in errors): vocab_size,
 *        embedding_dim, hidden_size, num_layers, each bounded, and the
 *        optional context_length; context (0: context_length, else
 *        LSTMWEIGHTS_CONTEXT) becomes n_ctx.  Reads every tensor of
 *        wpath into a new model m (gpt_model_init'd here; the caller
 *        frees it): exactly our tensors, each of its PyTorch shape (the
 *        vocabulary without padding), F32 (F16 and BF16 widened); the
 *        vocabulary padding rows are zero.
 *   lstmweights_export(m, dir)
 *        DIR/model.safetensors (float32, PyTorch's names and shapes, no
 *        padding rows) and DIR/config.json (the five keys above in that
 *        order, context_length after them only when n_ctx is not
 *        LSTMWEIGHTS_CONTEXT); DIR and its parents are created.
 * Both die with a one-line message naming the file and the field or
 * tensor on bad input. */
#ifndef GPT_LSTMWEIGHTS_H
#define GPT_LSTMWEIGHTS_H

#include "json.h"
#include "model.h"

/* n_ctx of an imported model when neither config.json nor the caller
 * says: an LSTM's state carries on past any window, so this bounds only a
 * decoder's positions (a sample's length) and a forward's window. */
#define LSTMWEIGHTS_CONTEXT 65536

void lstmweights_import(const struct json *cfg, const char *cpath, const char *wpath,
                        int context, struct gpt_model *m);
void lstmweights_export(const struct gpt_model *m, const char *dir);

#endif
