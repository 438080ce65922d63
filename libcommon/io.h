/* io: checked, buffered reading and writing, and atomic output files.
 *
 * struct out  buffered writer on a file descriptor.  A closed stdout pipe
 *             (EPIPE) ends the program quietly with status 0, as `| head`
 *             expects; any other write error dies naming the file.
 * struct in   buffered reader over a path ("-" is stdin) that retries
 *             short reads and EINTR.
 * struct afile  a file written under a temporary name in the final
 *             directory, fsynced and renamed on commit; removed by
 *             afile_abort, by exit() and by SIGINT/SIGTERM/SIGHUP, so no
 *             partial file ever appears under the final name.
 * io_read_file  whole file into memory (caller frees), with a size cap.
 * io_mkdirs     mkdir -p, the one every program uses.
 */
#ifndef GPT_IO_H
#define GPT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct out {
	int fd;
	const char *name;   /* for messages; not owned */
	unsigned char *buf;
	size_t len, cap;
	uint64_t total;     /* bytes written so far */
};

void out_init(struct out *o, int fd, const char *name);
void out_write(struct out *o, const void *p, size_t n);
static inline void out_putc(struct out *o, int c)
{
	if (o->len == o->cap)
		out_write(o, NULL, 0);
	o->buf[o->len++] = (unsigned char)c;
}
/* Decimal form of v. */
void out_u64(struct out *o, uint64_t v);
void out_flush(struct out *o);
/* Flush and free the buffer; the fd stays open. */
void out_free(struct out *o);

struct in {
	int fd;
	char *name;         /* owned copy, for messages */
	int is_stdin;
	int eof;
};

void in_open(struct in *r, const char *path);
/* Reads up to n bytes; returns 0 only at end of input. */
size_t in_read(struct in *r, void *p, size_t n);
/* Fills exactly n bytes unless the input ends first; returns bytes read. */
size_t in_read_full(struct in *r, void *p, size_t n);
/* The rest of an input without copying it. */
struct in_mapping {
	void *base;
	size_t len, skip;
};
/* When r is a regular file, maps it from the current offset to its present
 * end, leaves the offset at that end (so that in_read goes on with whatever
 * is appended later) and returns the bytes, *n of them, valid until
 * in_unmap (in_close does not end them); otherwise NULL.  Should the file
 * shrink while mapped, touching the lost part ends the program with a
 * one-line error (SIGBUS), as a read error would. */
const unsigned char *in_map(struct in *r, struct in_mapping *m, size_t *n);
/* The mapped bytes before off are done with: their pages leave the
 * process (the file's cache is untouched), so memory stays bounded. */
void in_map_release(struct in_mapping *m, size_t off);
void in_unmap(struct in_mapping *m);
void in_close(struct in *r);

struct afile {
	int fd;
	char *tmp;          /* temporary path, owned */
	char *path;         /* final path, owned */
	struct out out;     /* buffered writer on fd */
};

void afile_open(struct afile *a, const char *path);
/* Flush, fsync, rename over path, fsync the directory. */
void afile_commit(struct afile *a);
/* Remove the temporary file; safe to call twice. */
void afile_abort(struct afile *a);

/* Install SIGINT/SIGTERM/SIGHUP handlers that remove live temporary
 * files before dying of the signal.  Called by afile_open. */
void io_install_cleanup(void);

/* Die (status 2) when fd is a terminal and binary output is asked for. */
void io_refuse_binary_tty(int fd, const char *what);

/* Reads a whole file ("-" is stdin); dies when larger than max bytes.
 * Returns a malloc'd buffer with a NUL after the data. */
unsigned char *io_read_file(const char *path, size_t max, size_t *len);

/* mkdir -p: creates path and its missing parents (mode 0755).  io_mkdirs
 * dies naming the folder that cannot be made; io_try_mkdirs returns -1
 * with errno set instead (ENOTDIR when path is there but not a folder). */
void io_mkdirs(const char *path);
int io_try_mkdirs(const char *path);

/* fsync the folder that holds path, so that a rename into it survives a
 * crash; best effort, errors ignored. */
void io_sync_dir(const char *path);

/* Ignore SIGPIPE so writes report EPIPE; call at the start of main. */
/* An exclusive lock for the life of the process (flock on path, created
 * when missing; it holds the owner's pid as text).  0 when taken; -1
 * when another process holds it, with *holder its pid (0 when unknown).
 * Dies on I/O errors.  The lock goes with the process; the file stays. */
int io_lock(const char *path, long *holder);

void io_init(void);

#endif
