/* moai-run: runs a plan directory written by moaicc.
 *
 *   moai-run PLAN_DIR --input NAME=FILE.npy ... [--output-dir DIR] [--repeat N]
 *   moai-run TRAIN_PLAN_DIR --data DATA [--epochs N | --steps N] [--save DIR] ...
 *
 * Loads and checks the plan (libmoairt). An inference plan: binds the inputs,
 * runs one step (or a timed series) and writes or prints the outputs. A
 * training plan: trains it on --data (train.c). Library code returns
 * statuses; only this file turns them into messages and exit codes: 0 on
 * success, 1 on an error, 2 on a usage error. */
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/dtype.h"
#include "loader/manifest.h"
#include "moai_run.h"

static void usage(FILE *out) {
  fprintf(out,
      "usage: moai-run PLAN_DIR --input NAME=FILE.npy ... [options]\n"
      "       moai-run TRAIN_PLAN_DIR --data DATA [training options]\n"
      "\n"
      "Runs a plan directory written by moaicc: checks it (manifest, SHA-256 of the\n"
      "device binaries and weights, CPU features), binds the inputs, runs one step\n"
      "and writes or prints the outputs. A training plan (moaicc --train) is trained\n"
      "on DATA instead (docs/training.md, \"Running training\").\n"
      "\n"
      "inputs and outputs:\n"
      "  --input NAME=FILE.npy    the graph input NAME from a NumPy .npy file\n"
      "                           (repeatable; bfloat16 inputs take <u2 arrays of bits)\n"
      "  --input FILE.safetensors every tensor of the file, each the input of its name\n"
      "  --input FILE.npy         the only input of a single-input plan\n"
      "  --output-dir DIR         write each output as DIR/NAME.npy (atomically; DIR is\n"
      "                           created; characters other than A-Za-z0-9._:- become _)\n"
      "                           instead of printing a summary\n"
      "\n"
      "running:\n"
      "  --threads N              OpenMP threads per step (default: all, i.e.\n"
      "                           OMP_NUM_THREADS or the number of cores)\n"
      "  --repeat N               run N timed steps and print the median, min and max\n"
      "                           time per step and the throughput\n"
      "  --warmup N               untimed steps before the timed ones (default 1 with\n"
      "                           --repeat)\n"
      "\n"
      "training (training plans only):\n"
      "  --data DATA              the examples: a .safetensors file with one array per\n"
      "                           graph input, or a directory of INPUT.npy files; dim 0\n"
      "                           counts examples, the other dims are the plan input's\n"
      "  --epochs N               train N epochs (default 1)\n"
      "  --steps N                train until N optimizer steps are done (counting the\n"
      "                           resumed ones); not with --epochs\n"
      "  --shuffle                a new random order every epoch (default: in order)\n"
      "  --seed S                 the shuffle's seed, 0 to 2^64-1 (default 0)\n"
      "  --drop-last              drop each epoch's trailing partial step (default)\n"
      "  --no-drop-last           train on it, padded with rows whose labels are all\n"
      "                           ignore_index (plans whose loss weight counts tokens)\n"
      "  --log FILE.jsonl         one JSON object per step (appended to with --resume)\n"
      "  --log-every N            a progress line every N steps instead of the bar\n"
      "  --save DIR               write DIR/checkpoint.safetensors at the end (atomically)\n"
      "  --save-every N           ... and every N steps (needs --save)\n"
      "  --resume DIR             continue from DIR/checkpoint.safetensors: weights,\n"
      "                           optimizer state, step and position in the data\n"
      "  --dump-gradients FILE    write the first step's mean-loss gradients of the\n"
      "                           trainable weights to FILE (.safetensors)\n"
      "  --no-overlap             data parallelism: sum the gradients over the dp ranks\n"
      "                           after the backward, instead of bucket by bucket on a\n"
      "                           communication thread while the last micro-batch's\n"
      "                           backward runs (the results are the same bits)\n"
      "  (--threads N applies; -q/--quiet silences the progress bar and summary)\n"
      "\n"
      "general:\n"
      "  -q, --quiet              print nothing but errors\n"
      "  -v, --verbose            progress messages on stderr\n"
      "  --help                   show this help\n"
      "  --version                show the version\n");
}

/* A positive (or, with allow_zero, non-negative) integer option value. */
static bool parse_count(const char *flag, const char *value, bool allow_zero, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (errno || end == value || *end || v < (allow_zero ? 0 : 1) || v > 1000000000L) {
    fprintf(stderr, "moai-run: %s takes a %s integer, not '%s'\n", flag,
            allow_zero ? "non-negative" : "positive", value);
    return false;
  }
  *out = v;
  return true;
}

/* An unsigned 64-bit option value (the seed). */
static bool parse_u64(const char *flag, const char *value, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(value, &end, 10);
  if (errno || end == value || *end || value[0] == '-') {
    fprintf(stderr, "moai-run: %s takes an integer from 0 to 2^64-1, not '%s'\n", flag, value);
    return false;
  }
  *out = v;
  return true;
}

/* Returns 0 to continue, or an exit code + 1. */
static int parse_args(int argc, char **argv, run_args_t *a) {
  a->warmup = -1;
  a->drop_last = true;
  a->inputs = calloc((size_t)argc, sizeof(*a->inputs));
  if (!a->inputs) return 2;
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    const char *value = NULL;
    long n = 0;
#define TAKES_VALUE(flag)                                                 \
  ((strcmp(arg, flag) == 0 && i + 1 < argc && (value = argv[++i])) ||     \
   (strncmp(arg, flag "=", sizeof(flag)) == 0 && (value = arg + sizeof(flag))))
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(arg, "--version") == 0) {
      printf("moai-run %s (plan format %d, device ABI %u)\n", moai_runtime_version(),
             MOAI_PLAN_FORMAT_VERSION, MOAI_ABI_VERSION);
      return 1;
    } else if (TAKES_VALUE("--input")) {
      a->inputs[a->input_count++] = value;
    } else if (TAKES_VALUE("--output-dir")) {
      a->output_dir = value;
    } else if (TAKES_VALUE("--threads")) {
      if (!parse_count("--threads", value, false, &n)) return 3;
      a->threads = (int)n;
    } else if (TAKES_VALUE("--repeat")) {
      if (!parse_count("--repeat", value, false, &a->repeat)) return 3;
    } else if (TAKES_VALUE("--warmup")) {
      if (!parse_count("--warmup", value, true, &a->warmup)) return 3;
    } else if (TAKES_VALUE("--data")) {
      a->data = value;
    } else if (TAKES_VALUE("--epochs")) {
      if (!parse_count("--epochs", value, false, &a->epochs)) return 3;
      a->training_option = "--epochs";
    } else if (TAKES_VALUE("--steps")) {
      if (!parse_count("--steps", value, false, &a->steps)) return 3;
      a->training_option = "--steps";
    } else if (strcmp(arg, "--shuffle") == 0) {
      a->shuffle = true;
      a->training_option = "--shuffle";
    } else if (TAKES_VALUE("--seed")) {
      if (!parse_u64("--seed", value, &a->seed)) return 3;
      a->training_option = "--seed";
    } else if (strcmp(arg, "--drop-last") == 0 || strcmp(arg, "--no-drop-last") == 0) {
      a->drop_last = strcmp(arg, "--drop-last") == 0;
      a->training_option = a->drop_last ? "--drop-last" : "--no-drop-last";
    } else if (TAKES_VALUE("--log")) {
      a->log_jsonl = value;
      a->training_option = "--log";
    } else if (TAKES_VALUE("--log-every")) {
      if (!parse_count("--log-every", value, false, &a->log_every)) return 3;
      a->training_option = "--log-every";
    } else if (TAKES_VALUE("--save")) {
      a->save_dir = value;
      a->training_option = "--save";
    } else if (TAKES_VALUE("--save-every")) {
      if (!parse_count("--save-every", value, false, &a->save_every)) return 3;
      a->training_option = "--save-every";
    } else if (TAKES_VALUE("--resume")) {
      a->resume_dir = value;
      a->training_option = "--resume";
    } else if (TAKES_VALUE("--dump-gradients")) {
      a->dump_gradients = value;
      a->training_option = "--dump-gradients";
    } else if (strcmp(arg, "--no-overlap") == 0) {
      a->no_overlap = true;
      a->training_option = "--no-overlap";
    } else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
      a->quiet = true;
    } else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
      a->verbose = true;
    } else if (strcmp(arg, "--input") == 0 || strcmp(arg, "--output-dir") == 0 ||
               strcmp(arg, "--threads") == 0 || strcmp(arg, "--repeat") == 0 ||
               strcmp(arg, "--warmup") == 0 || strcmp(arg, "--data") == 0 ||
               strcmp(arg, "--epochs") == 0 || strcmp(arg, "--steps") == 0 ||
               strcmp(arg, "--seed") == 0 || strcmp(arg, "--log") == 0 ||
               strcmp(arg, "--log-every") == 0 || strcmp(arg, "--save") == 0 ||
               strcmp(arg, "--save-every") == 0 || strcmp(arg, "--resume") == 0 ||
               strcmp(arg, "--dump-gradients") == 0) {
      fprintf(stderr, "moai-run: %s needs a value (see moai-run --help)\n", arg);
      return 3;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      fprintf(stderr, "moai-run: unknown option '%s' (see moai-run --help)\n", arg);
      return 3;
    } else if (!a->plan_dir) {
      a->plan_dir = arg;
    } else {
      fprintf(stderr, "moai-run: more than one plan directory given ('%s' and '%s')\n",
              a->plan_dir, arg);
      return 3;
    }
#undef TAKES_VALUE
  }
  if (!a->plan_dir) {
    fprintf(stderr, "moai-run: no plan directory given (usage: moai-run PLAN_DIR --input "
                    "NAME=FILE.npy ...; see --help)\n");
    return 3;
  }
  if (a->epochs && a->steps) {
    fprintf(stderr, "moai-run: give --epochs or --steps, not both\n");
    return 3;
  }
  if (a->save_every && !a->save_dir) {
    fprintf(stderr, "moai-run: --save-every needs --save DIR\n");
    return 3;
  }
  if (a->warmup < 0) a->warmup = a->repeat > 0 ? 1 : 0;
  return 0;
}

/* One line on stderr: the message, then any context after "; ". */
static void report(moai_status_t status) {
  char *text = NULL;
  size_t size = 0;
  FILE *mem = open_memstream(&text, &size);
  if (mem) {
    moai_status_fprint(mem, status, false);
    fclose(mem);
  }
  if (!text) {
    fprintf(stderr, "moai-run: error: %s\n", moai_status_message(status));
  } else {
    while (size > 0 && text[size - 1] == '\n') text[--size] = '\0';
    fprintf(stderr, "moai-run: error: ");
    for (const char *p = text; *p; ++p) {
      if (p[0] == '\n' && p[1] == ' ' && p[2] == ' ') {
        fputs("; ", stderr);
        p += 2;
      } else {
        fputc(*p, stderr);
      }
    }
    fputc('\n', stderr);
  }
  free(text);
  moai_status_free(status);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void print_timing(const moai_plan_t *plan, double *ms, long n) {
  double total = 0;
  for (long i = 0; i < n; ++i) total += ms[i];
  qsort(ms, (size_t)n, sizeof(*ms), compare_double);
  double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  double per_s = total > 0 ? (double)n * 1e3 / total : 0;
  printf("%ld steps on %d threads: median %.3f ms, min %.3f ms, max %.3f ms per step; "
         "%.2f steps/s", n, moai_plan_last_thread_count(plan), median, ms[0], ms[n - 1], per_s);
  const moai_tensor_desc_t *first = moai_plan_input_desc(plan, 0);
  if (first && first->rank > 0 && first->dims[0] > 0)
    printf(", %.2f samples/s (batch %lld, dimension 0 of '%s')", per_s * (double)first->dims[0],
           (long long)first->dims[0], first->name);
  printf("\n");
}

/* Warm-up, then the timed steps (or just one step). */
static moai_status_t run_steps(const run_args_t *a, moai_plan_t *plan,
                               const input_set_t *inputs) {
  for (long i = 0; i < a->warmup; ++i) {
    MOAI_RETURN_IF_ERROR(inputs_set(inputs, plan));
    MOAI_RETURN_IF_ERROR(moai_plan_run(plan, a->threads));
  }
  if (a->repeat == 0) {
    MOAI_RETURN_IF_ERROR(inputs_set(inputs, plan));
    return moai_plan_run(plan, a->threads);
  }
  double *ms = calloc((size_t)a->repeat, sizeof(double));
  if (!ms) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  moai_status_t status = moai_ok_status();
  for (long i = 0; i < a->repeat && !status; ++i) {
    /* Inputs are copied outside the timed region: a run consumes them. */
    status = inputs_set(inputs, plan);
    double t0 = now_ms();
    if (!status) status = moai_plan_run(plan, a->threads);
    ms[i] = now_ms() - t0;
  }
  if (!status && !a->quiet) print_timing(plan, ms, a->repeat);
  free(ms);
  return status;
}

/* Binds the inputs, runs, writes or prints the outputs. */
static moai_status_t run_inference(const run_args_t *a, moai_plan_t *plan, input_set_t *inputs) {
  if (a->data || a->training_option)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s is for training plans; %s is an inference plan (compile with "
                       "moaicc --train to train)", a->data ? "--data" : a->training_option,
                       a->plan_dir);
  MOAI_RETURN_IF_ERROR(inputs_open(a, plan, inputs));
  if (a->output_dir) MOAI_RETURN_IF_ERROR(outputs_check_names(plan));
  MOAI_RETURN_IF_ERROR(run_steps(a, plan, inputs));
  if (a->output_dir) return outputs_write(plan, a->output_dir, a->quiet);
  return a->quiet ? moai_ok_status() : outputs_print(plan);
}

/* A training plan takes --data, and none of the inference options. */
static moai_status_t check_training_args(const run_args_t *a) {
  const char *bad = a->input_count ? "--input" : a->output_dir ? "--output-dir"
                    : a->repeat    ? "--repeat" : a->warmup > 0 ? "--warmup" : NULL;
  if (bad)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s is for inference plans; %s is a training "
                       "plan: give its examples with --data (see --help)", bad, a->plan_dir);
  if (!a->data)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s is a training plan: give its examples with "
                       "--data FILE.safetensors or --data DIR (see --help)", a->plan_dir);
  return moai_ok_status();
}

/* The top manifest of a multi-device plan (format 3), or NULL for any other
 * directory: those are opened, and their errors reported, by moai_plan_open.
 * A multi-device plan has no plan of its own to open; each rank opens its
 * device's (train.c). */
static moai_manifest_t *read_mesh_manifest(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof(path), "%s/manifest.json", dir) >= (int)sizeof(path)) return NULL;
  moai_manifest_t *m = NULL;
  moai_status_t status = moai_manifest_read_file(path, moai_allocator_system(), &m);
  if (status) {
    moai_status_free(status);
    return NULL;
  }
  if (m->format_version < 3) {
    moai_manifest_free(m);
    return NULL;
  }
  return m;
}

int main(int argc, char **argv) {
  run_args_t a = {0};
  int rc = parse_args(argc, argv, &a);
  if (rc) {
    free(a.inputs);
    return rc - 1;
  }
  moai_log_sink_t log = moai_log_sink_stderr(a.verbose ? MOAI_LOG_LEVEL_INFO
                                                       : MOAI_LOG_LEVEL_WARNING);
  moai_plan_options_t options = moai_plan_options_default();
  options.log = &log;
  moai_plan_t *plan = NULL;
  input_set_t inputs = {0};
  moai_manifest_t *top = read_mesh_manifest(a.plan_dir);
  moai_status_t status = moai_ok_status();
  if (top) {
    if (top->training) status = check_training_args(&a);
    if (!status) status = train_run_mesh(&a, top, &log);
  } else {
    status = moai_plan_open(a.plan_dir, &options, moai_allocator_system(), &plan);
    if (!status && moai_plan_training(plan)) {
      status = check_training_args(&a);
      if (!status) status = train_run(&a, plan, &log);
    } else if (!status) {
      status = run_inference(&a, plan, &inputs);
    }
  }
  rc = 0;
  if (status) {
    report(status);
    rc = 1;
  }
  if (plan) inputs_close(&inputs); /* fine when never opened */
  moai_plan_close(plan);
  moai_manifest_free(top);
  free(a.inputs);
  return rc;
}
