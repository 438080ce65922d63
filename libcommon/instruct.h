/* instruct: instruction data for fine-tuning (issue 17's first part):
 * the files, the prompt templates, and the tokens with their loss mask.
 *
 *   instruct_load(&set, path)
 *       a JSON array of records, or JSONL (one record a line, blank
 *       lines skipped), each an Alpaca record {"instruction", "input"
 *       (optional), "output"} or a chat record {"messages": [{"role":
 *       "system"|"user"|"assistant", "content"}...]} (an optional system
 *       message first, then user and assistant turns alternating, the
 *       assistant's last).  A bad record dies naming the file and its
 *       record number (array, from 1) or line (JSONL) and what is wrong.
 *   instruct_template_open(name_or_path)
 *       "alpaca", "phi3", "transcript", or a template file (below)
 *   instruct_render(tpl, ex, &r)
 *       the example as text: spans of prompt and of response, each
 *       response closed by <|endoftext|> (a token, not text)
 *   instruct_encode(v, tpl, ex, &ids, &mask)
 *       the tokens of instruct_render: each run of text up to an
 *       <|endoftext|> tokenized whole (as the series tokenizes its full
 *       prompt and response), then the <|endoftext|> id; mask[i] is 1
 *       where token i is part of a response (any of its bytes is a
 *       response's) or closes one, else 0.  Text that spells a special
 *       token stays text.
 *
 * Templates, for an Alpaca record (instruction I, input N, output O):
 *   alpaca      "Below is an instruction that describes a task. Write a
 *               response that appropriately completes the request."
 *               "\n\n### Instruction:\n" I, then "\n\n### Input:\n" N
 *               only when N is not empty, then "\n\n### Response:\n";
 *               the response is O.  (The series' format_input and its
 *               "### Response:" line; the line is prompt here.)
 *   phi3        "<|user|>\n" I, "\n" N when not empty, "\n<|assistant|>\n";
 *               the response is O.
 *   transcript  gpt-sample --chat's transcript: its preamble, then
 *               "User: " I (" " N when not empty) "\nBot:"; the
 *               response is " " O "\n".
 * A chat record is the same turn by turn, a user message taking the
 * place of I (with no N): alpaca and phi3 after an optional system
 * message (alpaca: it replaces the opening sentence; phi3:
 * "<|system|>\n" S "\n"); transcript's system message replaces its
 * preamble.
 *
 * A template file is text with placeholders: {instruction}, {input},
 * {system} (empty for Alpaca records), a block {?input}...{/input} kept
 * only when the input is not empty, {{ and }} for braces, and {output}
 * once, where the response goes: the text before it is the prompt, and
 * nothing may follow it (the response ends with <|endoftext|>).  Chat
 * records take a file template only with one user and one assistant
 * message.
 *
 * Memory: a set owns its examples (instruct_free); renderings and
 * encodings are the caller's to free (instruct_text_free, free). */
#ifndef GPT_INSTRUCT_H
#define GPT_INSTRUCT_H

#include <stddef.h>
#include <stdint.h>

#include "vocab.h"

enum instruct_role { INSTRUCT_SYSTEM, INSTRUCT_USER, INSTRUCT_ASSISTANT };

struct instruct_msg {
	enum instruct_role role;
	char *text;
};

struct instruct_example {
	int chat;                        /* 0: Alpaca fields, 1: msgs */
	char *instruction, *input, *output;
	struct instruct_msg *msgs;
	int n_msgs;
	size_t where;                    /* record number or line, for messages */
};

struct instruct_set {
	struct instruct_example *ex;
	size_t n;
	int jsonl;                       /* records were lines */
};

void instruct_load(struct instruct_set *s, const char *path);
/* The same from memory; name is the file's name for messages. */
void instruct_parse(struct instruct_set *s, const char *text, size_t len, const char *name);
void instruct_free(struct instruct_set *s);

struct instruct_template;
/* Dies with one line when name is no template and no readable file, or
 * the file is not a valid template. */
struct instruct_template *instruct_template_open(const char *name_or_path);
const char *instruct_template_name(const struct instruct_template *t);
void instruct_template_free(struct instruct_template *t);

struct instruct_span {
	size_t off, len;                 /* into text */
	int response;                    /* 1: a response's text */
	int eot;                         /* <|endoftext|> follows */
};

struct instruct_text {
	char *text;
	size_t len;
	struct instruct_span *spans;
	int n_spans;
};

/* Dies naming the record when the template cannot render it. */
void instruct_render(const struct instruct_template *t, const struct instruct_example *ex,
		     struct instruct_text *r);
void instruct_text_free(struct instruct_text *r);
/* Returns the number of tokens; *ids and *mask are malloc'd. */
size_t instruct_encode(const struct vocab *v, const struct instruct_template *t,
		       const struct instruct_example *ex, uint32_t **ids, unsigned char **mask);

/* The text before the example's last response: what a model given the
 * example's prompt continues (malloc'd, *len bytes, NUL-terminated). */
char *instruct_prompt(const struct instruct_template *t, const struct instruct_example *ex,
		      size_t *len);
/* Where the template's next turn starts (a response ends there), or
 * NULL (a template file: only <|endoftext|> ends it). */
const char *instruct_template_stop(const struct instruct_template *t);
/* The record as one JSON line, its fields as read, with "response"
 * added when response is not NULL. */
struct out;
void instruct_write_json(struct out *o, const struct instruct_example *ex, const char *response);

/* gpt-sample --chat's opening transcript. */
extern const char instruct_transcript_preamble[];

#endif
