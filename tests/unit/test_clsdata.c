/* test_clsdata: labelled texts for classification (clsdata.h): the
 * SMS-Spam-Collection form and JSONL, labels sorted or given, balancing
 * to the rarest class, the seeded 70/10/20 split, the parts written back,
 * and the bad inputs the issue names (a line without a tab, an unknown
 * label, one class only, an empty file, too many classes), each one line
 * and status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clsdata.h"
#include "err.h"
#include "io.h"
#include "model.h"
#include "test.h"

static void parse(struct cls_data *d, const char *text, const char *labels)
{
	struct cls_opts o = { NULL, NULL, labels };
	cls_parse(d, text, strlen(text), "t.tsv", &o);
}

static void test_tsv(void)
{
	struct cls_data d;

	parse(&d, "spam\tWin a prize now\r\nham\tsee you at 5\n\nham\tok\tthen\n", NULL);
	CHECK(d.n == 3 && d.n_labels == 2 && !d.jsonl, "%zu records, %d labels", d.n, d.n_labels);
	CHECK(!strcmp(d.labels[0], "ham") && !strcmp(d.labels[1], "spam"), "labels sorted");
	CHECK(d.r[0].label == 1 && !strcmp(d.r[0].text, "Win a prize now") && d.r[0].line == 1,
	      "first record '%s' (CR dropped)", d.r[0].text);
	CHECK(!strcmp(d.r[2].text, "ok\tthen") && d.r[2].line == 4, "the text is all after the first tab");
	cls_free(&d);
	parse(&d, "spam\ta\nham\tb\n", "spam,ham");
	CHECK(!strcmp(d.labels[0], "spam") && d.r[0].label == 0 && d.r[1].label == 1,
	      "--labels keeps its order");
	cls_free(&d);
}

static void test_jsonl(void)
{
	struct cls_data d;
	struct cls_opts o = { "body", "y", NULL };
	const char *t = "{\"body\": \"caf\\u00e9\", \"y\": 1}\n{\"body\": \"b\", \"y\": 0}\n"
	                "{\"body\": \"c\", \"y\": 1, \"extra\": []}\n";

	cls_parse(&d, t, strlen(t), "t.jsonl", &o);
	CHECK(d.jsonl && d.n == 3 && d.n_labels == 2 && !strcmp(d.labels[0], "0") &&
	      !strcmp(d.labels[1], "1"), "jsonl with integer labels");
	CHECK(!strcmp(d.r[0].text, "caf\xc3\xa9") && d.r[0].label == 1, "text decoded");
	cls_free(&d);
}

static void test_balance_split(void)
{
	struct cls_data d, e;
	struct buf { char *p; size_t n; } b = { NULL, 0 };
	size_t bounds[6], counts[2], cap = 0;
	char line[64], *back;
	const char *path;
	size_t len;

	/* 100 ham, 20 spam */
	for (int i = 0; i < 120; i++) {
		int k = snprintf(line, sizeof line, "%s\tmessage %d\n", i % 6 == 5 ? "spam" : "ham", i);
		if (b.n + (size_t)k + 1 > cap)
			b.p = xrealloc(b.p, cap = (b.n + (size_t)k + 1) * 2);
		memcpy(b.p + b.n, line, (size_t)k + 1);
		b.n += (size_t)k;
	}
	parse(&d, b.p, NULL);
	cls_balance(&d, 123);
	cls_counts(&d, 0, d.n, counts);
	CHECK(d.n == 40 && counts[0] == 20 && counts[1] == 20, "balanced: %zu %zu", counts[0],
	      counts[1]);
	for (size_t i = 1; i < d.n; i++)
		CHECK(d.r[i].line > d.r[i - 1].line, "kept in file order");
	parse(&e, b.p, NULL);
	cls_balance(&e, 123);
	CHECK(e.n == d.n && memcmp(e.r[7].text, d.r[7].text, d.r[7].len + 1) == 0,
	      "the same seed keeps the same records");
	cls_free(&e);
	parse(&e, b.p, NULL);
	cls_balance(&e, 124);
	{
		int same = 1;
		for (size_t i = 0; i < e.n; i++)
			same &= !strcmp(e.r[i].text, d.r[i].text);
		CHECK(!same, "another seed keeps other ham");
	}
	cls_free(&e);

	cls_split(&d, "70,10,20", 123, bounds);
	CHECK(bounds[1] == 28 && bounds[3] - bounds[2] == 4 && bounds[5] - bounds[4] == 8,
	      "70/10/20 of 40: %zu %zu %zu", bounds[1], bounds[3] - bounds[2], bounds[5] - bounds[4]);
	{
		int shuffled = 0;
		for (size_t i = 0; i < d.n; i++)
			shuffled |= d.order[i] != i;
		CHECK(shuffled, "the split shuffles");
	}
	path = test_path("part.tsv");
	cls_write_part(&d, bounds[4], bounds[5], path);
	back = (char *)io_read_file(path, 1 << 20, &len);
	parse(&e, back, NULL);
	CHECK(e.n == 8 && !strcmp(e.r[0].text, d.r[d.order[bounds[4]]].text) &&
	      e.r[0].label == d.r[d.order[bounds[4]]].label, "the test part written back");
	cls_free(&e);
	free(back);
	free(b.p);
	cls_free(&d);
}

static void parse_child(const char *text)
{
	struct cls_data d;
	parse(&d, text, NULL);
}

static void parse_labelled(const char *text)
{
	struct cls_data d;
	parse(&d, text, "ham,spam");
}

static void many_classes(const char *arg)
{
	size_t n = (GPT_MAX_CLASSES + 1) * 16, k = 0;
	char *t = xmalloc(n);
	(void)arg;
	for (int i = 0; i <= GPT_MAX_CLASSES; i++)
		k += (size_t)snprintf(t + k, n - k, "c%d\tx\n", i);
	parse_child(t);
}

static void test_bad(void)
{
	static const struct { const char *text, *want; } bad[] = {
		{ "spam\tok\nno tab here\n", "t.tsv: line 2: no tab between the label and the text" },
		{ "", "no labelled records in 't.tsv'" },
		{ "\n  \n", "no labelled records in 't.tsv'" },
		{ "ham\ta\nham\tb\n", "'t.tsv' holds one class only ('ham'): a classifier needs two" },
		{ "\tno label\nham\tb\n", "t.tsv: line 1: an empty label" },
		{ "{\"text\": 1, \"label\": \"a\"}\n", "t.tsv: line 1: no text field \"text\"" },
		{ "{\"text\": \"x\"}\n", "t.tsv: line 1: no label field \"label\"" },
		{ "{\"text\": \"x\", \"label\": \"a\"}\n[1]\n", "t.tsv: line 2: not a JSON object" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = test_child(parse_child, bad[i].text, err, sizeof err);
		CHECK(st == 1 && strstr(err, bad[i].want) && strchr(err, '\n') == strrchr(err, '\n'),
		      "case %zu: status %d, '%s'", i, st, err);
	}
	{
		int st = test_child(parse_labelled, "ham\ta\neggs\tb\n", err, sizeof err);
		CHECK(st == 1 && strstr(err, "t.tsv: line 2: label 'eggs' is not one of --labels"),
		      "an unknown label: %d '%s'", st, err);
	}
	{
		int st = test_child(many_classes, "", err, sizeof err);
		CHECK(st == 1 && strstr(err, "more than 1024 classes"), "1025 classes: %d '%s'", st, err);
	}
}

int main(void)
{
	err_init("test_clsdata");
	RUN(test_tsv);
	RUN(test_jsonl);
	RUN(test_balance_split);
	RUN(test_bad);
	return TEST_END();
}
