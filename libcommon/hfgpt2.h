/* hfgpt2: Hugging Face GPT-2 weights (the layout of openai-community/gpt2:
 * a folder with config.json and model.safetensors) to and from our model.
 *
 *   hfgpt2_import(dir, m)   read DIR/config.json and DIR/model.safetensors
 *                           into a new model m (gpt_model_init'd here; the
 *                           caller frees it).  Names may carry the
 *                           "transformer." prefix; Conv1D weights [in, out]
 *                           are transposed to our [out, in]; F16 and BF16
 *                           become float32; the head is tied unless
 *                           tie_word_embeddings is false; Hugging Face
 *                           GPT-2 always has biases, so bias and qkv_bias
 *                           are 1; vocabulary padding rows are zero.
 *   hfgpt2_export(m, dir)   write DIR/config.json and DIR/model.safetensors
 *                           (float32, prefix "transformer.", lm_head only
 *                           when untied; biases the model lacks are
 *                           written as zeros) so that transformers'
 *                           GPT2LMHeadModel.from_pretrained(DIR) loads it.
 * Both die with a one-line message naming the file on bad input. */
#ifndef GPT_HFGPT2_H
#define GPT_HFGPT2_H

#include "model.h"

void hfgpt2_import(const char *dir, struct gpt_model *m);
/* The same from the two files' paths (e.g. separately downloaded). */
void hfgpt2_import_files(const char *config, const char *weights, struct gpt_model *m);
void hfgpt2_export(const struct gpt_model *m, const char *dir);

#endif
