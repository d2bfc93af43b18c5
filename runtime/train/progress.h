/* Training progress: a one-line bar redrawn with '\r' on a terminal, plain
 * log lines otherwise, and optionally one JSON object per step in a .jsonl
 * file (docs/training.md, "Progress and logs"). The formatters are separate
 * from the writer so tests check the exact text. */
#ifndef MOAI_TRAIN_PROGRESS_H
#define MOAI_TRAIN_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One optimizer step, as reported. */
typedef struct moai_progress_record_t {
  int64_t step;        /* steps completed, this one included (1-based) */
  int64_t total_steps; /* the run's last step */
  uint64_t epoch;      /* the epoch the step's examples came from (0-based) */
  double loss;         /* sum(loss_k * w_k) / sum(w_k) over the micro-batches */
  double lr;           /* the learning rate the update used */
  double tokens;       /* summed loss weight ("tokens" plans), else examples */
  uint64_t examples;   /* real examples (no filler rows) */
  double seconds;      /* wall time of the step */
  double elapsed;      /* wall time since the run started */
  int64_t first_step;  /* the step the run started after (resumed runs: > 0) */
  /* Data parallelism: gradient buckets the last backward handed to the
   * communication thread (moai-run; written to the JSONL when above 0). */
  int overlapped_buckets;
} moai_progress_record_t;

/* "step 12/100  loss 3.2145  lr 1.00e-03  tokens 480  tok/s 1234  elapsed 1.2s"
 * (tok/s: the step's tokens over its seconds). Returns what snprintf does. */
int moai_progress_format_line(const moai_progress_record_t *r, char *buf, size_t size);

/* {"step":12,"epoch":0,"loss":3.2145,"lr":0.001,"tokens":480,"examples":8,
 *  "seconds":0.0123} with no newline (then ,"overlapped_buckets":N when N >
 * 0); a non-finite loss is written as null (JSON has no NaN). */
int moai_progress_format_json(const moai_progress_record_t *r, char *buf, size_t size);

/* "  12/100 [######------------------]  loss 3.2145  1234 tok/s  ETA 0:01:23"
 * (no '\r'; `width` characters of bar; ETA from this run's mean step time). */
int moai_progress_format_bar(const moai_progress_record_t *r, int width, char *buf, size_t size);

typedef struct moai_progress_options_t {
  FILE *out;            /* where the bar or lines go (moai-run: stderr) */
  bool bar;             /* draw the bar (out is a terminal) instead of lines */
  bool quiet;           /* neither bar nor lines (the .jsonl is still written) */
  int64_t log_every;    /* lines every N steps (and the last); <= 0: 1 */
  const char *jsonl;    /* NULL or the .jsonl path */
  bool jsonl_append;    /* append (a resumed run) instead of truncating */
} moai_progress_options_t;

typedef struct moai_progress_t {
  moai_progress_options_t options;
  FILE *jsonl;
  bool bar_drawn;
} moai_progress_t;

/* Opens the .jsonl file if any (errors name it). */
moai_status_t moai_progress_open(const moai_progress_options_t *options,
                                 moai_progress_t *out) MOAI_MUST_USE;
/* Reports one step: the bar or a line, and a flushed .jsonl line. */
moai_status_t moai_progress_step(moai_progress_t *progress,
                                 const moai_progress_record_t *record) MOAI_MUST_USE;
/* Ends the bar's line and closes the .jsonl file (errors on a failed close). */
moai_status_t moai_progress_close(moai_progress_t *progress) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_TRAIN_PROGRESS_H */
