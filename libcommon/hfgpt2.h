/* hfgpt2: the old name of hfweights.h, kept only until
 * tests/unit/test_infer.c includes hfweights.h and calls hfweights_*;
 * remove it then. */
#ifndef GPT_HFGPT2_H
#define GPT_HFGPT2_H

#include "hfweights.h"

#define hfgpt2_import hfweights_import
#define hfgpt2_import_files hfweights_import_files
#define hfgpt2_export hfweights_export

#endif
