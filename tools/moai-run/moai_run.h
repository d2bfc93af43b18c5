/* moai-run's parts: options, input binding (inputs.c), output writing and
 * printing (outputs.c). Library calls return statuses; only moai_run.c turns
 * them into messages and exit codes. */
#ifndef MOAI_TOOLS_MOAI_RUN_H
#define MOAI_TOOLS_MOAI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "loader/plan.h"

typedef struct run_args_t {
  const char *plan_dir;
  const char **inputs; /* the --input values */
  size_t input_count;
  const char *output_dir;
  int threads;  /* 0: all */
  long repeat;  /* timed steps; 0: one untimed step */
  long warmup;  /* untimed steps before the timed ones (-1: default) */
  bool quiet, verbose;
  /* Training mode (train.c; docs/training.md, "Running training"). */
  const char *data;           /* --data FILE.safetensors or DIR of .npy */
  long epochs, steps;         /* 0: not given (default: 1 epoch) */
  bool shuffle;
  uint64_t seed;
  bool drop_last;             /* default true */
  const char *log_jsonl;      /* --log */
  long log_every;             /* 0: not given */
  const char *save_dir;
  long save_every;
  const char *resume_dir;
  const char *dump_gradients;
  bool no_overlap;            /* --no-overlap: dp all-reduce after the backward */
  const char *training_option; /* the first training option given, for messages */
} run_args_t;

/* One plan input's data, from a .npy file or a tensor of a .safetensors. */
typedef struct input_binding_t {
  const char *origin; /* for messages: the file, or "FILE: tensor 'x'" */
  char origin_buf[1200];
  int32_t dtype;
  int32_t rank;
  const int64_t *dims;
  const void *data;
} input_binding_t;

/* Everything the --input options opened. */
typedef struct input_set_t {
  moai_npy_t **npys;
  size_t npy_count;
  moai_safetensors_t **sts;
  size_t st_count;
  input_binding_t *bindings; /* one per plan input */
} input_set_t;

/* Opens every --input and binds each plan input to its data; errors name
 * the option or file and the input. */
moai_status_t inputs_open(const run_args_t *args, const moai_plan_t *plan,
                          input_set_t *out) MOAI_MUST_USE;
/* Copies every bound input into the plan (before each step). */
moai_status_t inputs_set(const input_set_t *inputs, moai_plan_t *plan) MOAI_MUST_USE;
void inputs_close(input_set_t *inputs);

/* Checks that every output gets its own file name in the output directory
 * (before running). */
moai_status_t outputs_check_names(const moai_plan_t *plan) MOAI_MUST_USE;
/* Writes every output as DIR/NAME.npy (created if missing); all or nothing:
 * on failure the files written so far are removed. */
moai_status_t outputs_write(const moai_plan_t *plan, const char *dir, bool quiet) MOAI_MUST_USE;
/* Prints each output's dtype, shape and first values on stdout. */
moai_status_t outputs_print(const moai_plan_t *plan) MOAI_MUST_USE;

/* Trains a training plan (moai_plan_training(plan) != NULL) as the
 * training options say; progress on stderr, a summary on stdout. */
moai_status_t train_run(const run_args_t *args, moai_plan_t *plan,
                        const moai_log_sink_t *log) MOAI_MUST_USE;

/* Trains a multi-device training plan (format-3 top manifest `top`, read
 * from args->plan_dir): one rank per mesh coordinate, as threads or MPI
 * processes (docs/training.md, "Meshes"). */
moai_status_t train_run_mesh(const run_args_t *args, const moai_manifest_t *top,
                             const moai_log_sink_t *log) MOAI_MUST_USE;

#endif /* MOAI_TOOLS_MOAI_RUN_H */
