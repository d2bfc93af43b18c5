/* moai-run's meshes (mesh.h): groups, slices, and the gather of full
 * tensors on rank 0 (docs/training.md, "Meshes"). */
#include "mesh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ranks and groups ------------------------------------------------------ */

/* The plan's all-reduce hook: the tp group is the only group a device plan
 * reduces over today. */
static moai_status_t tp_allreduce(void *user, int group, int32_t dtype, int op, void *data,
                                  size_t count) {
  if (group != 0)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "the plan reduces over group %d; moai-run binds the "
                       "tp group (0) only", group);
  return moai_comm_allreduce(user, dtype, op == 1 ? MOAI_COMM_MAX : MOAI_COMM_SUM, data, count);
}

moai_status_t mesh_rank_join(mesh_rank_t *r) {
  if (r->world) {
    /* Both splits are collective over the world: every rank makes them in
     * this order. */
    MOAI_RETURN_IF_ERROR_CTX(
        moai_comm_split(r->world, (int)(r->s * r->tp + r->t), (int)r->d, &r->dp_group),
        "while forming the dp groups");
    MOAI_RETURN_IF_ERROR_CTX(
        moai_comm_split(r->world, (int)(r->d * r->pp + r->s), (int)r->t, &r->tp_group),
        "while forming the tp groups");
  }
  if (r->top) moai_plan_set_allreduce(r->plan, tp_allreduce, r->tp_group);
  return moai_ok_status();
}

void mesh_rank_leave(mesh_rank_t *r) {
  moai_comm_destroy(r->dp_group);
  moai_comm_destroy(r->tp_group);
  r->dp_group = r->tp_group = NULL;
}

void mesh_rank_name(const mesh_rank_t *r, char *buf, size_t size) {
  snprintf(buf, size, "rank %d (dp %u, tp %u, pp %u) of %d", r->rank, r->d, r->t, r->s,
           r->ranks);
}

static const moai_manifest_shard_t *find_shard(const moai_manifest_device_t *dev,
                                               const char *name) {
  for (size_t i = 0; dev && name && i < dev->shard_count; ++i)
    if (strcmp(dev->shards[i].name, name) == 0) return &dev->shards[i];
  return NULL;
}

void mesh_rank_slices(const mesh_rank_t *r, const moai_plan_tensor_t *tensors, size_t n,
                      moai_checkpoint_slice_t *slices) {
  for (size_t i = 0; i < n; ++i) {
    const moai_plan_tensor_t *t = &tensors[i];
    const moai_manifest_shard_t *sh = find_shard(r->device, t->name);
    /* Optimizer state has its weight's shape, so its weight's cut. */
    if (!sh && t->kind == MOAI_PLAN_TENSOR_STATE) sh = find_shard(r->device, t->param);
    slices[i] = sh ? (moai_checkpoint_slice_t){.axis = (int32_t)sh->axis, .index = sh->index,
                                               .count = sh->count}
                   : (moai_checkpoint_slice_t){0};
  }
}

/* ---- describing tensors to rank 0 ------------------------------------------ */

/* A tensor on the wire: this record, then its name and param bytes. */
typedef struct wire_tensor_t {
  uint32_t kind, role;
  int32_t dtype, rank;
  int64_t dims[MOAI_MAX_RANK];
  uint64_t nbytes;
  int32_t axis;
  uint32_t index, count;
  uint32_t name_len, param_len; /* param_len UINT32_MAX: no param */
} wire_tensor_t;

static moai_status_t describe(const moai_plan_tensor_t *t, const moai_checkpoint_slice_t *sl,
                              size_t n, unsigned char **out, uint64_t *out_size) {
  uint64_t size = 0;
  for (size_t i = 0; i < n; ++i)
    size += sizeof(wire_tensor_t) + strlen(t[i].name) + (t[i].param ? strlen(t[i].param) : 0);
  unsigned char *buf = malloc(size ? (size_t)size : 1), *p = buf;
  if (!buf) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < n; ++i) {
    wire_tensor_t w = {.kind = t[i].kind, .role = t[i].role, .dtype = t[i].dtype,
                       .rank = t[i].rank, .nbytes = t[i].nbytes, .axis = sl[i].axis,
                       .index = sl[i].index, .count = sl[i].count,
                       .name_len = (uint32_t)strlen(t[i].name),
                       .param_len = t[i].param ? (uint32_t)strlen(t[i].param) : UINT32_MAX};
    memcpy(w.dims, t[i].dims, sizeof(w.dims));
    memcpy(p, &w, sizeof(w));
    p += sizeof(w);
    memcpy(p, t[i].name, w.name_len);
    p += w.name_len;
    if (t[i].param) {
      memcpy(p, t[i].param, w.param_len);
      p += w.param_len;
    }
  }
  *out = buf;
  *out_size = size;
  return moai_ok_status();
}

static void part_free(mesh_part_t *p) {
  for (size_t i = 0; p->tensors && i < p->count; ++i) {
    free((void *)(uintptr_t)p->tensors[i].name);
    free((void *)(uintptr_t)p->tensors[i].param);
  }
  free(p->tensors);
  free(p->slices);
  *p = (mesh_part_t){0};
}

static char *copy_string(const unsigned char *p, uint32_t len) {
  char *s = malloc((size_t)len + 1);
  if (s) {
    memcpy(s, p, len);
    s[len] = '\0';
  }
  return s;
}

static moai_status_t parse_description(const unsigned char *buf, uint64_t size, int from,
                                       mesh_part_t *out) {
  size_t n = 0;
  for (uint64_t at = 0; at < size; ++n) {
    wire_tensor_t w;
    if (size - at < sizeof(w)) goto bad;
    memcpy(&w, buf + at, sizeof(w));
    uint64_t strings = (uint64_t)w.name_len + (w.param_len == UINT32_MAX ? 0 : w.param_len);
    if (size - at - sizeof(w) < strings) goto bad;
    at += sizeof(w) + strings;
  }
  out->tensors = calloc(n ? n : 1, sizeof(*out->tensors));
  out->slices = calloc(n ? n : 1, sizeof(*out->slices));
  if (!out->tensors || !out->slices) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  const unsigned char *p = buf;
  for (size_t i = 0; i < n; ++i) {
    wire_tensor_t w;
    memcpy(&w, p, sizeof(w));
    p += sizeof(w);
    moai_plan_tensor_t *t = &out->tensors[i];
    *t = (moai_plan_tensor_t){.kind = w.kind, .role = w.role, .dtype = w.dtype, .rank = w.rank,
                              .nbytes = w.nbytes};
    memcpy(t->dims, w.dims, sizeof(t->dims));
    out->slices[i] = (moai_checkpoint_slice_t){.axis = w.axis, .index = w.index, .count = w.count};
    out->count = i + 1; /* from here part_free frees the names */
    t->name = copy_string(p, w.name_len);
    p += w.name_len;
    if (w.param_len != UINT32_MAX) {
      t->param = copy_string(p, w.param_len);
      p += w.param_len;
    }
    if (!t->name || (w.param_len != UINT32_MAX && !t->param))
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  }
  return moai_ok_status();
bad:
  return MOAI_STATUS(MOAI_DATA_LOSS, "rank %d sent a malformed description of its tensors", from);
}

/* ---- the gather ------------------------------------------------------------- */

/* Rank 0's side of mesh_gather_open: every other device's description, the
 * plan of the full tensors, and each device's list of wanted tensors. */
static moai_status_t gather_open_root(const mesh_rank_t *r, const moai_plan_tensor_t *tensors,
                                      const moai_checkpoint_slice_t *slices, size_t n,
                                      mesh_gather_t *g) {
  uint32_t devices = mesh_device_count(r);
  mesh_part_t *remote = g->parts = calloc(devices, sizeof(*remote));
  g->part_count = devices;
  moai_checkpoint_part_t *parts = calloc(devices, sizeof(*parts));
  moai_status_t status = remote && parts ? moai_ok_status()
                                         : MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  if (!status) parts[0] = (moai_checkpoint_part_t){tensors, slices, n};
  /* Device k's rank of dp index 0 is world rank k. */
  for (uint32_t k = 1; !status && k < devices; ++k) {
    uint64_t size = 0;
    unsigned char *buf = NULL;
    status = moai_comm_recv(r->world, &size, sizeof(size), (int)k, MESH_TAG_GATHER_DESC);
    if (!status && !(buf = malloc(size ? (size_t)size : 1)))
      status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
    if (!status)
      status = moai_comm_recv(r->world, buf, (size_t)size, (int)k, MESH_TAG_GATHER_DESC);
    if (!status) status = parse_description(buf, size, (int)k, &remote[k]);
    free(buf);
    if (!status) parts[k] = (moai_checkpoint_part_t){remote[k].tensors, remote[k].slices,
                                                     remote[k].count};
  }
  if (!status)
    status = moai_status_annotate(
        moai_checkpoint_gather_create(parts, devices, moai_allocator_system(), &g->full),
        "while planning the full tensors of the checkpoint");
  uint64_t scratch = 0;
  for (uint32_t k = 0; !status && k < devices; ++k) {
    uint8_t *mask = calloc(parts[k].count ? parts[k].count : 1, 1);
    if (!mask) status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; !status && i < parts[k].count; ++i) {
      mask[i] = moai_checkpoint_gather_wants(g->full, k, i);
      if (mask[i] && k > 0 && parts[k].tensors[i].nbytes > scratch)
        scratch = parts[k].tensors[i].nbytes;
    }
    if (!status && k > 0)
      status = moai_comm_send(r->world, mask, parts[k].count, (int)k, MESH_TAG_GATHER_WANT);
    if (!status && k == 0) {
      g->wanted = mask;
      mask = NULL;
    }
    free(mask);
  }
  if (!status && !(g->scratch = malloc(scratch ? (size_t)scratch : 1)))
    status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  g->scratch_bytes = (size_t)scratch;
  free(parts);
  return status;
}

moai_status_t mesh_gather_open(const mesh_rank_t *r, const moai_plan_tensor_t *tensors,
                               const moai_checkpoint_slice_t *slices, size_t n,
                               mesh_gather_t *out) {
  *out = (mesh_gather_t){.active = mesh_device_count(r) > 1 &&
                                    (uint32_t)r->rank < mesh_device_count(r)};
  if (!out->active) return moai_ok_status();
  moai_status_t status = moai_ok_status();
  if (r->rank == 0) {
    status = gather_open_root(r, tensors, slices, n, out);
  } else {
    unsigned char *buf = NULL;
    uint64_t size = 0;
    status = describe(tensors, slices, n, &buf, &size);
    if (!status) status = moai_comm_send(r->world, &size, sizeof(size), 0, MESH_TAG_GATHER_DESC);
    if (!status) status = moai_comm_send(r->world, buf, (size_t)size, 0, MESH_TAG_GATHER_DESC);
    free(buf);
    if (!status && !(out->wanted = calloc(n ? n : 1, 1)))
      status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
    if (!status) status = moai_comm_recv(r->world, out->wanted, n, 0, MESH_TAG_GATHER_WANT);
  }
  if (status) mesh_gather_close(out);
  return status;
}

static bool in_kind(const moai_plan_tensor_t *t, mesh_gather_kind_t kind) {
  if (kind == MESH_GATHER_CHECKPOINT) return moai_checkpoint_holds(t);
  return t->kind == MOAI_PLAN_TENSOR_STATE &&
         (t->role == MOAI_STATE_GRAD || t->role == MOAI_STATE_LOSS_WEIGHT);
}

/* Rank 0 receives device k's wanted tensors of `kind`, in its tensor order
 * (both sides walk the same list: the one rank 0 planned from). */
static moai_status_t gather_receive(const mesh_rank_t *r, mesh_gather_t *g, uint32_t k,
                                    mesh_gather_kind_t kind) {
  const mesh_part_t *part = &g->parts[k];
  for (size_t i = 0; i < part->count; ++i) {
    const moai_plan_tensor_t *t = &part->tensors[i];
    if (!moai_checkpoint_gather_wants(g->full, k, i) || !in_kind(t, kind)) continue;
    MOAI_RETURN_IF_ERROR(moai_comm_recv(r->world, g->scratch, (size_t)t->nbytes, (int)k,
                                        MESH_TAG_GATHER_DATA));
    MOAI_RETURN_IF_ERROR(moai_checkpoint_gather_put(g->full, k, i, g->scratch));
  }
  return moai_ok_status();
}

moai_status_t mesh_gather_run(const mesh_rank_t *r, mesh_gather_t *g,
                              const moai_plan_tensor_t *tensors, size_t n,
                              mesh_gather_kind_t kind, const moai_plan_tensor_t **out_tensors,
                              size_t *out_count) {
  *out_tensors = tensors;
  *out_count = n;
  if (!g->active) return moai_ok_status();
  if (r->rank != 0) {
    for (size_t i = 0; i < n; ++i)
      if (g->wanted[i] && in_kind(&tensors[i], kind))
        MOAI_RETURN_IF_ERROR(moai_comm_send(r->world, tensors[i].data, (size_t)tensors[i].nbytes,
                                            0, MESH_TAG_GATHER_DATA));
    return moai_ok_status();
  }
  for (size_t i = 0; i < n; ++i)
    if (g->wanted[i] && in_kind(&tensors[i], kind))
      MOAI_RETURN_IF_ERROR(moai_checkpoint_gather_put(g->full, 0, i, tensors[i].data));
  for (uint32_t k = 1; k < mesh_device_count(r); ++k)
    MOAI_RETURN_IF_ERROR_CTX(gather_receive(r, g, k, kind),
                             "while gathering the tensors of device %u on rank 0", k);
  *out_tensors = moai_checkpoint_gather_tensors(g->full, out_count);
  return moai_ok_status();
}

void mesh_gather_close(mesh_gather_t *g) {
  moai_checkpoint_gather_destroy(g->full);
  free(g->wanted);
  free(g->scratch);
  for (uint32_t k = 0; g->parts && k < g->part_count; ++k) part_free(&g->parts[k]);
  free(g->parts);
  *g = (mesh_gather_t){0};
}
