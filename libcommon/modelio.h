/* modelio: a GPT-2 model (model.h) to and from checkpoint files
 * (checkpoint.h, gpt-checkpoint(5)): the one place where a configuration
 * becomes a checkpoint's model record and back, and where a tensor table
 * is checked against a file's.
 *
 *   modelio_config_to_ckpt(c, m)     configuration -> checkpoint record
 *   modelio_config_from_ckpt(m, c)   record -> configuration; NULL, or
 *                                    why it is not a model the engines take
 *   modelio_tensors(m)               m's tensor table as a checkpoint's
 *                                    (n_tensors entries; caller frees)
 *   modelio_match(c, m)              dies unless the open checkpoint c
 *                                    holds exactly m's tensors
 *   modelio_load(path, m, tokenizer) checkpoint or run folder -> a new
 *                                    model (gpt_model_init'ed, weights
 *                                    read); tokenizer (CKPT_NAME_MAX bytes,
 *                                    may be NULL) gets its name; dies on
 *                                    any error, naming the file
 *   modelio_save(m, tokenizer, path) weights only (no optimizer state),
 *                                    atomically
 *   modelio_load_labels, modelio_save_labels  the same for a classifier
 *                                    (n_classes > 0): its labels, each
 *                                    ended by '\n', in class order
 *                                    (*labels malloc'd; NULL for a
 *                                    language model)
 *   modelio_need_lm(m, path)         dies when m is a classifier, for a
 *                                    program that runs language models */
#ifndef GPT_MODELIO_H
#define GPT_MODELIO_H

#include "checkpoint.h"
#include "model.h"

void modelio_config_to_ckpt(const struct gpt_config *c, struct ckpt_model *m);
const char *modelio_config_from_ckpt(const struct ckpt_model *m, struct gpt_config *c);
struct ckpt_tensor *modelio_tensors(const struct gpt_model *m);
void modelio_match(struct ckpt *c, const struct gpt_model *m);
void modelio_load(const char *path, struct gpt_model *m, char *tokenizer);
void modelio_load_labels(const char *path, struct gpt_model *m, char *tokenizer, char **labels);
void modelio_need_lm(const struct gpt_model *m, const char *path);
void modelio_save_labels(const struct gpt_model *m, const char *tokenizer, const char *labels,
                         const char *path);
void modelio_save(const struct gpt_model *m, const char *tokenizer, const char *path);

#endif
