/* err: diagnostics and exit codes shared by every gpt-* program.
 * Offers err_init, die, die_usage, die_errno, warnx, and the checked
 * allocators xmalloc/xcalloc/xrealloc/xstrdup/xasprintf (memory owned by
 * the caller). */
#ifndef GPT_ERR_H
#define GPT_ERR_H

#include <stddef.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The one global: the program name used as the prefix of every message. */
extern const char *prog_name;

void err_init(const char *argv0);
/* "prog: message" on stderr, then exit(1). */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Same, with ": strerror(errno)" appended. */
void die_errno(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Usage error: message plus a pointer to --help, then exit(2). */
void die_usage(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* A malloc'd string formatted as printf would. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* n * size, or die when it overflows. */
size_t xmul(size_t n, size_t size);

#endif
