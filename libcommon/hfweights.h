/* hfweights: Hugging Face GPT-2 weights (the layout of
 * openai-community/gpt2: a folder with config.json and model.safetensors)
 * to and from our model.
 *
 *   hfweights_import(dir, m)  read DIR/config.json and DIR/model.safetensors
 *                             into a new model m (gpt_model_init'd here;
 *                             the caller frees it).  Names may carry the
 *                             "transformer." prefix; Conv1D weights
 *                             [in, out] are transposed to our [out, in];
 *                             F16 and BF16 become float32; the head is
 *                             tied unless tie_word_embeddings is false;
 *                             Hugging Face GPT-2 always has biases, so
 *                             bias and qkv_bias are 1; vocabulary padding
 *                             rows are zero.
 *   hfweights_export(m, dir)  write DIR/config.json and DIR/model.safetensors
 *                             (float32, prefix "transformer.", lm_head only
 *                             when untied; biases the model lacks are
 *                             written as zeros) so that transformers'
 *                             GPT2LMHeadModel.from_pretrained(DIR) loads
 *                             it; DIR and its parents are created.
 * A folder whose config.json says model_type "char-lstm" holds a
 * PyTorch character-level LSTM instead: import and export send it, and a
 * model of arch GPT_ARCH_LSTM, to lstmweights (lstmweights.h); a missing
 * model_type means GPT-2, any other is refused.
 * Both die with a one-line message naming the file on bad input. */
#ifndef GPT_HFWEIGHTS_H
#define GPT_HFWEIGHTS_H

#include "model.h"

void hfweights_import(const char *dir, struct gpt_model *m);
/* The same from the two files' paths (e.g. separately downloaded). */
void hfweights_import_files(const char *config, const char *weights, struct gpt_model *m);
/* The same with a char-lstm's context (n_ctx; 0: its config's
 * context_length or LSTMWEIGHTS_CONTEXT).  A GPT-2 model's is its
 * n_positions: a context other than 0 or that dies. */
void hfweights_import_context(const char *config, const char *weights, int context,
                              struct gpt_model *m);
void hfweights_export(const struct gpt_model *m, const char *dir);

#endif
