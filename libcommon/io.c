/* io: every byte a gpt-* program writes goes through out_write, and every
 * file it creates through afile, so full disks, closed pipes and signals
 * are handled in one place and never leave a half-written file behind. */
#include "io.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUFSZ (1u << 17)

void io_init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

void out_init(struct out *o, int fd, const char *name)
{
	o->fd = fd;
	o->name = name;
	o->cap = OUT_BUFSZ;
	o->buf = xmalloc(o->cap);
	o->len = 0;
	o->total = 0;
}

static void write_all(struct out *o, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(o->fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE && o->fd == STDOUT_FILENO)
				exit(EXIT_OK);  /* reader went away: `| head` */
			die_errno("write error: '%s'", o->name);
		}
		p += w;
		n -= (size_t)w;
		o->total += (uint64_t)w;
	}
}

void out_write(struct out *o, const void *p, size_t n)
{
	/* n == 0 on a full buffer is out_putc asking for room */
	if (o->len + n > o->cap || o->len == o->cap) {
		write_all(o, o->buf, o->len);
		o->len = 0;
		if (n >= o->cap) {
			write_all(o, p, n);
			return;
		}
	}
	if (n)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

void out_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	int i = (int)sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_write(o, tmp + i, sizeof tmp - (size_t)i);
}

void out_flush(struct out *o)
{
	write_all(o, o->buf, o->len);
	o->len = 0;
}

void out_free(struct out *o)
{
	if (o->buf)
		out_flush(o);
	free(o->buf);
	o->buf = NULL;
}

void in_open(struct in *r, const char *path)
{
	r->eof = 0;
	if (strcmp(path, "-") == 0) {
		r->fd = STDIN_FILENO;
		r->is_stdin = 1;
		r->name = xstrdup("stdin");
		return;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		die_errno("cannot open '%s'", path);
	r->is_stdin = 0;
	r->name = xstrdup(path);
}

size_t in_read(struct in *r, void *p, size_t n)
{
	for (;;) {
		ssize_t got;

		if (r->eof || n == 0)
			return 0;
		got = read(r->fd, p, n);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			die_errno("read error: '%s'", r->name);
		}
		if (got == 0)
			r->eof = 1;
		return (size_t)got;
	}
}

size_t in_read_full(struct in *r, void *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		size_t got = in_read(r, (unsigned char *)p + done, n - done);

		if (got == 0)
			break;
		done += got;
	}
	return done;
}

/* The message a SIGBUS in a mapped input prints: formatted when the file
 * is mapped, so that the handler only writes it. */
static char bus_msg[512];
static size_t bus_len;
static void remove_temps(void);

static void on_bus(int sig)
{
	(void)sig;
	if (bus_len && write(STDERR_FILENO, bus_msg, bus_len) < 0)
		bus_len = 0;
	remove_temps();
	_exit(EXIT_FAIL);
}

const unsigned char *in_map(struct in *r, struct in_mapping *m, size_t *n)
{
	struct stat st;
	struct sigaction sa;
	off_t at, page = (off_t)sysconf(_SC_PAGESIZE), skip;
	void *p;

	memset(m, 0, sizeof *m);
	if (r->eof || fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	at = lseek(r->fd, 0, SEEK_CUR);
	if (at < 0 || at >= st.st_size ||
	    (uint64_t)(st.st_size - at) > (uint64_t)SIZE_MAX / 2)
		return NULL;
	skip = at % page;
	p = mmap(NULL, (size_t)(st.st_size - at + skip), PROT_READ, MAP_PRIVATE,
		 r->fd, at - skip);
	if (p == MAP_FAILED)
		return NULL;
	if (lseek(r->fd, st.st_size, SEEK_SET) < 0)
		die_errno("cannot seek in '%s'", r->name);
	m->base = p;
	m->len = (size_t)(st.st_size - at + skip);
	m->skip = (size_t)skip;
	madvise(p, m->len, MADV_SEQUENTIAL);
	bus_len = (size_t)snprintf(bus_msg, sizeof bus_msg,
				   "%s: '%s' shrank while it was read\n",
				   prog_name, r->name);
	if (bus_len >= sizeof bus_msg)
		bus_len = sizeof bus_msg - 1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_bus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	*n = m->len - m->skip;
	return (const unsigned char *)p + m->skip;
}

void in_map_release(struct in_mapping *m, size_t off)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t end = off + m->skip;

	if (!m->base)
		return;
	if (end > m->len)
		end = m->len;
	end &= ~(page - 1);
	if (end)
		madvise(m->base, end, MADV_DONTNEED);
}

void in_unmap(struct in_mapping *m)
{
	if (m->base)
		munmap(m->base, m->len);
	memset(m, 0, sizeof *m);
}

void in_close(struct in *r)
{
	if (!r->is_stdin && r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->name);
	r->name = NULL;
}

/* Live temporary files, removed on exit and on fatal signals.  A fixed
 * table keeps the signal handler free of allocation. */
#define MAX_TEMPS 64
static char *volatile temps[MAX_TEMPS];
static int cleanup_installed;

static void remove_temps(void)
{
	int i;

	for (i = 0; i < MAX_TEMPS; i++)
		if (temps[i])
			unlink(temps[i]);
}

static void on_signal(int sig)
{
	remove_temps();
	signal(sig, SIG_DFL);
	raise(sig);
}

void io_install_cleanup(void)
{
	struct sigaction sa;
	int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	size_t i;

	if (cleanup_installed)
		return;
	cleanup_installed = 1;
	atexit(remove_temps);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction old;

		/* Leave handlers a program installed itself (gpt-train's
		 * graceful stop) in place. */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler != SIG_DFL)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

static void temps_add(char *p)
{
	int i;

	for (i = 0; i < MAX_TEMPS; i++)
		if (!temps[i]) {
			temps[i] = p;
			return;
		}
	die("too many open output files");
}

static void temps_del(const char *p)
{
	int i;

	for (i = 0; i < MAX_TEMPS; i++)
		if (temps[i] == p)
			temps[i] = NULL;
}

void afile_open(struct afile *a, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	size_t n = strlen(path) + 32;
	sigset_t all, old;

	io_install_cleanup();
	a->path = xstrdup(path);
	a->tmp = xmalloc(n);
	snprintf(a->tmp, n, "%.*s.%s.tmp.XXXXXX", (int)dirlen, path,
		 path + dirlen);
	/* Block signals between creating the file and recording it, so a
	 * signal cannot strand an unregistered temporary. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	a->fd = mkostemp(a->tmp, O_CLOEXEC);
	if (a->fd >= 0)
		temps_add(a->tmp);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (a->fd < 0)
		die_errno("cannot create '%s'", a->tmp);
	fchmod(a->fd, 0644);
	out_init(&a->out, a->fd, a->path);
}

void afile_commit(struct afile *a)
{
	out_flush(&a->out);
	if (fsync(a->fd) != 0)
		die_errno("cannot sync '%s'", a->tmp);
	if (close(a->fd) != 0)
		die_errno("cannot close '%s'", a->tmp);
	a->fd = -1;
	if (rename(a->tmp, a->path) != 0)
		die_errno("cannot rename '%s' to '%s'", a->tmp, a->path);
	temps_del(a->tmp);
	io_sync_dir(a->path);
	out_free(&a->out);
	free(a->tmp);
	free(a->path);
	a->tmp = a->path = NULL;
}

void afile_abort(struct afile *a)
{
	if (!a->tmp)
		return;
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	unlink(a->tmp);
	temps_del(a->tmp);
	free(a->out.buf);
	a->out.buf = NULL;
	free(a->tmp);
	free(a->path);
	a->tmp = a->path = NULL;
}

/* mkdir -p; on failure *bad is the length of the prefix of path that
 * could not be made. */
static int mkdirs(const char *path, size_t *bad)
{
	char *p = xstrdup(path), *q;
	struct stat st;
	int rc = 0;

	*bad = strlen(path);
	if (!*path) {
		free(p);
		errno = ENOENT;
		return -1;
	}
	for (q = p + 1; ; q++) {
		char c = *q;

		if (c != '/' && c != '\0')
			continue;
		*q = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			*bad = (size_t)(q - p);
			rc = -1;
			break;
		}
		*q = c;
		if (!c)
			break;
	}
	free(p);
	if (rc == 0 && stat(path, &st) != 0)
		rc = -1;
	else if (rc == 0 && !S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		rc = -1;
	}
	return rc;
}

int io_try_mkdirs(const char *path)
{
	size_t bad;

	return mkdirs(path, &bad);
}

void io_mkdirs(const char *path)
{
	size_t bad;

	if (mkdirs(path, &bad) != 0)
		die_errno("cannot create folder '%.*s'", (int)bad, path);
}

void io_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrdup(path) : xstrdup(".");
	int dfd;

	if (slash)
		dir[slash - path + (slash == path)] = '\0';
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(dir);
}

void io_refuse_binary_tty(int fd, const char *what)
{
	if (isatty(fd))
		die_usage("refusing to write %s to a terminal; redirect it or use -f text", what);
}

unsigned char *io_read_file(const char *path, size_t max, size_t *len)
{
	struct in r;
	size_t cap = 1 << 16, n = 0;
	unsigned char *buf = xmalloc(cap + 1);

	in_open(&r, path);
	for (;;) {
		size_t got;

		if (n == cap) {
			if (cap >= max)
				die("file too large (over %zu bytes): '%s'", max, path);
			cap = cap * 2 > max ? max : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		got = in_read(&r, buf + n, cap - n);
		if (got == 0)
			break;
		n += got;
	}
	in_close(&r);
	buf[n] = '\0';
	*len = n;
	return buf;
}

int io_lock(const char *path, long *holder)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	char buf[32];
	ssize_t n;

	if (fd < 0)
		die_errno("cannot open the lock '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK)
			die_errno("cannot lock '%s'", path);
		n = pread(fd, buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		*holder = strtol(buf, NULL, 10);
		close(fd);
		return -1;
	}
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		die_errno("cannot write the lock '%s'", path);
	/* fd stays open (and locked) until the process ends */
	return 0;
}
