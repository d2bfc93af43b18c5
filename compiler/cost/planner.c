/* Exhaustive plan search over dp x tp x pp, micro-batches, recomputation
 * and ZeRO-1. The space is small (a few thousand candidates for 3072
 * devices) and each evaluation is closed-form, so no pruning is needed. */
#include "cost/planner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct list_t {
  moai_candidate_t *items;
  size_t count, capacity;
} list_t;

static bool push(list_t *l, const moai_candidate_t *c) {
  if (l->count == l->capacity) {
    size_t cap = l->capacity ? 2 * l->capacity : 256;
    moai_candidate_t *grown = realloc(l->items, cap * sizeof(*grown));
    if (!grown) return false;
    l->items = grown;
    l->capacity = cap;
  }
  l->items[l->count++] = *c;
  return true;
}

static int compare(const void *pa, const void *pb) {
  const moai_candidate_t *a = pa, *b = pb;
  if ((a->rejected == NULL) != (b->rejected == NULL)) return a->rejected ? 1 : -1;
  if (a->cost.step_seconds != b->cost.step_seconds)
    return a->cost.step_seconds < b->cost.step_seconds ? -1 : 1;
  /* Ties: less memory, then fewer pipeline stages, then less tp. */
  if (a->cost.memory_bytes != b->cost.memory_bytes)
    return a->cost.memory_bytes < b->cost.memory_bytes ? -1 : 1;
  if (a->strategy.pp != b->strategy.pp) return a->strategy.pp < b->strategy.pp ? -1 : 1;
  return (a->strategy.tp > b->strategy.tp) - (a->strategy.tp < b->strategy.tp);
}

/* Evaluates one strategy into `l` (when non-NULL); returns whether it is
 * well formed, and sets *fits and the memory it needs. */
static bool consider(const moai_model_desc_t *m, const moai_cluster_t *c, const moai_strategy_t *s,
                     list_t *l, bool *ok, double *best_step, double *min_mem, bool *fits) {
  moai_candidate_t cand = {.strategy = *s};
  const char *why = NULL;
  if (!moai_cost_evaluate(m, c, s, &cand.cost, &why)) {
    cand.rejected = why;
    if (l && !push(l, &cand)) *ok = false;
    return false;
  }
  *fits = cand.cost.memory_bytes <= moai_cost_memory_budget(c);
  if (!*fits) cand.rejected = "does not fit in memory";
  if (cand.cost.memory_bytes < *min_mem) *min_mem = cand.cost.memory_bytes;
  if (*fits && cand.cost.step_seconds < *best_step) *best_step = cand.cost.step_seconds;
  if (l && !push(l, &cand)) *ok = false;
  return true;
}

/* Every strategy for c; returns false on allocation failure. */
static bool enumerate(const moai_model_desc_t *m, const moai_cluster_t *c, list_t *l,
                      double *best_step, double *min_mem) {
  int64_t n = moai_cluster_device_count(c);
  bool ok = true;
  for (int64_t tp = 1; tp <= n; ++tp) {
    if (n % tp) continue;
    if (m->is_decoder && (tp > c->devices_per_node || c->devices_per_node % tp || m->heads % tp || m->kv_heads % tp)) continue;
    if (!m->is_decoder && tp > 1) break;
    for (int64_t pp = 1; pp <= n / tp; ++pp) {
      if ((n / tp) % pp) continue;
      if (!m->is_decoder && pp > 1) break;
      if (m->is_decoder && pp > m->layers) break;
      int64_t dp = n / tp / pp;
      if (m->batch % dp) continue;
      int64_t per_rank = m->batch / dp;
      for (int64_t mb = 1; mb <= per_rank; ++mb) {
        if (per_rank % mb || (pp > 1 && mb < pp)) continue;
        for (int r = 0; r < 3; ++r) {
          if (!m->is_decoder && r) break;
          for (int z = 0; z <= (dp > 1 ? 1 : 0); ++z) {
            moai_strategy_t s = {dp, tp, pp, mb, (moai_recompute_t)r, z};
            bool fits = false;
            consider(m, c, &s, l, &ok, best_step, min_mem, &fits);
          }
        }
      }
    }
  }
  return ok;
}

void moai_plan_result_reset(moai_plan_result_t *r) {
  free(r->candidates);
  memset(r, 0, sizeof(*r));
}

/* "strategy dp=..,..: why" */
static moai_status_t strategy_error(const moai_strategy_t *s, const char *why) {
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  moai_strategy_format(s, &sb);
  moai_status_t st =
      MOAI_STATUS(MOAI_INVALID_ARGUMENT, "strategy %s: %s", sb.data ? sb.data : "?", why);
  moai_strbuf_reset(&sb);
  return st;
}

moai_status_t moai_plan_search(const moai_model_desc_t *m, const moai_cluster_t *c,
                               const moai_strategy_t *forced, moai_plan_result_t *out) {
  moai_plan_result_t r;
  memset(&r, 0, sizeof(r));
  list_t l = {0};
  double best = INFINITY, min_mem = INFINITY;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  if (forced) {
    bool ok = true, fits = false;
    if (!consider(m, c, forced, &l, &ok, &best, &min_mem, &fits)) {
      moai_status_t st = strategy_error(forced, l.items[0].rejected);
      free(l.items);
      return st;
    }
    if (!fits) {
      char why[160];
      snprintf(why, sizeof(why), "does not fit in memory: needs %.2f GiB per device, %.2f GiB usable",
               l.items[0].cost.memory_bytes / gib, moai_cost_memory_budget(c) / gib);
      moai_status_t st = strategy_error(forced, why);
      free(l.items);
      return st;
    }
  } else if (!enumerate(m, c, &l, &best, &min_mem)) {
    free(l.items);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory listing plan candidates");
  }
  if (l.count) qsort(l.items, l.count, sizeof(*l.items), compare);
  r.candidates = l.items;
  r.count = l.count;
  if (l.count && !l.items[0].rejected) {
    r.found = true;
    r.best = l.items[0];
  } else if (!forced) {
    /* Nothing fits: the memory the smallest candidate needs, and the
     * first node count (up to 64x) at which some plan fits. */
    if (isfinite(min_mem)) r.memory_needed = min_mem / c->memory_usable_fraction;
    moai_cluster_t bigger = *c;
    for (int64_t k = 2; k <= 64 && !r.devices_needed; ++k) {
      if (c->nodes == 1 && c->devices_per_node > 1 && k * c->devices_per_node <= 64) {
        bigger.devices_per_node = k * c->devices_per_node;
      } else {
        bigger.devices_per_node = c->devices_per_node;
        bigger.nodes = c->nodes * k;
      }
      double b2 = INFINITY, m2 = INFINITY;
      if (enumerate(m, &bigger, NULL, &b2, &m2) && isfinite(b2))
        r.devices_needed = moai_cluster_device_count(&bigger);
    }
  }
  *out = r;
  return moai_ok_status();
}

moai_status_t moai_strategy_parse(const char *text, moai_strategy_t *out) {
  moai_strategy_t s = {1, 1, 1, 1, MOAI_RECOMPUTE_NONE, 0};
  const char *p = text;
  while (*p) {
    const char *eq = strchr(p, '=');
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    if (!eq || eq > end)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "--strategy '%s': expected KEY=VALUE pairs separated by commas", text);
    size_t klen = (size_t)(eq - p);
    char value[32];
    size_t vlen = (size_t)(end - eq - 1);
    if (vlen == 0 || vlen >= sizeof(value))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "--strategy '%s': bad value for '%.*s'", text,
                         (int)klen, p);
    memcpy(value, eq + 1, vlen);
    value[vlen] = '\0';
    if (klen == 9 && strncmp(p, "recompute", 9) == 0) {
      if (strcmp(value, "none") == 0) s.recompute = MOAI_RECOMPUTE_NONE;
      else if (strcmp(value, "selective") == 0) s.recompute = MOAI_RECOMPUTE_SELECTIVE;
      else if (strcmp(value, "full") == 0) s.recompute = MOAI_RECOMPUTE_FULL;
      else
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "--strategy: recompute must be none, selective or full, got '%s'",
                           value);
    } else {
      char *stop = NULL;
      long long v = strtoll(value, &stop, 10);
      if (*stop || v < 0 || v > (1LL << 40))
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "--strategy: '%.*s' expects a non-negative integer, got '%s'",
                           (int)klen, p, value);
      if (klen == 2 && strncmp(p, "dp", 2) == 0) s.dp = v;
      else if (klen == 2 && strncmp(p, "tp", 2) == 0) s.tp = v;
      else if (klen == 2 && strncmp(p, "pp", 2) == 0) s.pp = v;
      else if (klen == 2 && strncmp(p, "mb", 2) == 0) s.micro_batches = v;
      else if (klen == 4 && strncmp(p, "zero", 4) == 0) {
        if (v > 1) return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "--strategy: zero must be 0 or 1");
        s.zero = (int)v;
      } else
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "--strategy: unknown key '%.*s' (dp, tp, pp, mb, recompute, zero)",
                           (int)klen, p);
    }
    p = *end ? end + 1 : end;
  }
  *out = s;
  return moai_ok_status();
}

void moai_strategy_format(const moai_strategy_t *s, moai_strbuf_t *sb) {
  moai_strbuf_appendf(sb, "dp=%lld,tp=%lld,pp=%lld,mb=%lld,recompute=%s,zero=%d",
                      (long long)s->dp, (long long)s->tp, (long long)s->pp,
                      (long long)s->micro_batches, moai_recompute_name(s->recompute), s->zero);
}

static void row(moai_strbuf_t *sb, const moai_candidate_t *c, const char *note) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const moai_strategy_t *s = &c->strategy;
  moai_strbuf_appendf(sb, "%4lld %4lld %4lld %5lld %5lld  %-9s %4d  %10.4f %9.2f %7.1f%% %10.3f  %s\n",
                      (long long)s->dp, (long long)s->tp, (long long)s->pp,
                      (long long)s->micro_batches, (long long)c->cost.micro_batch_size,
                      moai_recompute_name(s->recompute), s->zero, c->cost.step_seconds,
                      c->cost.memory_bytes / gib, 100.0 * c->cost.bubble_fraction,
                      c->cost.comm_bytes / gib, note);
}

static bool same_strategy(const moai_strategy_t *a, const moai_strategy_t *b) {
  return a->dp == b->dp && a->tp == b->tp && a->pp == b->pp &&
         a->micro_batches == b->micro_batches && a->recompute == b->recompute &&
         a->zero == b->zero;
}

void moai_plan_explain(const moai_plan_result_t *r, const moai_model_desc_t *m,
                       const moai_cluster_t *c, size_t top, moai_strbuf_t *sb) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  if (m->is_decoder)
    moai_strbuf_appendf(sb,
                        "model: decoder, %lld layers, hidden %lld, %lld heads (%lld kv), ffn %lld%s, "
                        "vocab %lld, sequence %lld, global batch %lld, %.3f %s parameters\n",
                        (long long)m->layers, (long long)m->hidden, (long long)m->heads,
                        (long long)m->kv_heads, (long long)m->ffn, m->swiglu ? " (SwiGLU)" : "",
                        (long long)m->vocab, (long long)m->seq, (long long)m->batch,
                        m->params >= 1e9 ? (double)m->params / 1e9 : (double)m->params / 1e6,
                        m->params >= 1e9 ? "B" : "M");
  else
    moai_strbuf_appendf(sb, "model: not a recognised decoder (data parallelism only), "
                            "%.3f M parameters, batch %lld\n",
                        (double)m->params / 1e6, (long long)m->batch);
  moai_strbuf_appendf(sb, "cluster: %s: %lld devices (%lld nodes x %lld), %.2f GiB usable per device\n",
                      c->name, (long long)moai_cluster_device_count(c), (long long)c->nodes,
                      (long long)c->devices_per_node, moai_cost_memory_budget(c) / gib);
  moai_strbuf_append(sb, "  dp   tp   pp    mb   mbs  recompute zero      step_s   mem_GiB  bubble   comm_GiB\n");
  size_t shown = 0;
  bool chosen_shown = false;
  for (size_t i = 0; i < r->count && shown < top; ++i) {
    if (r->candidates[i].rejected) break;
    bool chosen = r->found && same_strategy(&r->candidates[i].strategy, &r->best.strategy);
    chosen_shown |= chosen;
    row(sb, &r->candidates[i], chosen ? "<- chosen" : "");
    ++shown;
  }
  if (r->found && !chosen_shown) {
    moai_strbuf_append(sb, "  ...\n");
    row(sb, &r->best, "<- chosen");
  }
  if (!r->found) moai_strbuf_append(sb, "no strategy fits\n");
  size_t rejected = 0;
  for (size_t i = 0; i < r->count; ++i)
    if (r->candidates[i].rejected) ++rejected;
  if (rejected) {
    moai_strbuf_appendf(sb, "rejected (%zu, fastest shown):\n", rejected);
    size_t k = 0;
    for (size_t i = 0; i < r->count && k < top; ++i) {
      if (!r->candidates[i].rejected) continue;
      row(sb, &r->candidates[i], r->candidates[i].rejected);
      ++k;
    }
  }
  if (!r->found && r->devices_needed)
    moai_strbuf_appendf(sb, "would fit on %lld devices of this kind\n", (long long)r->devices_needed);
  if (!r->found && r->memory_needed > 0)
    moai_strbuf_appendf(sb, "would fit with %.2f GiB per device\n", r->memory_needed / gib);
}
