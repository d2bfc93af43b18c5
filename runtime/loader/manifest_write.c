/* The manifest writer: the plan writer's half of manifest.h. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/allocator.h"
#include "io/dtype.h"
#include "io/file.h"
#include "loader/manifest.h"

static json_t *tensors_json(const moai_tensor_desc_t *t, size_t n) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; ++i) {
    json_t *shape = json_array();
    for (int32_t r = 0; shape && r < t[i].rank && r < MOAI_MAX_RANK; ++r)
      json_array_append_new(shape, json_integer((json_int_t)t[i].dims[r]));
    const char *dtype = moai_abi_dtype_name(t[i].dtype);
    json_array_append_new(arr, json_pack("{s:s?, s:s?, s:o?}", "name", t[i].name, "dtype",
                                         dtype, "shape", shape));
  }
  return arr;
}

/* The training object, or null for an inference plan. */
static json_t *training_json(const moai_manifest_t *m) {
  if (!m->training) return json_null();
  const moai_manifest_training_t *t = &m->train;
  json_t *names = json_array();
  for (size_t i = 0; names && i < t->trainable_count; ++i)
    json_array_append_new(names, json_string(t->trainable[i]));
  json_t *obj = json_pack(
      "{s:s?, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:s, s:I, s:I, s:I, s:s?, s:s?, s:s?}",
      "optimizer", t->optimizer, "lr", t->hyper.lr, "beta1", t->hyper.beta1, "beta2",
      t->hyper.beta2, "eps", t->hyper.eps, "weight_decay", t->hyper.weight_decay, "momentum",
      t->hyper.momentum, "dampening", t->hyper.dampening, "nesterov", t->hyper.nesterov != 0,
      "schedule", t->hyper.schedule == MOAI_LR_COSINE ? "cosine" : "constant",
      "warmup_steps", (json_int_t)t->hyper.warmup_steps, "total_steps",
      (json_int_t)t->hyper.total_steps, "micro_batches", (json_int_t)t->micro_batches,
      "loss_output", t->loss_output, "loss_weight_output", t->loss_weight_output,
      "loss_weight_kind", t->loss_weight_kind);
  if (!obj) {
    json_decref(names);
    return NULL;
  }
  json_object_set_new(obj, "labels_input",
                      t->labels_input ? json_string(t->labels_input) : json_null());
  json_object_set_new(obj, "ignore_index", t->has_ignore_index
                                               ? json_integer((json_int_t)t->ignore_index)
                                               : json_null());
  if (names) json_object_set_new(obj, "trainable", names);
  json_object_set_new(obj, "persist_bytes", json_integer((json_int_t)t->persist_bytes));
  return obj;
}

static json_t *group_json(const moai_manifest_t *m, const moai_manifest_rank_t *r, int axis) {
  json_t *g = json_array();
  uint32_t size = axis == 0 ? m->mesh_dp : axis == 1 ? m->mesh_tp : m->mesh_pp;
  for (uint32_t i = 0; g && i < size; ++i)
    json_array_append_new(
        g, json_integer(moai_manifest_rank_of(axis == 0 ? i : r->dp, axis == 1 ? i : r->tp,
                                              axis == 2 ? i : r->pp, m->mesh_tp, m->mesh_pp)));
  return g;
}

/* Format 2's mesh, ranks and prediction (docs/plan-format.md). Without
 * m->ranks every rank is derived from the mesh and runs device 0 (format 3:
 * the device at its (tp, pp)). */
static void parallel_json(const moai_manifest_t *given, json_t *root) {
  if (!root || given->format_version < 2) return;
  moai_manifest_t copy = *given; /* a zero mesh size means 1 */
  const moai_manifest_t *m = &copy;
  if (!copy.mesh_dp) copy.mesh_dp = 1;
  if (!copy.mesh_tp) copy.mesh_tp = 1;
  if (!copy.mesh_pp) copy.mesh_pp = 1;
  json_object_set_new(root, "mesh", json_pack("{s:I, s:I, s:I}", "dp", (json_int_t)m->mesh_dp,
                                              "tp", (json_int_t)m->mesh_tp, "pp",
                                              (json_int_t)m->mesh_pp));
  json_t *ranks = json_array();
  size_t n = (size_t)m->mesh_dp * m->mesh_tp * m->mesh_pp;
  for (size_t i = 0; ranks && i < n; ++i) {
    moai_manifest_rank_t r;
    if (m->ranks && i < m->rank_count) {
      r = m->ranks[i];
    } else {
      uint32_t tp = (uint32_t)(i % m->mesh_tp), rest = (uint32_t)(i / m->mesh_tp);
      r = (moai_manifest_rank_t){.rank = (uint32_t)i, .dp = rest / m->mesh_pp,
                                 .tp = tp, .pp = rest % m->mesh_pp, .device = 0};
      if (m->format_version >= 3)
        r.device = m->device_count && m->devices[0].zero ? r.rank : r.pp * m->mesh_tp + r.tp;
    }
    json_array_append_new(
        ranks, json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:o?, s:o?, s:o?}}", "rank",
                         (json_int_t)r.rank, "dp", (json_int_t)r.dp, "tp", (json_int_t)r.tp,
                         "pp", (json_int_t)r.pp, "device", (json_int_t)r.device, "groups",
                         "dp", group_json(m, &r, 0), "tp", group_json(m, &r, 1), "pp",
                         group_json(m, &r, 2)));
  }
  if (ranks) json_object_set_new(root, "ranks", ranks);
  json_object_set_new(root, "prediction",
                      m->has_prediction
                          ? json_pack("{s:f, s:I}", "step_seconds", m->predicted_step_seconds,
                                      "memory_bytes", (json_int_t)m->predicted_memory_bytes)
                          : json_null());
}

static json_t *string_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* A format-3 device entry: sub-plan, coordinates, shards, pipeline role. */
static json_t *device_v3_json(const moai_manifest_device_t *d) {
  json_t *shards = json_array();
  for (size_t i = 0; shards && i < d->shard_count; ++i) {
    const moai_manifest_shard_t *sh = &d->shards[i];
    json_array_append_new(shards, json_pack("{s:s?, s:I, s:I, s:I}", "name", sh->name, "axis",
                                            (json_int_t)sh->axis, "index",
                                            (json_int_t)sh->index, "count",
                                            (json_int_t)sh->count));
  }
  const moai_manifest_pipeline_t *pl = &d->pipeline;
  json_t *pipeline = json_null();
  if (pl->present) {
    pipeline = json_pack("{s:I, s:I}", "stage", (json_int_t)pl->stage, "stages",
                         (json_int_t)pl->stages);
    if (pipeline) {
      json_object_set_new(pipeline, "recv", string_or_null(pl->recv));
      json_object_set_new(pipeline, "recv_grad", string_or_null(pl->recv_grad));
      json_object_set_new(pipeline, "send", string_or_null(pl->send));
      json_object_set_new(pipeline, "send_grad", string_or_null(pl->send_grad));
    }
  }
  json_t *owned = json_null(), *dp = json_null();
  if (d->zero) {
    owned = json_array();
    for (size_t i = 0; owned && i < d->owned_count; ++i)
      json_array_append_new(owned, json_string(d->owned[i]));
    dp = json_integer((json_int_t)d->dp);
  }
  return json_pack("{s:I, s:s?, s:s, s:I, s:I, s:o?, s:o?, s:o?, s:o?}", "index",
                   (json_int_t)d->index, "plan", d->plan, "manifest_sha256", d->manifest_sha256,
                   "tp", (json_int_t)d->tp, "pp", (json_int_t)d->pp, "shards", shards,
                   "pipeline", pipeline, "dp", dp, "zero_owned", owned);
}

static json_t *manifest_json(const moai_manifest_t *m) {
  json_t *features = json_array();
  for (size_t i = 0; features && i < m->feature_count; ++i)
    json_array_append_new(features, json_string(m->features[i]));
  json_t *devices = json_array();
  for (size_t i = 0; devices && i < m->device_count; ++i) {
    const moai_manifest_device_t *d = &m->devices[i];
    if (m->format_version >= 3) {
      json_array_append_new(devices, device_v3_json(d));
      continue;
    }
    json_array_append_new(
        devices,
        json_pack("{s:I, s:s?, s:s, s:s?, s:s, s:I, s:I, s:I, s:I}", "index", (json_int_t)d->index,
                  "binary", d->binary, "binary_sha256", d->binary_sha256, "weights", d->weights,
                  "weights_sha256", d->weights_sha256, "arena_bytes", (json_int_t)d->arena_bytes,
                  "weights_bytes", (json_int_t)d->weights_bytes, "const_bytes",
                  (json_int_t)d->const_bytes, "live_lower_bound_bytes",
                  (json_int_t)d->live_lower_bound_bytes));
  }
  /* Missing values (NULL strings, failed sub-objects) leave fields out; the
   * round trip through the parser in moai_manifest_write reports them. */
  json_t *root = json_pack(
      "{s:s, s:I, s:s?, s:I, s:{s:s?, s:s?, s:o?}, s:{s:s?, s:I, s:s?}, s:o?, s:o?, s:o?, s:o?}",
      "format", MOAI_PLAN_FORMAT_NAME, "format_version", (json_int_t)m->format_version,
      "moai_version", m->moai_version, "abi_version", (json_int_t)m->abi_version, "target",
      "triple", m->target_triple, "cpu", m->target_cpu, "features", features, "model", "source",
      m->model_source, "opset", (json_int_t)m->model_opset, "producer", m->model_producer,
      "inputs", tensors_json(m->inputs, m->input_count), "outputs",
      tensors_json(m->outputs, m->output_count), "devices", devices, "training",
      training_json(m));
  parallel_json(m, root);
  return root;
}

moai_status_t moai_manifest_write(const char *path, const moai_manifest_t *manifest) {
  json_t *root = manifest_json(manifest);
  char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(root);
  if (!text)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: cannot encode the manifest (out of memory, or a string that is "
                       "not UTF-8)", path);
  /* Validate exactly as a reader will, so a plan that would be refused is
   * never written. */
  moai_manifest_t *check = NULL;
  moai_status_t status =
      moai_manifest_parse(path, text, strlen(text), moai_allocator_system(), &check);
  moai_manifest_free(check);
  if (status) {
    free(text);
    return moai_status_annotate(status, "writing the manifest");
  }
  moai_atomic_file_t file;
  status = moai_atomic_file_open(path, &file);
  if (!status) {
    status = moai_atomic_file_write(&file, text, strlen(text));
    if (!status) status = moai_atomic_file_write(&file, "\n", 1);
    if (status) moai_atomic_file_abort(&file);
    else status = moai_atomic_file_commit(&file);
  }
  free(text);
  return status;
}
