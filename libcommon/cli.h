/* cli: option values parsed with bounds, the way every gpt-* program
 * reads its argv.  Each parser dies with exit status 2 naming the option
 * on bad input, so callers never see an out-of-range value.
 * Offers cli_u64, cli_i64, cli_double, cli_format, cli_version, and
 * cli_getopt, getopt_long for every program: an unknown option or a
 * missing value is one line naming it (plus the --help hint), exit 2. */
#ifndef GPT_CLI_H
#define GPT_CLI_H

#include <getopt.h>
#include <stdint.h>

/* Token id forms on a pipe. */
enum tok_format { FMT_TEXT = 0, FMT_U16, FMT_U32 };

/* Unsigned integer in [min, max].  Accepts suffixes K M G T (powers of
 * 1000) and Ki Mi Gi Ti (powers of 1024), so "100M" is 100,000,000 and
 * "64Mi" is 67,108,864.  opt names the option in the error message. */
uint64_t cli_u64(const char *opt, const char *arg, uint64_t min, uint64_t max);
int64_t cli_i64(const char *opt, const char *arg, int64_t min, int64_t max);
/* Finite floating-point number in [min, max] (scientific notation allowed). */
double cli_double(const char *opt, const char *arg, double min, double max);
/* "text", "u16" or "u32". */
enum tok_format cli_format(const char *opt, const char *arg);
const char *cli_format_name(enum tok_format f);
/* Print "prog VERSION" on stdout and exit 0. */
void cli_version(void) __attribute__((noreturn));
/* getopt_long(argc, argv, shortopts, longopts, NULL), except that getopt
 * prints nothing and a bad option dies with die_usage: "unknown option
 * '--foo'" or "option needs a value '-o'". */
int cli_getopt(int argc, char *const *argv, const char *shortopts,
               const struct option *longopts);

#endif
