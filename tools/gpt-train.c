/* gpt-train: train a GPT-2 model on token shards.  Parses the options
 * and hands them to the trainer (libcommon/train.h), which keeps the run
 * folder and drives whichever engine --device picks (engine.h). */
#include "cli.h"
#include "engine.h"
#include "err.h"
#include "io.h"
#include "train.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NDEFS train_n_optdefs
#define MAXDEFS 64
enum { OPT_HELP = 1000, OPT_VERSION, OPT_PROGRESS, OPT_RECOMPUTE };

static void usage(void)
{
	printf("usage: gpt-train -i TRAIN_GLOB [--val VAL_GLOB] -o RUN [options]\n"
	       "       gpt-train --sft FILE --init CKPT [--val FILE] -o RUN [options]\n"
	       "       gpt-train --resume RUN|RUN/ckpt-NNNNNNNN.gpt [options]\n"
	       "Train a GPT-2 model (or a character-level LSTM) on token shards; see gpt-train(1).\n"
	       "  -i, --train GLOB        training shards\n"
	       "      --val GLOB          validation shards\n"
	       "  -o, --output RUN        run folder (checkpoints, latest, log.tsv, config, lock)\n"
	       "      --resume RUN        continue the run in RUN from RUN/latest, or from the\n"
	       "                          checkpoint RUN/ckpt-NNNNNNNN.gpt named\n"
	       "      --init CKPT         start from the weights of a checkpoint\n"
	       "      --model NAME        d12, d24, d36, d48, 163m or char-rnn (default d12)\n"
	       "      --layers N --heads N --width N --context N   model shape\n"
	       "      --arch NAME         gpt2 or lstm (default gpt2; char-rnn is an lstm)\n"
	       "      --embed N           an lstm's embedding width (default: --width)\n"
	       "      --vocab-size N      vocabulary (default: the shards')\n"
	       "      --vocab PATH        tokenizer vocabulary, to print samples as text\n"
	       "  -b, --batch B           sequences per micro-batch (default 4)\n"
	       "      --total-batch TOK   tokens per step, by gradient accumulation (default B*T)\n"
	       "  -n, --steps N           optimizer steps (default: one pass over the data)\n"
	       "      --tokens N          training tokens instead of steps\n"
	       "      --lr X              peak learning rate (default 6e-4)\n"
	       "      --warmup N          warmup steps (default steps/20)\n"
	       "      --schedule NAME     cosine, linear, wsd or constant (default cosine)\n"
	       "      --min-lr-frac F     final rate as a fraction of --lr (default 0.1)\n"
	       "      --decay-frac F      wsd: fraction of steps in the final decay (default 0.2)\n"
	       "      --weight-decay X --beta1 X --beta2 X --eps X   AdamW (0.1 0.9 0.95 1e-8)\n"
	       "      --clip X            clip the gradient norm to X, 0 off (default 1)\n"
	       "      --dropout P         dropout while training, as GPT-2 (default 0: off)\n"
	       "      --seed N            initialisation, data order, sampling (default 1337)\n"
	       "      --val-every N       validation loss every N steps, 0 off (default 250)\n"
	       "      --val-batches N     micro-batches of validation (default 20)\n"
	       "      --sample-every N    print a sample every N steps, 0 off (default 0)\n"
	       "      --sample-tokens N   tokens per sample (default 64)\n"
	       "      --checkpoint-every N  checkpoint every N steps, 0: only at the end (default 1000)\n"
	       "      --keep K            keep the newest K checkpoints, 0 all (default 3)\n"
	       "      --skip-outliers Z   skip updates whose loss or norm is Z sigmas high\n"
	       "  -j, --threads N         CPU threads\n"
	       "      --device DEV        auto, cpu or cuda (default auto)\n"
	       "      --recompute         gpu: recompute LayerNorm and GELU in the backward pass,\n"
	       "                          about 40%% less activation memory for a little more\n"
	       "                          time; for a micro-batch that does not fit otherwise\n"
	       "      --sft FILE          fine-tune on instruction records (JSON array or JSONL,\n"
	       "                          Alpaca or chat form) instead of shards; needs --init\n"
	       "      --template NAME     alpaca, phi3, transcript or a template file (default alpaca)\n"
	       "      --train-on-prompt   count the prompt's tokens in the loss too\n"
	       "      --pack              pack examples into rows instead of padding each\n"
	       "      --epochs N          passes over the examples (default 1)\n"
	       "      --split T,V,E       the series' split of FILE in percent, e.g. 85,5,10\n"
	       "      --split-out DIR     write the parts as DIR/{train,val,test}.jsonl\n"
	       "      --val-frac F        validate on the last F of FILE's records\n"
	       "      --classify FILE     fine-tune a classifier on labelled texts (label<TAB>text\n"
	       "                          lines, or JSONL); needs --init\n"
	       "      --trainable WHAT    head, last-block or all (default last-block)\n"
	       "      --labels A,B,...    the classes, in this order (default: the data's, sorted)\n"
	       "      --balance           undersample every class to the rarest\n"
	       "      --max-length N      cut texts to N tokens (default: the context)\n"
	       "      --text-field F --label-field F   JSONL fields (default text, label)\n"
	       "      --zero 0|1          under mpirun/srun: 1 shards the AdamW state over the ranks\n"
	       "      --dist-timeout S    under mpirun/srun: seconds a rank waits for the others\n"
	       "                          before it gives up (default 300)\n"
	       "  -q, --quiet             no progress, configuration or samples\n"
	       "      --progress          progress even when stderr is not a terminal\n"
	       "  -h, --help              this help\n"
	       "      --version           the version\n");
	exit(EXIT_OK);
}

int main(int argc, char **argv)
{
	struct train_opts opts, *o = &opts;
	struct option lopts[MAXDEFS + 6];
	char shortopts[64] = "hqi:j:o:b:n:";
	int given[MAXDEFS], c;
	enum progress_mode pmode = PROGRESS_AUTO;
	const struct train_optdef *defs = train_optdefs;

	err_init(argv[0]);
	io_init();
	if (NDEFS > MAXDEFS)
		die("internal error: more than %d settings", MAXDEFS);
	train_opts_default(o);
	memset(given, 0, sizeof given);
	for (int i = 0; i < NDEFS; i++) {
		lopts[i].name = defs[i].name;
		lopts[i].has_arg = defs[i].kind == TRAIN_FLAG ? no_argument : required_argument;
		lopts[i].flag = NULL;
		lopts[i].val = defs[i].shortopt ? defs[i].shortopt : 256 + i;
	}
	lopts[NDEFS] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	lopts[NDEFS + 1] = (struct option){ "version", no_argument, NULL, OPT_VERSION };
	lopts[NDEFS + 2] = (struct option){ "quiet", no_argument, NULL, 'q' };
	lopts[NDEFS + 3] = (struct option){ "progress", no_argument, NULL, OPT_PROGRESS };
	lopts[NDEFS + 4] = (struct option){ "recompute", no_argument, NULL, OPT_RECOMPUTE };
	lopts[NDEFS + 5] = (struct option){ NULL, 0, NULL, 0 };
	while ((c = cli_getopt(argc, argv, shortopts, lopts)) != -1) {
		int idx = -1;

		if (c == OPT_HELP || c == 'h')
			usage();
		if (c == OPT_VERSION)
			cli_version();
		if (c == 'q') {
			pmode = PROGRESS_QUIET;
			continue;
		}
		if (c == OPT_PROGRESS) {
			pmode = PROGRESS_FORCE;
			continue;
		}
		if (c == OPT_RECOMPUTE) {
			o->recompute = 1;
			continue;
		}
		if (c >= 256 && c < 256 + NDEFS)
			idx = c - 256;
		for (int i = 0; idx < 0 && i < NDEFS; i++)
			if (defs[i].shortopt && defs[i].shortopt == c)
				idx = i;
		if (idx < 0)
			die_usage("unknown option");
		train_opts_set(o, idx, optarg);
		given[idx] = 1;
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	o->progress = pmode;
	if (engine_device_check(o->device) != 0)
		die_usage("unknown device '%s' (auto, cpu, cuda)", o->device);
	return train_run(o, given);
}
