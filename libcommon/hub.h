/* hub: Hugging Face Hub names.  An hf:// URL names a file of a model,
 * dataset or space repository; the hub serves it at an https:// URL under
 * its endpoint, and shows private or gated files to whoever sends a token.
 *
 *   hub_resolve(url)       hf:// -> https:// form (malloc'd, caller frees);
 *                          http(s):// returned as a copy; dies when
 *                          malformed or not a URL
 *   hub_owns(url)          1 when an http(s) URL lies under the endpoint
 *   hub_auth_header(url)   "Authorization: Bearer $HF_TOKEN" (malloc'd)
 *                          when HF_TOKEN is set and the hub owns url, else
 *                          NULL: the token goes to the hub only
 *
 * hf:// forms (huggingface_hub's and a trailing-revision shorthand):
 *   hf://datasets/ORG/NAME/PATH            revision main
 *   hf://datasets/ORG/NAME@REV/PATH        REV: branch, tag or commit
 *   hf://datasets/ORG/NAME/PATH@REV        same, when PATH's last part has @
 *   hf://ORG/NAME/PATH, hf://models/...    models; hf://spaces/... spaces
 * -> $HF_ENDPOINT (default https://huggingface.co)[/datasets|/spaces]
 *    /ORG/NAME/resolve/REV/PATH, with REV and PATH percent-encoded. */
#ifndef GPT_HUB_H
#define GPT_HUB_H

char *hub_resolve(const char *url);
int hub_owns(const char *url);
char *hub_auth_header(const char *url);

#endif
