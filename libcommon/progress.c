/* progress: rate and ETA on stderr, the only place that draws it. */
#include "progress.h"
#include "err.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double progress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_init(struct progress *p, enum progress_mode mode,
		   const char *label, const char *unit, uint64_t total)
{
	p->on = mode == PROGRESS_FORCE ||
		(mode == PROGRESS_AUTO && isatty(STDERR_FILENO));
	p->label = label;
	p->unit = unit;
	p->total = total;
	p->start = p->last = progress_now();
	p->drawn = 0;
}

static void fmt_amount(char *buf, size_t n, const char *unit, double v)
{
	if (unit[0] == 'B' && unit[1] == '\0')
		snprintf(buf, n, "%.1f MB", v / 1e6);
	else if (v >= 1e6)
		snprintf(buf, n, "%.2fM %s", v / 1e6, unit);
	else
		snprintf(buf, n, "%.0f %s", v, unit);
}

void progress_update(struct progress *p, uint64_t done)
{
	double now, el, rate;
	char amt[48], rt[48], eta[32] = "";

	if (!p->on)
		return;
	now = progress_now();
	if (now - p->last < 0.25)
		return;
	p->last = now;
	el = now - p->start;
	rate = el > 0 ? (double)done / el : 0;
	fmt_amount(amt, sizeof amt, p->unit, (double)done);
	fmt_amount(rt, sizeof rt, p->unit, rate);
	if (p->total && rate > 0 && done <= p->total) {
		double left = (double)(p->total - done) / rate;

		snprintf(eta, sizeof eta, " ETA %d:%02d:%02d", (int)(left / 3600),
			 (int)(left / 60) % 60, (int)left % 60);
	}
	fprintf(stderr, "\r\033[K%s: %s %s/s%s", p->label, amt, rt, eta);
	p->drawn = 1;
}

void progress_end(struct progress *p)
{
	if (p->on && p->drawn)
		fprintf(stderr, "\r\033[K");
	p->drawn = 0;
}
