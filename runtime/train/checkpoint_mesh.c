/* Checkpoints of meshes (checkpoint.h, "meshes"): slices of full tensors and
 * the assembly of a mesh's full tensors on one rank. */
#include <inttypes.h>
#include <string.h>

#include "io/dtype.h"
#include "train/checkpoint.h"

moai_status_t moai_checkpoint_slice_full_dims(const char *name, const moai_checkpoint_slice_t *slice,
                                              int32_t rank, const int64_t *dims,
                                              int64_t *out_full_dims) {
  if (rank < 0 || rank > MOAI_MAX_RANK)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "tensor '%s': rank %d out of range", name, rank);
  int64_t full[MOAI_MAX_RANK] = {0};
  for (int32_t d = 0; d < rank; ++d) full[d] = dims[d];
  if (moai_checkpoint_slice_cuts(slice)) {
    if (slice->axis < 0 || slice->axis >= rank || slice->index >= slice->count)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "tensor '%s' (rank %d): shard %" PRIu32 " of %"
                         PRIu32 " along axis %d does not fit it; the plan's manifest is "
                         "inconsistent: recompile the plan", name, rank, slice->index,
                         slice->count, slice->axis);
    if (full[slice->axis] > INT64_MAX / (int64_t)slice->count)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "tensor '%s': the full tensor's dim %d "
                         "overflows", name, slice->axis);
    full[slice->axis] *= (int64_t)slice->count;
  }
  memcpy(out_full_dims, full, sizeof(full));
  return moai_ok_status();
}

/* Copies between a local tensor and its slice of the full tensor: every
 * run of the dims from `axis` on is contiguous in both, so it is one memcpy
 * per index of the dims before `axis`. */
static void slice_copy(const moai_checkpoint_slice_t *slice, int32_t rank, const int64_t *dims,
                       size_t elsize, unsigned char *local, unsigned char *full, bool to_full) {
  uint64_t total = elsize;
  for (int32_t d = 0; d < rank; ++d) total *= (uint64_t)dims[d];
  if (!moai_checkpoint_slice_cuts(slice)) {
    if (to_full) memcpy(full, local, (size_t)total);
    else memcpy(local, full, (size_t)total);
    return;
  }
  uint64_t outer = 1, run = elsize;
  for (int32_t d = 0; d < slice->axis; ++d) outer *= (uint64_t)dims[d];
  for (int32_t d = slice->axis; d < rank; ++d) run *= (uint64_t)dims[d];
  for (uint64_t o = 0; o < outer; ++o) {
    unsigned char *l = local + o * run;
    unsigned char *f = full + (o * slice->count + slice->index) * run;
    if (to_full) memcpy(f, l, (size_t)run);
    else memcpy(l, f, (size_t)run);
  }
}

void moai_checkpoint_slice_read(const moai_checkpoint_slice_t *slice, int32_t rank,
                                const int64_t *dims, size_t elsize, const void *full,
                                void *local) {
  slice_copy(slice, rank, dims, elsize, local, (unsigned char *)(uintptr_t)full, false);
}

void moai_checkpoint_slice_write(const moai_checkpoint_slice_t *slice, int32_t rank,
                                 const int64_t *dims, size_t elsize, const void *local,
                                 void *full) {
  slice_copy(slice, rank, dims, elsize, (unsigned char *)(uintptr_t)local, full, true);
}

/* ---- gather --------------------------------------------------------------- */

/* One full tensor: its description (tensor.dims are the full dims) and the
 * shape of its parts. */
typedef struct gather_entry_t {
  moai_plan_tensor_t tensor;
  int32_t axis;
  uint32_t count;            /* parts (1: whole) */
  int64_t local_dims[MOAI_MAX_RANK];
  size_t first_part;         /* for messages */
  bool *seen;                /* per part index */
} gather_entry_t;

struct moai_checkpoint_gather_t {
  moai_allocator_t allocator;
  size_t part_count;
  size_t *part_start;        /* flattened (part, i) = part_start[part] + i */
  size_t slot_count;
  long *entry_of;            /* per slot: the entry it fills, or -1 */
  uint32_t *index_of;        /* per slot: its part index */
  gather_entry_t *entries;
  size_t entry_count;
  moai_plan_tensor_t *tensors; /* the entries' tensors, for callers */
};

void moai_checkpoint_gather_destroy(moai_checkpoint_gather_t *g) {
  if (!g) return;
  moai_allocator_t a = g->allocator;
  for (size_t e = 0; g->entries && e < g->entry_count; ++e) {
    moai_allocator_free(a, (void *)(uintptr_t)g->entries[e].tensor.name);
    moai_allocator_free(a, (void *)(uintptr_t)g->entries[e].tensor.param);
    moai_allocator_free(a, g->entries[e].tensor.data);
    moai_allocator_free(a, g->entries[e].seen);
  }
  moai_allocator_free(a, g->entries);
  moai_allocator_free(a, g->tensors);
  moai_allocator_free(a, g->part_start);
  moai_allocator_free(a, g->entry_of);
  moai_allocator_free(a, g->index_of);
  moai_allocator_free(a, g);
}

static long find_entry(const moai_checkpoint_gather_t *g, const char *name) {
  for (size_t e = 0; e < g->entry_count; ++e)
    if (strcmp(g->entries[e].tensor.name, name) == 0) return (long)e;
  return -1;
}

/* A new entry for tensor t of part p, cut by `s` (NULL: whole). */
static moai_status_t add_entry(moai_checkpoint_gather_t *g, const moai_plan_tensor_t *t,
                               const moai_checkpoint_slice_t *s, size_t p) {
  gather_entry_t *e = &g->entries[g->entry_count];
  *e = (gather_entry_t){.tensor = *t, .axis = moai_checkpoint_slice_cuts(s) ? s->axis : 0,
                        .count = moai_checkpoint_slice_cuts(s) ? s->count : 1, .first_part = p};
  e->tensor.name = e->tensor.param = NULL;
  e->tensor.data = NULL;
  e->tensor.writable = true;
  memcpy(e->local_dims, t->dims, sizeof(e->local_dims));
  ++g->entry_count; /* from here on destroy frees what it holds */
  MOAI_RETURN_IF_ERROR(moai_checkpoint_slice_full_dims(t->name, s, t->rank, t->dims,
                                                       e->tensor.dims));
  if (!moai_shape_nbytes(t->dtype, t->rank, e->tensor.dims, &e->tensor.nbytes) ||
      e->tensor.nbytes > SIZE_MAX)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "tensor '%s': the full tensor is too large",
                       t->name);
  MOAI_RETURN_IF_ERROR(moai_allocator_strdup(g->allocator, t->name, (char **)&e->tensor.name));
  if (t->param)
    MOAI_RETURN_IF_ERROR(
        moai_allocator_strdup(g->allocator, t->param, (char **)&e->tensor.param));
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(g->allocator, (size_t)e->count * sizeof(bool),
                                             (void **)&e->seen));
  return moai_allocator_malloc(g->allocator, e->tensor.nbytes ? (size_t)e->tensor.nbytes : 1,
                               &e->tensor.data);
}

/* Tensor t of part p agrees with the entry made from an earlier part. */
static moai_status_t check_same(const gather_entry_t *e, const moai_plan_tensor_t *t,
                                const moai_checkpoint_slice_t *s, size_t p) {
  bool cut = moai_checkpoint_slice_cuts(s);
  uint32_t count = cut ? s->count : 1;
  bool same = e->tensor.kind == t->kind && e->tensor.role == t->role &&
              e->tensor.dtype == t->dtype && e->tensor.rank == t->rank && e->count == count &&
              (!cut || e->axis == s->axis);
  for (int32_t d = 0; same && d < t->rank; ++d) same = e->local_dims[d] == t->dims[d];
  if (same) return moai_ok_status();
  char a[160], b[160];
  moai_shape_format(e->tensor.rank, e->local_dims, a, sizeof(a));
  moai_shape_format(t->rank, t->dims, b, sizeof(b));
  return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "tensor '%s' differs between device %zu (%s %s, "
                     "%" PRIu32 " part(s) along axis %d) and device %zu (%s %s, %" PRIu32
                     " part(s) along axis %d); the plan's devices are inconsistent: recompile "
                     "it", t->name, e->first_part, moai_abi_dtype_name(e->tensor.dtype), a,
                     e->count, e->axis, p, moai_abi_dtype_name(t->dtype), b, count,
                     cut ? s->axis : 0);
}

static moai_status_t gather_plan(moai_checkpoint_gather_t *g, const moai_checkpoint_part_t *parts,
                                 size_t n) {
  size_t slot = 0;
  for (size_t p = 0; p < n; ++p) {
    g->part_start[p] = slot;
    for (size_t i = 0; i < parts[p].count; ++i, ++slot) {
      const moai_plan_tensor_t *t = &parts[p].tensors[i];
      const moai_checkpoint_slice_t *s = parts[p].slices ? &parts[p].slices[i] : NULL;
      long e = find_entry(g, t->name);
      if (e < 0) {
        MOAI_RETURN_IF_ERROR(add_entry(g, t, s, p));
        e = (long)g->entry_count - 1;
      } else {
        MOAI_RETURN_IF_ERROR(check_same(&g->entries[e], t, s, p));
      }
      uint32_t index = moai_checkpoint_slice_cuts(s) ? s->index : 0;
      g->index_of[slot] = index;
      g->entry_of[slot] = -1;
      if (!g->entries[e].seen[index]) {
        g->entries[e].seen[index] = true;
        g->entry_of[slot] = e;
      }
    }
  }
  g->part_start[n] = slot;
  for (size_t e = 0; e < g->entry_count; ++e) {
    const gather_entry_t *x = &g->entries[e];
    for (uint32_t k = 0; k < x->count; ++k)
      if (!x->seen[k])
        return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "tensor '%s' is cut in %" PRIu32 " parts "
                           "along axis %d, but no device holds part %" PRIu32 "; the plan's "
                           "devices are inconsistent: recompile it", x->tensor.name, x->count,
                           x->axis, k);
    g->tensors[e] = x->tensor;
  }
  return moai_ok_status();
}

moai_status_t moai_checkpoint_gather_create(const moai_checkpoint_part_t *parts, size_t n,
                                            moai_allocator_t allocator,
                                            moai_checkpoint_gather_t **out_gather) {
  size_t slots = 0;
  for (size_t p = 0; p < n; ++p) slots += parts[p].count;
  moai_checkpoint_gather_t *g = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, sizeof(*g), (void **)&g));
  g->allocator = allocator;
  g->part_count = n;
  g->slot_count = slots;
  size_t cap = slots ? slots : 1;
  moai_status_t status =
      moai_allocator_malloc(allocator, (n + 1) * sizeof(size_t), (void **)&g->part_start);
  if (!status) status = moai_allocator_malloc(allocator, cap * sizeof(long), (void **)&g->entry_of);
  if (!status)
    status = moai_allocator_malloc(allocator, cap * sizeof(uint32_t), (void **)&g->index_of);
  if (!status)
    status = moai_allocator_malloc(allocator, cap * sizeof(gather_entry_t), (void **)&g->entries);
  if (!status)
    status = moai_allocator_malloc(allocator, cap * sizeof(moai_plan_tensor_t),
                                   (void **)&g->tensors);
  if (!status) status = gather_plan(g, parts, n);
  if (status) {
    moai_checkpoint_gather_destroy(g);
    return status;
  }
  *out_gather = g;
  return moai_ok_status();
}

bool moai_checkpoint_gather_wants(const moai_checkpoint_gather_t *g, size_t part, size_t i) {
  if (part >= g->part_count || i >= g->part_start[part + 1] - g->part_start[part]) return false;
  return g->entry_of[g->part_start[part] + i] >= 0;
}

moai_status_t moai_checkpoint_gather_put(moai_checkpoint_gather_t *g, size_t part, size_t i,
                                         const void *data) {
  if (!moai_checkpoint_gather_wants(g, part, i))
    return MOAI_STATUS(MOAI_INTERNAL, "gather: tensor %zu of device %zu is not wanted", i, part);
  size_t slot = g->part_start[part] + i;
  const gather_entry_t *e = &g->entries[g->entry_of[slot]];
  moai_checkpoint_slice_t s = {.axis = e->axis, .index = g->index_of[slot], .count = e->count};
  moai_checkpoint_slice_write(&s, e->tensor.rank, e->local_dims,
                              moai_abi_dtype_size(e->tensor.dtype), data, e->tensor.data);
  return moai_ok_status();
}

const moai_plan_tensor_t *moai_checkpoint_gather_tensors(const moai_checkpoint_gather_t *g,
                                                         size_t *out_count) {
  *out_count = g->entry_count;
  return g->tensors;
}
