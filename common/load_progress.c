/*
 * load_progress.c - the stage names of struct ld_progress.
 */
#include "common/load_progress.h"

const char *const ld_stage_name[LD_N_STAGES] = { "metadata", "first_byte", "transfer", "sync",
						 "verify" };
