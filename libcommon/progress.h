/* progress: one self-overwriting status line on stderr for long work
 * (amount done, rate, ETA).  Shown when stderr is a terminal, or when
 * forced with --progress; silenced with -q.  Rate-limited to 4 updates
 * per second so it costs nothing on a hot loop. */
#ifndef GPT_PROGRESS_H
#define GPT_PROGRESS_H

#include <stdint.h>

enum progress_mode { PROGRESS_AUTO = 0, PROGRESS_QUIET, PROGRESS_FORCE };

struct progress {
	int on;
	const char *label;  /* not owned */
	const char *unit;   /* "B" prints sizes in MB; anything else counts */
	uint64_t total;     /* 0 when unknown */
	double start, last;
	int drawn;
};

double progress_now(void);  /* monotonic seconds */
void progress_init(struct progress *p, enum progress_mode mode,
		   const char *label, const char *unit, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* Clear the line (the caller prints its own summary). */
void progress_end(struct progress *p);

#endif
