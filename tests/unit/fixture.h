/* fixture.h: the PyTorch reference files of tests/fixtures/model/NAME.bin
 * (GPTFIX1, written by tests/gen_model_fixtures.py and
 * tests/gen_lstm_fixtures.py): named records of float32 values.
 *   fixture_load(f, NAME)   tests/fixtures/model/NAME.bin under $ROOT;
 *                           0, or -1 when missing or malformed
 *   fixture_get(f, NAME, &n), fixture_need(f, NAME, want)  a record
 *                           (need CHECKs that it is there with want
 *                           values, want 0: any)
 *   fixture_free(f)
 * Include after test.h. */
#ifndef GPT_TEST_FIXTURE_H
#define GPT_TEST_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	int n;
	char **names;
	float **data;   /* aligned copies */
	size_t *count;
};

static inline void fixture_free(struct fixture *f)
{
	for (int i = 0; i < f->n; i++) {
		free(f->names[i]);
		free(f->data[i]);
	}
	free(f->names);
	free(f->data);
	free(f->count);
	memset(f, 0, sizeof *f);
}

/* Read tests/fixtures/model/NAME.bin (format in gen_model_fixtures.py). */
static inline int fixture_load(struct fixture *f, const char *name)
{
	char path[512];
	unsigned char *buf;
	size_t size, at = 8;
	long n;
	FILE *fp;
	const char *root = getenv("ROOT");

	memset(f, 0, sizeof *f);
	snprintf(path, sizeof path, "%s/tests/fixtures/model/%s.bin", root ? root : ".", name);
	if (!(fp = fopen(path, "rb")))
		return -1;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	size = fread(buf, 1, n > 0 ? (size_t)n : 0, fp);
	fclose(fp);
	if (size != (size_t)n || n < 8 || memcmp(buf, "GPTFIX1\n", 8) != 0) {
		free(buf);
		return -1;
	}
	while (at + 4 <= size) {
		uint32_t len, cnt;
		memcpy(&len, buf + at, 4);
		if (len > size - at - 8)
			break;
		memcpy(&cnt, buf + at + 4 + len, 4);
		if ((size_t)cnt > (size - at - 8 - len) / 4)
			break;
		f->names = realloc(f->names, (size_t)(f->n + 1) * sizeof *f->names);
		f->data = realloc(f->data, (size_t)(f->n + 1) * sizeof *f->data);
		f->count = realloc(f->count, (size_t)(f->n + 1) * sizeof *f->count);
		f->names[f->n] = calloc(1, len + 1);
		memcpy(f->names[f->n], buf + at + 4, len);
		f->data[f->n] = malloc((size_t)cnt * 4 + 4);
		memcpy(f->data[f->n], buf + at + 8 + len, (size_t)cnt * 4);
		f->count[f->n++] = cnt;
		at += 8 + len + (size_t)cnt * 4;
	}
	free(buf);
	if (at != size) {
		fixture_free(f);
		return -1;
	}
	return 0;
}

/* The float32 values of record `name`, count in *n; NULL if absent. */
static inline const float *fixture_get(const struct fixture *f, const char *name, size_t *n)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->names[i], name) == 0) {
			*n = f->count[i];
			return f->data[i];
		}
	*n = 0;
	return NULL;
}

static inline const float *fixture_need(const struct fixture *f, const char *name, size_t want)
{
	size_t n;
	const float *p = fixture_get(f, name, &n);
	CHECK(p && (want == 0 || n == want), "fixture record '%s' missing or %zu values", name, n);
	return p && (want == 0 || n == want) ? p : NULL;
}

#endif
