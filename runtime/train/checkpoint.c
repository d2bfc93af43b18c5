#include "train/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dtype.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/sha256.h"

bool moai_checkpoint_holds(const moai_plan_tensor_t *t) {
  if (t->kind != MOAI_PLAN_TENSOR_STATE) return true;
  return t->role != MOAI_STATE_GRAD && t->role != MOAI_STATE_LOSS_WEIGHT;
}

static moai_status_t checkpoint_path(const char *dir, char *buf, size_t size) {
  if (snprintf(buf, size, "%s/%s", dir, MOAI_CHECKPOINT_FILE) >= (int)size)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: path too long", dir);
  return moai_ok_status();
}

/* ---- save ---------------------------------------------------------------- */

typedef struct save_ctx_t {
  const moai_plan_tensor_t **sources; /* per entry */
  const moai_safetensors_entry_t *entries;
  uint64_t data_size;
  bool crash; /* MOAI_CHECKPOINT_CRASH_ENV */
} save_ctx_t;

static moai_status_t fill_entry(void *user, size_t index, void *dst, uint64_t nbytes) {
  save_ctx_t *ctx = user;
  const unsigned char *src = ctx->sources[index]->data;
  uint64_t half = ctx->data_size / 2;
  uint64_t offset = ctx->entries[index].offset;
  if (ctx->crash && offset + nbytes >= half) {
    /* Test-only: die with the temporary half written (see the header). */
    memcpy(dst, src, (size_t)(half - offset));
    _exit(3);
  }
  memcpy(dst, src, (size_t)nbytes);
  return moai_ok_status();
}

static int compare_by_offset(const void *a, const void *b) {
  const moai_safetensors_entry_t *x = *(const moai_safetensors_entry_t *const *)a;
  const moai_safetensors_entry_t *y = *(const moai_safetensors_entry_t *const *)b;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

/* SHA-256 of the data section the entries will make: the tensors' bytes in
 * offset order (safetensors allows no holes between them). */
static moai_status_t hash_data(const moai_safetensors_entry_t *entries,
                               const moai_plan_tensor_t **sources, size_t n,
                               char out_hex[MOAI_SHA256_HEX_SIZE]) {
  const moai_safetensors_entry_t **order = calloc(n ? n : 1, sizeof(*order));
  if (!order) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < n; ++i) order[i] = &entries[i];
  qsort(order, n, sizeof(*order), compare_by_offset);
  moai_sha256_stream_t *sha = NULL;
  moai_status_t status = moai_sha256_begin(&sha);
  for (size_t i = 0; !status && i < n; ++i)
    status = moai_sha256_update(sha, sources[order[i] - entries]->data, order[i]->nbytes);
  moai_status_t end = moai_sha256_end(sha, status ? NULL : out_hex);
  free(order);
  if (status) {
    moai_status_free(end);
    return status;
  }
  return end;
}

moai_status_t moai_checkpoint_save(const char *dir, const moai_plan_tensor_t *tensors, size_t n,
                                   const moai_checkpoint_position_t *p) {
  char path[PATH_MAX];
  MOAI_RETURN_IF_ERROR(checkpoint_path(dir, path, sizeof(path)));
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot create the checkpoint directory: %s", dir,
                       strerror(errno));
  moai_safetensors_entry_t *entries = calloc(n ? n : 1, sizeof(*entries));
  const moai_plan_tensor_t **sources = calloc(n ? n : 1, sizeof(*sources));
  if (!entries || !sources) {
    free(entries);
    free(sources);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  }
  size_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!moai_checkpoint_holds(&tensors[i])) continue;
    entries[m] = (moai_safetensors_entry_t){
        .name = tensors[i].name, .dtype = tensors[i].dtype, .rank = tensors[i].rank};
    memcpy(entries[m].dims, tensors[i].dims, sizeof(entries[m].dims));
    sources[m++] = &tensors[i];
  }
  uint64_t data_size = 0;
  moai_safetensors_layout(entries, m, &data_size);
  char sha[MOAI_SHA256_HEX_SIZE];
  moai_status_t status = hash_data(entries, sources, m, sha);
  if (!status) {
    char step[32], epoch[32], pos[32], seed[32], mb[16], count[32], step_ex[32];
    snprintf(step, sizeof(step), "%" PRId64, p->step);
    snprintf(epoch, sizeof(epoch), "%" PRIu64, p->epoch);
    snprintf(pos, sizeof(pos), "%" PRIu64, p->position);
    snprintf(seed, sizeof(seed), "%" PRIu64, p->seed);
    snprintf(mb, sizeof(mb), "%" PRIu32, p->micro_batches);
    snprintf(count, sizeof(count), "%" PRIu64, p->example_count);
    snprintf(step_ex, sizeof(step_ex), "%" PRIu64, p->step_examples);
    const char *kv[] = {"format", MOAI_CHECKPOINT_FORMAT,
                        "format_version", MOAI_CHECKPOINT_FORMAT_VERSION,
                        "step", step, "epoch", epoch, "position", pos, "seed", seed,
                        "shuffle", p->shuffle ? "true" : "false",
                        "drop_last", p->drop_last ? "true" : "false",
                        "micro_batches", mb, "example_count", count, "data_sha256", sha,
                        "step_examples", step_ex};
    const char *crash = getenv(MOAI_CHECKPOINT_CRASH_ENV);
    save_ctx_t ctx = {sources, entries, data_size, crash && strcmp(crash, "1") == 0};
    size_t pairs = sizeof(kv) / sizeof(kv[0]) / 2;
    if (p->step_examples == 0) pairs -= 1; /* unknown: leave it out */
    status = moai_safetensors_write(path, entries, m, kv, pairs, fill_entry, &ctx);
  }
  free(entries);
  free(sources);
  return moai_status_annotate(status, "while saving the checkpoint %s", path);
}

/* ---- load ---------------------------------------------------------------- */

/* The unsigned integer metadata `key`, or an error naming it. */
static moai_status_t meta_u64(const moai_safetensors_t *st, const char *path, const char *key,
                              uint64_t *out) {
  const char *v = moai_safetensors_metadata(st, key);
  char *end = NULL;
  errno = 0;
  unsigned long long x = v && *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
  if (!v || !end || *end || errno)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: metadata '%s' is %s%s%s, not an unsigned integer",
                       path, key, v ? "'" : "missing", v ? v : "", v ? "'" : "");
  *out = x;
  return moai_ok_status();
}

static moai_status_t meta_bool(const moai_safetensors_t *st, const char *path, const char *key,
                               bool *out) {
  const char *v = moai_safetensors_metadata(st, key);
  if (v && strcmp(v, "true") == 0) *out = true;
  else if (v && strcmp(v, "false") == 0) *out = false;
  else return MOAI_STATUS(MOAI_DATA_LOSS, "%s: metadata '%s' is %s%s%s, not true or false", path,
                          key, v ? "'" : "missing", v ? v : "", v ? "'" : "");
  return moai_ok_status();
}

/* Format, integrity, and the position the checkpoint records. */
static moai_status_t read_header(const moai_safetensors_t *st, const char *path,
                                 moai_checkpoint_position_t *out) {
  const char *format = moai_safetensors_metadata(st, "format");
  if (!format || strcmp(format, MOAI_CHECKPOINT_FORMAT) != 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: not a moai checkpoint (metadata format is %s%s%s)", path,
                       format ? "'" : "missing", format ? format : "", format ? "'" : "");
  const char *version = moai_safetensors_metadata(st, "format_version");
  if (!version || strcmp(version, MOAI_CHECKPOINT_FORMAT_VERSION) != 0)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: checkpoint format version %s, this runtime reads %s", path,
                       version ? version : "(missing)", MOAI_CHECKPOINT_FORMAT_VERSION);
  const char *want = moai_safetensors_metadata(st, "data_sha256");
  char have[MOAI_SHA256_HEX_SIZE];
  const unsigned char *data = moai_safetensors_data(st);
  MOAI_RETURN_IF_ERROR(moai_sha256_buffer(data ? data : (const unsigned char *)"",
                                          (size_t)moai_safetensors_data_size(st), have));
  if (!want || strcmp(want, have) != 0)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: the data does not match its data_sha256 (%s): the "
                       "file is corrupt", path, want ? "differs" : "missing");
  moai_checkpoint_position_t p = {0};
  uint64_t step = 0, mb = 0;
  MOAI_RETURN_IF_ERROR(meta_u64(st, path, "step", &step));
  MOAI_RETURN_IF_ERROR(meta_u64(st, path, "epoch", &p.epoch));
  MOAI_RETURN_IF_ERROR(meta_u64(st, path, "position", &p.position));
  MOAI_RETURN_IF_ERROR(meta_u64(st, path, "seed", &p.seed));
  MOAI_RETURN_IF_ERROR(meta_u64(st, path, "micro_batches", &mb));
  MOAI_RETURN_IF_ERROR(meta_u64(st, path, "example_count", &p.example_count));
  MOAI_RETURN_IF_ERROR(meta_bool(st, path, "shuffle", &p.shuffle));
  MOAI_RETURN_IF_ERROR(meta_bool(st, path, "drop_last", &p.drop_last));
  if (moai_safetensors_metadata(st, "step_examples"))
    MOAI_RETURN_IF_ERROR(meta_u64(st, path, "step_examples", &p.step_examples));
  if (step > INT64_MAX || mb == 0 || mb > UINT32_MAX)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: metadata step or micro_batches out of range", path);
  p.step = (int64_t)step;
  p.micro_batches = (uint32_t)mb;
  *out = p;
  return moai_ok_status();
}

/* The checkpoint was made by a run that fed the same data the same way. */
static moai_status_t check_run(const char *path, const moai_checkpoint_position_t *s,
                               const moai_checkpoint_position_t *r) {
  if (s->example_count != r->example_count)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: saved by a run on %" PRIu64 " examples, "
                       "this run's data has %" PRIu64, path, s->example_count, r->example_count);
  /* Examples per step decide the step boundaries; how a step is split
   * (micro-batches, data-parallel ranks) does not change its result, so a
   * checkpoint resumes under any split of the same step size. Older
   * checkpoints, without step_examples, still need the same micro-batches. */
  if (s->step_examples && r->step_examples) {
    if (s->step_examples != r->step_examples)
      return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: saved with %" PRIu64 " examples per "
                         "step, this run takes %" PRIu64 " (ranks x micro-batches x batch)",
                         path, s->step_examples, r->step_examples);
  } else if (s->micro_batches != r->micro_batches)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: saved with %" PRIu32 " micro-batches per "
                       "step, this plan has %" PRIu32, path, s->micro_batches, r->micro_batches);
  if (s->shuffle != r->shuffle)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: saved by a run %s --shuffle; give the same "
                       "option to resume", path, s->shuffle ? "with" : "without");
  if (s->shuffle && s->seed != r->seed)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: saved by a run with --seed %" PRIu64
                       ", this run has --seed %" PRIu64, path, s->seed, r->seed);
  if (s->drop_last != r->drop_last)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: saved by a run with %s, this run has %s",
                       path, s->drop_last ? "--drop-last" : "--no-drop-last",
                       r->drop_last ? "--drop-last" : "--no-drop-last");
  return moai_ok_status();
}

static const char *kind_name(const moai_plan_tensor_t *t) {
  return t->kind == MOAI_PLAN_TENSOR_WEIGHT      ? "frozen weight"
         : t->kind == MOAI_PLAN_TENSOR_TRAINABLE ? "trainable weight"
                                                 : "state tensor";
}

/* Every tensor the plan needs is there, as the plan has it. */
/* Whether frozen weight t (slice s of the saved tensor at saved_data)
 * equals the saved values. */
static moai_status_t same_frozen(const moai_plan_tensor_t *t, const moai_checkpoint_slice_t *s,
                                 const void *saved_data, bool *out_same) {
  if (!moai_checkpoint_slice_cuts(s)) {
    *out_same = t->nbytes == 0 || memcmp(saved_data, t->data, (size_t)t->nbytes) == 0;
    return moai_ok_status();
  }
  void *part = malloc(t->nbytes ? (size_t)t->nbytes : 1);
  if (!part) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  moai_checkpoint_slice_read(s, t->rank, t->dims, moai_abi_dtype_size(t->dtype), saved_data, part);
  *out_same = memcmp(part, t->data, (size_t)t->nbytes) == 0;
  free(part);
  return moai_ok_status();
}

static moai_status_t check_tensors(const moai_safetensors_t *st, const char *path,
                                   const moai_plan_tensor_t *tensors,
                                   const moai_checkpoint_slice_t *slices, size_t n, bool subset,
                                   const moai_checkpoint_position_t *saved) {
  size_t held = 0;
  const unsigned char *data = moai_safetensors_data(st);
  for (size_t i = 0; i < n; ++i) {
    const moai_plan_tensor_t *t = &tensors[i];
    const moai_checkpoint_slice_t *s = slices ? &slices[i] : NULL;
    if (!moai_checkpoint_holds(t)) continue;
    ++held;
    const moai_safetensors_entry_t *e = moai_safetensors_find(st, t->name);
    if (!e)
      return MOAI_STATUS(MOAI_NOT_FOUND, "%s: no tensor '%s' (the plan's %s)", path, t->name,
                         kind_name(t));
    int64_t want[MOAI_MAX_RANK];
    MOAI_RETURN_IF_ERROR(moai_checkpoint_slice_full_dims(t->name, s, t->rank, t->dims, want));
    bool same = e->dtype == t->dtype && e->rank == t->rank;
    for (int32_t d = 0; same && d < t->rank; ++d) same = e->dims[d] == want[d];
    if (!same) {
      char hs[160], ws[160];
      moai_shape_format(e->rank, e->dims, hs, sizeof(hs));
      moai_shape_format(t->rank, want, ws, sizeof(ws));
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: tensor '%s' is %s %s, the plan's is %s %s%s",
                         path, t->name, moai_abi_dtype_name(e->dtype), hs,
                         moai_abi_dtype_name(t->dtype), ws,
                         moai_checkpoint_slice_cuts(s) ? " (all its shards together)" : "");
    }
    const void *saved_data = data ? data + e->offset : NULL;
    if (!t->writable && t->kind != MOAI_PLAN_TENSOR_WEIGHT)
      return MOAI_STATUS(MOAI_INTERNAL, "the plan's %s '%s' is not writable", kind_name(t),
                         t->name);
    bool frozen_same = true;
    if (t->kind == MOAI_PLAN_TENSOR_WEIGHT)
      MOAI_RETURN_IF_ERROR(same_frozen(t, s, saved_data, &frozen_same));
    if (!frozen_same)
      return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: frozen weight '%s' differs from the "
                         "plan's (a checkpoint of another plan or model?)", path, t->name);
    if (t->kind == MOAI_PLAN_TENSOR_STATE && t->role == MOAI_STATE_STEP &&
        e->dtype == MOAI_ABI_I64 && e->nbytes == 8) {
      int64_t step;
      memcpy(&step, saved_data, 8);
      if (step != saved->step)
        return MOAI_STATUS(MOAI_DATA_LOSS, "%s: tensor '%s' holds step %" PRId64 " but the "
                           "metadata says step %" PRId64, path, t->name, step, saved->step);
    }
  }
  if (!subset && moai_safetensors_count(st) != held) {
    /* Names are unique in the file and every held tensor was found, so some
     * entry is not the plan's. */
    for (size_t k = 0; k < moai_safetensors_count(st); ++k) {
      const char *name = moai_safetensors_entry(st, k)->name;
      bool known = false;
      for (size_t i = 0; i < n && !known; ++i)
        known = moai_checkpoint_holds(&tensors[i]) && strcmp(tensors[i].name, name) == 0;
      if (!known)
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: tensor '%s' is not a weight or state "
                           "tensor of the plan (a checkpoint of another plan?)", path, name);
    }
  }
  return moai_ok_status();
}

moai_status_t moai_checkpoint_load_part(const char *dir, const moai_plan_tensor_t *tensors,
                                        const moai_checkpoint_slice_t *slices, size_t n,
                                        bool subset, const moai_checkpoint_position_t *run,
                                        moai_allocator_t allocator,
                                        moai_checkpoint_position_t *out_position) {
  char path[PATH_MAX];
  MOAI_RETURN_IF_ERROR(checkpoint_path(dir, path, sizeof(path)));
  moai_safetensors_t *st = NULL;
  MOAI_RETURN_IF_ERROR(moai_safetensors_open(path, allocator, &st));
  moai_checkpoint_position_t saved;
  moai_status_t status = read_header(st, path, &saved);
  if (!status) status = check_run(path, &saved, run);
  if (!status) status = check_tensors(st, path, tensors, slices, n, subset, &saved);
  if (!status) {
    const unsigned char *data = moai_safetensors_data(st);
    for (size_t i = 0; i < n; ++i) {
      const moai_plan_tensor_t *t = &tensors[i];
      if (!moai_checkpoint_holds(t) || t->kind == MOAI_PLAN_TENSOR_WEIGHT || !t->nbytes)
        continue;
      const moai_safetensors_entry_t *e = moai_safetensors_find(st, t->name);
      moai_checkpoint_slice_read(slices ? &slices[i] : NULL, t->rank, t->dims,
                                 moai_abi_dtype_size(t->dtype), data + e->offset, t->data);
    }
    *out_position = saved;
  }
  moai_safetensors_close(st);
  return status;
}

moai_status_t moai_checkpoint_load(const char *dir, const moai_plan_tensor_t *tensors, size_t n,
                                   const moai_checkpoint_position_t *run,
                                   moai_allocator_t allocator,
                                   moai_checkpoint_position_t *out_position) {
  return moai_checkpoint_load_part(dir, tensors, NULL, n, false, run, allocator, out_position);
}

/* ---- gradients ------------------------------------------------------------ */

typedef struct grad_ctx_t {
  const moai_plan_tensor_t **grads;
  float scale;
} grad_ctx_t;

static moai_status_t fill_grad(void *user, size_t index, void *dst, uint64_t nbytes) {
  grad_ctx_t *ctx = user;
  const float *g = ctx->grads[index]->data;
  float *out = dst;
  for (uint64_t i = 0; i < nbytes / 4; ++i) out[i] = g[i] / ctx->scale;
  return moai_ok_status();
}

moai_status_t moai_gradients_write(const char *path, const moai_plan_tensor_t *tensors,
                                   size_t n) {
  const moai_plan_tensor_t *lw = NULL;
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    if (tensors[i].kind != MOAI_PLAN_TENSOR_STATE) continue;
    if (tensors[i].role == MOAI_STATE_LOSS_WEIGHT) lw = &tensors[i];
    if (tensors[i].role == MOAI_STATE_GRAD) {
      if (tensors[i].dtype != MOAI_ABI_F32 || !tensors[i].param)
        return MOAI_STATUS(MOAI_UNIMPLEMENTED, "gradient '%s' is %s; --dump-gradients writes "
                           "float32 gradients of named weights", tensors[i].name,
                           moai_abi_dtype_name(tensors[i].dtype));
      ++count;
    }
  }
  if (!lw || lw->dtype != MOAI_ABI_F32 || lw->nbytes != 4)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "the plan has no float32 loss-weight state "
                       "tensor to divide the gradients by");
  float w;
  memcpy(&w, lw->data, 4);
  if (!(w > 0))
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "the step's loss weight is %g: no labels "
                       "counted, the mean-loss gradient is undefined", (double)w);
  moai_safetensors_entry_t *entries = calloc(count ? count : 1, sizeof(*entries));
  const moai_plan_tensor_t **grads = calloc(count ? count : 1, sizeof(*grads));
  moai_status_t status = moai_ok_status();
  if (!entries || !grads) status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  size_t m = 0;
  for (size_t i = 0; !status && i < n; ++i) {
    const moai_plan_tensor_t *t = &tensors[i];
    if (t->kind != MOAI_PLAN_TENSOR_STATE || t->role != MOAI_STATE_GRAD) continue;
    entries[m] = (moai_safetensors_entry_t){.name = t->param, .dtype = MOAI_ABI_F32,
                                            .rank = t->rank};
    memcpy(entries[m].dims, t->dims, sizeof(entries[m].dims));
    grads[m++] = t;
  }
  if (!status) {
    uint64_t size = 0;
    moai_safetensors_layout(entries, m, &size);
    grad_ctx_t ctx = {grads, w};
    status = moai_safetensors_write(path, entries, m, NULL, 0, fill_grad, &ctx);
  }
  free(entries);
  free(grads);
  return status;
}
