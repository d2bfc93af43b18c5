#include "train/progress.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static double per_second(double amount, double seconds) {
  return seconds > 0 ? amount / seconds : 0.0;
}

int moai_progress_format_line(const moai_progress_record_t *r, char *buf, size_t size) {
  return snprintf(buf, size,
                  "step %lld/%lld  loss %.4f  lr %.2e  tokens %.0f  tok/s %.0f  elapsed %.1fs",
                  (long long)r->step, (long long)r->total_steps, r->loss, r->lr, r->tokens,
                  per_second(r->tokens, r->seconds), r->elapsed);
}

int moai_progress_format_json(const moai_progress_record_t *r, char *buf, size_t size) {
  char loss[40];
  if (isfinite(r->loss)) snprintf(loss, sizeof(loss), "%.17g", r->loss);
  else snprintf(loss, sizeof(loss), "null");
  char buckets[48] = "";
  if (r->overlapped_buckets > 0)
    snprintf(buckets, sizeof(buckets), ",\"overlapped_buckets\":%d", r->overlapped_buckets);
  return snprintf(buf, size,
                  "{\"step\":%lld,\"epoch\":%llu,\"loss\":%s,\"lr\":%.17g,\"tokens\":%.17g,"
                  "\"examples\":%llu,\"seconds\":%.6f%s}",
                  (long long)r->step, (unsigned long long)r->epoch, loss, r->lr, r->tokens,
                  (unsigned long long)r->examples, r->seconds, buckets);
}

int moai_progress_format_bar(const moai_progress_record_t *r, int width, char *buf, size_t size) {
  char bar[256];
  if (width < 1) width = 1;
  if (width > (int)sizeof(bar) - 1) width = (int)sizeof(bar) - 1;
  int64_t total = r->total_steps > 0 ? r->total_steps : 1;
  int64_t filled64 = r->step * width / total;
  int filled = (int)(filled64 < 0 ? 0 : filled64 > width ? width : filled64);
  memset(bar, '#', (size_t)filled);
  memset(bar + filled, '-', (size_t)(width - filled));
  bar[width] = '\0';
  int64_t done = r->step - r->first_step;
  double eta = done > 0 ? r->elapsed / (double)done * (double)(r->total_steps - r->step) : 0;
  long long e = (long long)(eta + 0.5);
  char loss[32];
  snprintf(loss, sizeof(loss), "%.4f", r->loss);
  return snprintf(buf, size, "%4lld/%lld [%s]  loss %s  %.0f tok/s  ETA %lld:%02lld:%02lld",
                  (long long)r->step, (long long)r->total_steps, bar, loss,
                  per_second(r->tokens, r->seconds), e / 3600, e / 60 % 60, e % 60);
}

moai_status_t moai_progress_open(const moai_progress_options_t *options, moai_progress_t *out) {
  moai_progress_t p = {.options = *options};
  if (p.options.log_every <= 0) p.options.log_every = 1;
  if (options->jsonl) {
    p.jsonl = fopen(options->jsonl, options->jsonl_append ? "a" : "w");
    if (!p.jsonl)
      return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot open the log: %s", options->jsonl,
                         strerror(errno));
  }
  *out = p;
  return moai_ok_status();
}

moai_status_t moai_progress_step(moai_progress_t *p, const moai_progress_record_t *r) {
  char text[512];
  const moai_progress_options_t *o = &p->options;
  if (o->quiet || !o->out) {
    /* nothing on the terminal */
  } else if (o->bar) {
    moai_progress_format_bar(r, 30, text, sizeof(text));
    /* Clear to the end of the line: the previous line may have been longer. */
    fprintf(o->out, "\r%s\033[K", text);
    fflush(o->out);
    p->bar_drawn = true;
  } else if (r->step % o->log_every == 0 || r->step == r->total_steps) {
    moai_progress_format_line(r, text, sizeof(text));
    fprintf(o->out, "%s\n", text);
    fflush(o->out);
  }
  if (p->jsonl) {
    moai_progress_format_json(r, text, sizeof(text));
    if (fprintf(p->jsonl, "%s\n", text) < 0 || fflush(p->jsonl) != 0)
      return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot write the log: %s", o->jsonl,
                         strerror(errno));
  }
  return moai_ok_status();
}

moai_status_t moai_progress_close(moai_progress_t *p) {
  if (p->bar_drawn && p->options.out) fputc('\n', p->options.out);
  p->bar_drawn = false;
  if (!p->jsonl) return moai_ok_status();
  int rc = fclose(p->jsonl);
  p->jsonl = NULL;
  if (rc != 0)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot write the log: %s", p->options.jsonl,
                       strerror(errno));
  return moai_ok_status();
}
