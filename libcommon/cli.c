/* cli: bounded parsing of numbers and enumerations from argv.  Never atoi:
 * a typo in a flag must stop the program, not silently become zero. */
#include "cli.h"
#include "err.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GPT_VERSION
#define GPT_VERSION "0.1"
#endif

static int suffix_mult(const char *s, uint64_t *mult)
{
	static const struct { const char *s; uint64_t m; } tab[] = {
		{ "", 1 },
		{ "K", 1000ULL }, { "k", 1000ULL }, { "M", 1000000ULL },
		{ "G", 1000000000ULL }, { "T", 1000000000000ULL },
		{ "Ki", 1ULL << 10 }, { "Mi", 1ULL << 20 }, { "Gi", 1ULL << 30 },
		{ "Ti", 1ULL << 40 },
	};
	size_t i;

	for (i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(s, tab[i].s) == 0) {
			*mult = tab[i].m;
			return 0;
		}
	return -1;
}

uint64_t cli_u64(const char *opt, const char *arg, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;
	uint64_t mult;

	if (!arg || !*arg || *arg == '-' || *arg == '+' || *arg == ' ')
		die_usage("invalid number for %s: '%s'", opt, arg ? arg : "");
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || suffix_mult(end, &mult) != 0)
		die_usage("invalid number for %s: '%s'", opt, arg);
	if (v && mult > UINT64_MAX / v)
		die_usage("number out of range for %s: '%s'", opt, arg);
	v *= mult;
	if (v < min || v > max)
		die_usage("%s must be between %llu and %llu: '%s'", opt,
			  (unsigned long long)min, (unsigned long long)max, arg);
	return v;
}

int64_t cli_i64(const char *opt, const char *arg, int64_t min, int64_t max)
{
	char *end;
	long long v;

	if (!arg || !*arg)
		die_usage("invalid number for %s: ''", opt);
	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end)
		die_usage("invalid number for %s: '%s'", opt, arg);
	if (v < min || v > max)
		die_usage("%s must be between %lld and %lld: '%s'", opt,
			  (long long)min, (long long)max, arg);
	return v;
}

double cli_double(const char *opt, const char *arg, double min, double max)
{
	char *end;
	double v;

	if (!arg || !*arg)
		die_usage("invalid number for %s: ''", opt);
	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v))
		die_usage("invalid number for %s: '%s'", opt, arg);
	if (v < min || v > max)
		die_usage("%s must be between %g and %g: '%s'", opt, min, max, arg);
	return v;
}

enum tok_format cli_format(const char *opt, const char *arg)
{
	if (strcmp(arg, "text") == 0)
		return FMT_TEXT;
	if (strcmp(arg, "u16") == 0)
		return FMT_U16;
	if (strcmp(arg, "u32") == 0)
		return FMT_U32;
	die_usage("%s must be text, u16 or u32: '%s'", opt, arg);
}

const char *cli_format_name(enum tok_format f)
{
	switch (f) {
	case FMT_U16: return "u16";
	case FMT_U32: return "u32";
	default: return "text";
	}
}

void cli_version(void)
{
	printf("%s %s\n", prog_name, GPT_VERSION);
	if (fflush(stdout) || ferror(stdout))
		die("write error: 'stdout'");
	exit(EXIT_OK);
}

int cli_getopt(int argc, char *const *argv, const char *shortopts,
               const struct option *longopts)
{
	char spec[128];
	size_t k = 0;
	int c, prev;

	/* a leading ':' makes getopt say ':' for a missing value, quietly */
	if (shortopts[0] == '+' || shortopts[0] == '-')
		spec[k++] = shortopts[0];
	spec[k++] = ':';
	if ((size_t)snprintf(spec + k, sizeof spec - k, "%s", shortopts + (k - 1)) >=
	    sizeof spec - k)
		die("internal error: option string too long");
	opterr = 0;
	prev = optind;
	c = getopt_long(argc, (char **)argv, spec, longopts, NULL);
	if (c == '?' || c == ':') {
		const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
		/* a long option is a whole element, consumed by this call; a
		 * short one may sit inside a cluster */
		int is_long = optind > prev && strncmp(arg, "--", 2) == 0;

		if (c == ':' && is_long)
			die_usage("option needs a value '%s'", arg);
		if (c == ':')
			die_usage("option needs a value '-%c'", optopt);
		if (is_long && optopt)
			die_usage("option takes no value '%s'", arg);
		if (is_long)
			die_usage("unknown option '%s'", arg);
		die_usage("unknown option '-%c'", optopt);
	}
	return c;
}
