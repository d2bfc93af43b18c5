#include "loader/manifest.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "io/dtype.h"
#include "io/file.h"
#include "loader/cpu_features.h"

typedef struct parser_t {
  const char *name; /* for messages: "PLAN/manifest.json" */
  moai_allocator_t allocator;
} parser_t;

static moai_status_t field_error(const parser_t *p, const char *field, const char *what) {
  return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: '%s' %s", p->name, field, what);
}

/* Refuses keys outside `allowed` (NULL-terminated) and reports the first
 * missing one. */
static moai_status_t check_keys(const parser_t *p, const json_t *obj, const char *field,
                                const char *const *allowed) {
  if (!json_is_object(obj)) return field_error(p, field, "must be an object");
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    bool known = false;
    for (const char *const *a = allowed; *a && !known; ++a) known = strcmp(*a, key) == 0;
    if (!known)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: unknown field '%s%s%s' (written by a newer moai?)", p->name,
                         field, field[0] ? "." : "", key);
  }
  for (const char *const *a = allowed; *a; ++a)
    if (!json_object_get(obj, *a))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: missing field '%s%s%s'", p->name, field,
                         field[0] ? "." : "", *a);
  return moai_ok_status();
}

static void join(char *buf, size_t size, const char *field, const char *key) {
  snprintf(buf, size, "%s%s%s", field, field[0] ? "." : "", key);
}

static moai_status_t get_string(const parser_t *p, const json_t *obj, const char *field,
                                const char *key, bool non_empty, const char **out) {
  char f[160];
  join(f, sizeof(f), field, key);
  json_t *v = json_object_get(obj, key);
  if (!json_is_string(v)) return field_error(p, f, "must be a string");
  if (non_empty && json_string_length(v) == 0) return field_error(p, f, "must not be empty");
  char *s = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_strdup(p->allocator, json_string_value(v), &s));
  *out = s;
  return moai_ok_status();
}

static moai_status_t get_int(const parser_t *p, const json_t *obj, const char *field,
                             const char *key, int64_t min, int64_t *out) {
  char f[160];
  join(f, sizeof(f), field, key);
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v)) return field_error(p, f, "must be an integer");
  if (json_integer_value(v) < min) {
    char what[64];
    snprintf(what, sizeof(what), "must be at least %lld", (long long)min);
    return field_error(p, f, what);
  }
  *out = (int64_t)json_integer_value(v);
  return moai_ok_status();
}

static moai_status_t parse_tensors(const parser_t *p, const json_t *root, const char *key,
                                   moai_tensor_desc_t **out, size_t *out_count) {
  json_t *arr = json_object_get(root, key);
  if (!json_is_array(arr)) return field_error(p, key, "must be an array");
  size_t n = json_array_size(arr);
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(p->allocator, (n ? n : 1) * sizeof(**out),
                                             (void **)out));
  *out_count = n;
  static const char *const keys[] = {"name", "dtype", "shape", NULL};
  for (size_t i = 0; i < n; ++i) {
    char f[96], sub[128];
    snprintf(f, sizeof(f), "%s[%zu]", key, i);
    json_t *t = json_array_get(arr, i);
    moai_tensor_desc_t *d = &(*out)[i];
    MOAI_RETURN_IF_ERROR(check_keys(p, t, f, keys));
    MOAI_RETURN_IF_ERROR(get_string(p, t, f, "name", true, &d->name));
    for (size_t j = 0; j < i; ++j)
      if (strcmp((*out)[j].name, d->name) == 0)
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: '%s' is listed twice in '%s'", p->name,
                           d->name, key);
    json_t *dtype = json_object_get(t, "dtype");
    snprintf(sub, sizeof(sub), "%s.dtype", f);
    if (!json_is_string(dtype) || !moai_dtype_from_name(json_string_value(dtype), &d->dtype))
      return field_error(p, sub,
                         "must be one of float32 float64 float16 bfloat16 int8 int16 int32 "
                         "int64 uint8 uint16 uint32 uint64 bool");
    json_t *shape = json_object_get(t, "shape");
    snprintf(sub, sizeof(sub), "%s.shape", f);
    if (!json_is_array(shape) || json_array_size(shape) > MOAI_MAX_RANK)
      return field_error(p, sub, "must be an array of at most 8 dimensions");
    d->rank = (int32_t)json_array_size(shape);
    for (int32_t r = 0; r < d->rank; ++r) {
      json_t *dim = json_array_get(shape, (size_t)r);
      if (!json_is_integer(dim) || json_integer_value(dim) < 0)
        return field_error(p, sub, "must hold non-negative integers (static shapes only)");
      d->dims[r] = (int64_t)json_integer_value(dim);
    }
    if (!moai_shape_nbytes(d->dtype, d->rank, d->dims, &d->nbytes))
      return field_error(p, sub, "is too large");
  }
  return moai_ok_status();
}

static bool is_sha256_hex(const char *s) {
  if (strlen(s) != 64) return false;
  for (const char *c = s; *c; ++c)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return false;
  return true;
}

/* A file of the plan: a plain name inside the plan directory. */
static bool is_plain_file_name(const char *s) {
  return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static moai_status_t parse_device(const parser_t *p, const json_t *v, size_t i,
                                  moai_manifest_device_t *d) {
  static const char *const keys[] = {"index", "binary", "binary_sha256", "weights",
                                     "weights_sha256", "arena_bytes", "weights_bytes",
                                     "const_bytes", "live_lower_bound_bytes", NULL};
  char f[64];
  snprintf(f, sizeof(f), "devices[%zu]", i);
  MOAI_RETURN_IF_ERROR(check_keys(p, v, f, keys));
  int64_t index = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "index", 0, &index));
  if ((size_t)index != i) return field_error(p, f, "index must equal its position in 'devices'");
  d->index = (uint32_t)index;
  const char *sha = NULL;
  for (int w = 0; w < 2; ++w) {
    const char *file_key = w ? "weights" : "binary";
    const char *sha_key = w ? "weights_sha256" : "binary_sha256";
    const char **file = w ? &d->weights : &d->binary;
    char sub[96];
    MOAI_RETURN_IF_ERROR(get_string(p, v, f, file_key, true, file));
    snprintf(sub, sizeof(sub), "%s.%s", f, file_key);
    if (!is_plain_file_name(*file))
      return field_error(p, sub, "must be a file name inside the plan directory");
    json_t *s = json_object_get(v, sha_key);
    sha = json_string_value(s);
    snprintf(sub, sizeof(sub), "%s.%s", f, sha_key);
    if (!sha || !is_sha256_hex(sha))
      return field_error(p, sub, "must be 64 lowercase hex digits");
    memcpy(w ? d->weights_sha256 : d->binary_sha256, sha, MOAI_SHA256_HEX_SIZE);
  }
  static const char *const sizes[] = {"arena_bytes", "weights_bytes", "const_bytes",
                                      "live_lower_bound_bytes"};
  uint64_t *outs[] = {&d->arena_bytes, &d->weights_bytes, &d->const_bytes,
                      &d->live_lower_bound_bytes};
  for (int k = 0; k < 4; ++k) {
    int64_t n = 0;
    MOAI_RETURN_IF_ERROR(get_int(p, v, f, sizes[k], 0, &n));
    *outs[k] = (uint64_t)n;
  }
  return moai_ok_status();
}

/* A string or null (NULL) field. */
static moai_status_t get_string_or_null(const parser_t *p, const json_t *obj, const char *field,
                                        const char *key, const char **out) {
  if (json_is_null(json_object_get(obj, key))) {
    *out = NULL;
    return moai_ok_status();
  }
  char f[160];
  join(f, sizeof(f), field, key);
  if (!json_is_string(json_object_get(obj, key))) return field_error(p, f, "must be a string or null");
  return get_string(p, obj, field, key, true, out);
}

static moai_status_t parse_shards(const parser_t *p, const json_t *v, const char *f,
                                  moai_manifest_device_t *d) {
  char af[96];
  snprintf(af, sizeof(af), "%s.shards", f);
  json_t *arr = json_object_get(v, "shards");
  if (!json_is_array(arr)) return field_error(p, af, "must be an array");
  size_t n = json_array_size(arr);
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(p->allocator, (n ? n : 1) * sizeof(*d->shards),
                                             (void **)&d->shards));
  static const char *const keys[] = {"name", "axis", "index", "count", NULL};
  for (size_t i = 0; i < n; ++i) {
    char sf[128];
    snprintf(sf, sizeof(sf), "%s[%zu]", af, i);
    json_t *e = json_array_get(arr, i);
    moai_manifest_shard_t *sh = &d->shards[i];
    MOAI_RETURN_IF_ERROR(check_keys(p, e, sf, keys));
    MOAI_RETURN_IF_ERROR(get_string(p, e, sf, "name", true, &sh->name));
    d->shard_count = i + 1;
    for (size_t j = 0; j < i; ++j)
      if (strcmp(d->shards[j].name, sh->name) == 0)
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: '%s' is listed twice in '%s'", p->name,
                           sh->name, af);
    int64_t axis = 0, index = 0, count = 0;
    MOAI_RETURN_IF_ERROR(get_int(p, e, sf, "axis", 0, &axis));
    MOAI_RETURN_IF_ERROR(get_int(p, e, sf, "index", 0, &index));
    MOAI_RETURN_IF_ERROR(get_int(p, e, sf, "count", 2, &count));
    if (axis >= MOAI_MAX_RANK) return field_error(p, sf, "axis must be below 8");
    if (index >= count || count > 65536)
      return field_error(p, sf, "index must be below count (at most 65536)");
    *sh = (moai_manifest_shard_t){.name = sh->name, .axis = (uint32_t)axis,
                                  .index = (uint32_t)index, .count = (uint32_t)count};
  }
  return moai_ok_status();
}

static moai_status_t parse_pipeline(const parser_t *p, const json_t *v, const char *f,
                                    moai_manifest_pipeline_t *pl) {
  char pf[96];
  snprintf(pf, sizeof(pf), "%s.pipeline", f);
  json_t *o = json_object_get(v, "pipeline");
  if (json_is_null(o)) return moai_ok_status();
  static const char *const keys[] = {"stage", "stages", "recv", "recv_grad", "send",
                                     "send_grad", NULL};
  MOAI_RETURN_IF_ERROR(check_keys(p, o, pf, keys));
  int64_t stage = 0, stages = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, o, pf, "stage", 0, &stage));
  MOAI_RETURN_IF_ERROR(get_int(p, o, pf, "stages", 1, &stages));
  if (stage >= stages || stages > 65536)
    return field_error(p, pf, "stage must be below stages");
  pl->present = true;
  pl->stage = (uint32_t)stage;
  pl->stages = (uint32_t)stages;
  MOAI_RETURN_IF_ERROR(get_string_or_null(p, o, pf, "recv", &pl->recv));
  MOAI_RETURN_IF_ERROR(get_string_or_null(p, o, pf, "recv_grad", &pl->recv_grad));
  MOAI_RETURN_IF_ERROR(get_string_or_null(p, o, pf, "send", &pl->send));
  return get_string_or_null(p, o, pf, "send_grad", &pl->send_grad);
}

/* "dp" and "zero_owned": both null (the device serves every data-parallel
 * rank), or the rank and the names of the weights it updates (ZeRO-1). */
static moai_status_t parse_zero(const parser_t *p, const json_t *v, const char *f,
                                moai_manifest_device_t *d) {
  char zf[96];
  snprintf(zf, sizeof(zf), "%s.zero_owned", f);
  json_t *dp = json_object_get(v, "dp"), *arr = json_object_get(v, "zero_owned");
  if (!dp || !arr) return field_error(p, f, "needs 'dp' and 'zero_owned' (null without ZeRO)");
  if (json_is_null(dp) != json_is_null(arr))
    return field_error(p, f, "'dp' and 'zero_owned' must both be null or both be set");
  if (json_is_null(dp)) return moai_ok_status();
  int64_t rank = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "dp", 0, &rank));
  if (rank > 65535) return field_error(p, f, "has coordinates outside the mesh");
  if (!json_is_array(arr)) return field_error(p, zf, "must be an array of weight names or null");
  size_t n = json_array_size(arr);
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(p->allocator, (n ? n : 1) * sizeof(*d->owned),
                                             (void **)&d->owned));
  d->zero = true;
  d->dp = (uint32_t)rank;
  for (size_t i = 0; i < n; ++i) {
    json_t *e = json_array_get(arr, i);
    char ef[128];
    snprintf(ef, sizeof(ef), "%s[%zu]", zf, i);
    if (!json_is_string(e)) return field_error(p, ef, "must be a string");
    char *copy = NULL;
    MOAI_RETURN_IF_ERROR(moai_allocator_strdup(p->allocator, json_string_value(e), &copy));
    d->owned[i] = copy;
    d->owned_count = i + 1;
  }
  return moai_ok_status();
}

/* A format-3 device: a sub-plan, its coordinates, shards and pipeline role
 * (checked against the mesh by check_mesh_devices). */
static moai_status_t parse_device_v3(const parser_t *p, const json_t *v, size_t i,
                                     moai_manifest_device_t *d) {
  static const char *const keys[] = {"index", "plan", "manifest_sha256", "tp", "pp",
                                     "shards", "pipeline", "dp", "zero_owned", NULL};
  char f[64], sub[96];
  snprintf(f, sizeof(f), "devices[%zu]", i);
  MOAI_RETURN_IF_ERROR(check_keys(p, v, f, keys));
  int64_t index = 0, tp = 0, pp = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "index", 0, &index));
  if ((size_t)index != i) return field_error(p, f, "index must equal its position in 'devices'");
  d->index = (uint32_t)index;
  MOAI_RETURN_IF_ERROR(get_string(p, v, f, "plan", true, &d->plan));
  snprintf(sub, sizeof(sub), "%s.plan", f);
  if (!is_plain_file_name(d->plan))
    return field_error(p, sub, "must be a directory name inside the plan directory");
  const char *sha = json_string_value(json_object_get(v, "manifest_sha256"));
  snprintf(sub, sizeof(sub), "%s.manifest_sha256", f);
  if (!sha || !is_sha256_hex(sha)) return field_error(p, sub, "must be 64 lowercase hex digits");
  memcpy(d->manifest_sha256, sha, MOAI_SHA256_HEX_SIZE);
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "tp", 0, &tp));
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "pp", 0, &pp));
  if (tp > 65535 || pp > 65535) return field_error(p, f, "has coordinates outside the mesh");
  d->tp = (uint32_t)tp;
  d->pp = (uint32_t)pp;
  MOAI_RETURN_IF_ERROR(parse_shards(p, v, f, d));
  MOAI_RETURN_IF_ERROR(parse_pipeline(p, v, f, &d->pipeline));
  return parse_zero(p, v, f, d);
}

/* ZeRO-1 ownership: a training plan, each owned name one of
 * training.trainable, and no weight owned twice in a (tp, pp) group (moai-run
 * broadcasts it from one owner; a second would keep optimizer state for
 * nothing). Runs after check_mesh_devices: devices are in order. */
static moai_status_t check_zero_owned(const parser_t *p, const moai_manifest_t *m) {
  if (!m->training) return field_error(p, "devices", "has ZeRO-1 devices ('dp' set), but "
                                                     "'training' is null");
  size_t group = (size_t)m->mesh_tp * m->mesh_pp;
  for (size_t k = 0; k < m->device_count; ++k) {
    const moai_manifest_device_t *d = &m->devices[k];
    for (size_t i = 0; i < d->owned_count; ++i) {
      const char *name = d->owned[i];
      char f[96];
      snprintf(f, sizeof(f), "devices[%zu].zero_owned[%zu]", k, i);
      bool trained = false;
      for (size_t t = 0; t < m->train.trainable_count && !trained; ++t)
        trained = strcmp(m->train.trainable[t], name) == 0;
      if (!trained) return field_error(p, f, "names no weight in 'training.trainable'");
      /* Earlier entries of this device, then the same (tp, pp) at lower dp. */
      for (size_t j = k % group; j <= k; j += group) {
        const moai_manifest_device_t *o = &m->devices[j];
        for (size_t s = 0; s < (j == k ? i : o->owned_count); ++s)
          if (strcmp(o->owned[s], name) == 0) {
            char what[192];
            snprintf(what, sizeof(what), "'%.64s' is owned twice in the dp group of (tp %u, pp "
                     "%u): also by devices[%zu] (dp %u)", name, d->tp, d->pp, j, o->dp);
            return field_error(p, f, what);
          }
      }
    }
  }
  return moai_ok_status();
}

/* Format 3: one device per (tp, pp) of the mesh, in order
 * k = pp * mesh.tp + tp (with ZeRO-1 one per rank, k = (dp * mesh.pp + pp) *
 * mesh.tp + tp); shards split over the tp group; a pipeline object exactly
 * when mesh.pp > 1, for the device's own stage. */
static moai_status_t check_mesh_devices(const parser_t *p, const moai_manifest_t *m) {
  /* ZeRO-1: one device per rank (dp x tp x pp); else one per (tp, pp).
   * Agreement first, so a device whose 'dp' was edited is named rather than
   * the device count. */
  bool zero = m->device_count && m->devices[0].zero;
  for (size_t i = 1; i < m->device_count; ++i)
    if (m->devices[i].zero != zero) {
      char f[64];
      snprintf(f, sizeof(f), "devices[%zu].dp", i);
      return field_error(p, f, zero ? "is null, but devices[0].dp is set: 'dp' must be null "
                                      "on every device or set on every device"
                                    : "is set, but devices[0].dp is null: 'dp' must be null "
                                      "on every device or set on every device");
    }
  size_t want = (size_t)m->mesh_tp * m->mesh_pp * (zero ? m->mesh_dp : 1);
  if (m->device_count != want) {
    char what[128];
    snprintf(what, sizeof(what), "must hold %s = %zu entries (mesh %ux%ux%u)",
             zero ? "dp x tp x pp (ZeRO-1)" : "tp x pp", want, m->mesh_dp, m->mesh_tp,
             m->mesh_pp);
    return field_error(p, "devices", what);
  }
  for (size_t i = 0; i < m->device_count; ++i) {
    const moai_manifest_device_t *d = &m->devices[i];
    char f[64];
    snprintf(f, sizeof(f), "devices[%zu]", i);
    if (d->tp >= m->mesh_tp || d->pp >= m->mesh_pp || (zero && d->dp >= m->mesh_dp))
      return field_error(p, f, "has coordinates outside the mesh");
    for (size_t j = 0; j < i; ++j)
      if (m->devices[j].tp == d->tp && m->devices[j].pp == d->pp && m->devices[j].dp == d->dp) {
        char what[96], dp[24] = "";
        if (zero) snprintf(dp, sizeof(dp), "dp %u, ", d->dp);
        snprintf(what, sizeof(what), "has coordinates (%stp %u, pp %u), as devices[%zu] has",
                 dp, d->tp, d->pp, j);
        return field_error(p, f, what);
      }
    if (((size_t)d->dp * m->mesh_pp + d->pp) * m->mesh_tp + d->tp != i)
      return field_error(p, f, "is out of order: device k has tp = k % mesh.tp, "
                               "pp = k / mesh.tp % mesh.pp (and dp = k / (mesh.tp * mesh.pp) "
                               "with ZeRO-1)");
    for (size_t j = 0; j < i; ++j)
      if (strcmp(m->devices[j].plan, d->plan) == 0)
        return field_error(p, f, "plan names the directory of another device");
    for (size_t s = 0; s < d->shard_count; ++s)
      if (d->shards[s].index != d->tp || d->shards[s].count != m->mesh_tp) {
        char sf[96];
        snprintf(sf, sizeof(sf), "%s.shards[%zu]", f, s);
        return field_error(p, sf, "must be slice 'index' = the device's tp of 'count' = "
                                  "mesh.tp: the manifest was edited; recompile the plan");
      }
    const moai_manifest_pipeline_t *pl = &d->pipeline;
    if (m->mesh_pp > 1 && !pl->present)
      return field_error(p, f, "needs a pipeline object (mesh.pp > 1)");
    if (m->mesh_pp == 1 && pl->present)
      return field_error(p, f, "pipeline must be null when mesh.pp is 1");
    if (pl->present && (pl->stage != d->pp || pl->stages != m->mesh_pp))
      return field_error(p, f, "pipeline.stage and stages must be its pp and mesh.pp");
  }
  return zero ? check_zero_owned(p, m) : moai_ok_status();
}

static moai_status_t parse_target(const parser_t *p, const json_t *root, moai_manifest_t *m) {
  static const char *const keys[] = {"triple", "cpu", "features", NULL};
  json_t *t = json_object_get(root, "target");
  MOAI_RETURN_IF_ERROR(check_keys(p, t, "target", keys));
  MOAI_RETURN_IF_ERROR(get_string(p, t, "target", "triple", true, &m->target_triple));
  MOAI_RETURN_IF_ERROR(get_string(p, t, "target", "cpu", false, &m->target_cpu));
  json_t *features = json_object_get(t, "features");
  if (!json_is_array(features)) return field_error(p, "target.features", "must be an array");
  size_t n = json_array_size(features);
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(p->allocator, (n ? n : 1) * sizeof(char *),
                                             (void **)&m->features));
  for (size_t i = 0; i < n; ++i) {
    const char *name = json_string_value(json_array_get(features, i));
    if (!name) return field_error(p, "target.features", "must hold strings");
    if (!moai_cpu_feature_known(name))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: target.features lists '%s', a CPU feature this runtime does "
                         "not know (see runtime/loader/cpu_features.h); use a matching moai-run "
                         "or recompile the plan", p->name, name);
    char *copy = NULL;
    MOAI_RETURN_IF_ERROR(moai_allocator_strdup(p->allocator, name, &copy));
    m->features[m->feature_count++] = copy;
  }
  return moai_ok_status();
}

static bool find_tensor(const moai_tensor_desc_t *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; ++i)
    if (strcmp(t[i].name, name) == 0) return true;
  return false;
}

static moai_status_t get_real(const parser_t *p, const json_t *obj, const char *key,
                              double *out) {
  char f[64];
  join(f, sizeof(f), "training", key);
  json_t *v = json_object_get(obj, key);
  if (!json_is_number(v)) return field_error(p, f, "must be a number");
  *out = json_number_value(v);
  if (!(*out >= 0.0) || *out > 1e30) return field_error(p, f, "must be a finite number >= 0");
  return moai_ok_status();
}

/* The training object (docs/plan-format.md). Inputs and outputs are parsed
 * first: the loss outputs and the labels input must name them. */
static moai_status_t parse_training(const parser_t *p, const json_t *t, moai_manifest_t *m) {
  static const char *const keys[] = {
      "optimizer", "lr", "beta1", "beta2", "eps", "weight_decay", "momentum", "dampening",
      "nesterov", "schedule", "warmup_steps", "total_steps", "micro_batches", "loss_output",
      "loss_weight_output", "loss_weight_kind", "labels_input", "ignore_index", "trainable",
      "persist_bytes", NULL};
  MOAI_RETURN_IF_ERROR(check_keys(p, t, "training", keys));
  moai_manifest_training_t *tr = &m->train;
  MOAI_RETURN_IF_ERROR(get_string(p, t, "training", "optimizer", true, &tr->optimizer));
  if (strcmp(tr->optimizer, "adamw") != 0 && strcmp(tr->optimizer, "sgd") != 0)
    return field_error(p, "training.optimizer", "must be \"adamw\" or \"sgd\"");
  static const char *const reals[] = {"lr", "beta1", "beta2", "eps", "weight_decay",
                                      "momentum", "dampening"};
  double *outs[] = {&tr->hyper.lr, &tr->hyper.beta1, &tr->hyper.beta2, &tr->hyper.eps,
                    &tr->hyper.weight_decay, &tr->hyper.momentum, &tr->hyper.dampening};
  for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); ++i)
    MOAI_RETURN_IF_ERROR(get_real(p, t, reals[i], outs[i]));
  if (tr->hyper.beta1 >= 1.0 || tr->hyper.beta2 >= 1.0)
    return field_error(p, "training.beta1", "and beta2 must be below 1");
  json_t *nesterov = json_object_get(t, "nesterov");
  if (!json_is_boolean(nesterov)) return field_error(p, "training.nesterov", "must be a boolean");
  tr->hyper.nesterov = json_is_true(nesterov);
  const char *schedule = json_string_value(json_object_get(t, "schedule"));
  if (!schedule || (strcmp(schedule, "constant") != 0 && strcmp(schedule, "cosine") != 0))
    return field_error(p, "training.schedule", "must be \"constant\" or \"cosine\"");
  tr->hyper.schedule = strcmp(schedule, "cosine") == 0 ? MOAI_LR_COSINE : MOAI_LR_CONSTANT;
  MOAI_RETURN_IF_ERROR(get_int(p, t, "training", "warmup_steps", 0, &tr->hyper.warmup_steps));
  MOAI_RETURN_IF_ERROR(get_int(p, t, "training", "total_steps", 0, &tr->hyper.total_steps));
  int64_t micro = 0, persist = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, t, "training", "micro_batches", 1, &micro));
  if (micro > UINT32_MAX) return field_error(p, "training.micro_batches", "is out of range");
  tr->micro_batches = (uint32_t)micro;
  MOAI_RETURN_IF_ERROR(get_int(p, t, "training", "persist_bytes", 0, &persist));
  tr->persist_bytes = (uint64_t)persist;
  MOAI_RETURN_IF_ERROR(get_string(p, t, "training", "loss_output", true, &tr->loss_output));
  MOAI_RETURN_IF_ERROR(
      get_string(p, t, "training", "loss_weight_output", true, &tr->loss_weight_output));
  /* Format 3: they name outputs of the last stage's device plans. */
  if (m->format_version < 3 && !find_tensor(m->outputs, m->output_count, tr->loss_output))
    return field_error(p, "training.loss_output", "must name one of 'outputs'");
  if (m->format_version < 3 &&
      !find_tensor(m->outputs, m->output_count, tr->loss_weight_output))
    return field_error(p, "training.loss_weight_output", "must name one of 'outputs'");
  MOAI_RETURN_IF_ERROR(
      get_string(p, t, "training", "loss_weight_kind", true, &tr->loss_weight_kind));
  bool tokens = strcmp(tr->loss_weight_kind, "tokens") == 0;
  if (!tokens && strcmp(tr->loss_weight_kind, "one") != 0)
    return field_error(p, "training.loss_weight_kind", "must be \"tokens\" or \"one\"");
  json_t *labels = json_object_get(t, "labels_input");
  if (tokens && !json_is_null(labels)) {
    /* null when the labels are computed in the graph, not an input */
    MOAI_RETURN_IF_ERROR(get_string(p, t, "training", "labels_input", true, &tr->labels_input));
    if (!find_tensor(m->inputs, m->input_count, tr->labels_input))
      return field_error(p, "training.labels_input", "must name one of 'inputs'");
  } else if (!tokens && !json_is_null(labels)) {
    return field_error(p, "training.labels_input", "must be null unless loss_weight_kind is "
                       "\"tokens\"");
  }
  json_t *ignore = json_object_get(t, "ignore_index");
  if (!json_is_null(ignore)) {
    if (!json_is_integer(ignore))
      return field_error(p, "training.ignore_index", "must be an integer or null");
    tr->ignore_index = (int64_t)json_integer_value(ignore);
    tr->has_ignore_index = true;
  }
  json_t *names = json_object_get(t, "trainable");
  if (!json_is_array(names) || json_array_size(names) == 0)
    return field_error(p, "training.trainable", "must be a non-empty array of weight names");
  size_t n = json_array_size(names);
  MOAI_RETURN_IF_ERROR(
      moai_allocator_malloc(p->allocator, n * sizeof(char *), (void **)&tr->trainable));
  for (size_t i = 0; i < n; ++i) {
    const char *name = json_string_value(json_array_get(names, i));
    if (!name || !name[0])
      return field_error(p, "training.trainable", "must hold non-empty strings");
    for (size_t j = 0; j < i; ++j)
      if (strcmp(tr->trainable[j], name) == 0)
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: '%s' is listed twice in "
                           "'training.trainable'", p->name, name);
    char *copy = NULL;
    MOAI_RETURN_IF_ERROR(moai_allocator_strdup(p->allocator, name, &copy));
    tr->trainable[tr->trainable_count++] = copy;
  }
  return moai_ok_status();
}

/* Checks that `groups.<axis>` lists exactly the ranks that share every
 * coordinate but `axis` with rank r, in increasing order. */
static moai_status_t check_group(const parser_t *p, const json_t *groups, const char *f,
                                 const char *axis, const moai_manifest_t *m,
                                 const moai_manifest_rank_t *r) {
  char g[96];
  snprintf(g, sizeof(g), "%s.groups.%s", f, axis);
  json_t *v = json_object_get(groups, axis);
  uint32_t size = axis[0] == 'd' ? m->mesh_dp : axis[0] == 't' ? m->mesh_tp : m->mesh_pp;
  if (!json_is_array(v) || json_array_size(v) != size) {
    char what[96];
    snprintf(what, sizeof(what), "must list the %u rank(s) of its %s group", size, axis);
    return field_error(p, g, what);
  }
  for (uint32_t i = 0; i < size; ++i) {
    uint32_t dp = axis[0] == 'd' ? i : r->dp, tp = axis[0] == 't' ? i : r->tp,
             pp = axis[0] == 'p' ? i : r->pp;
    json_t *e = json_array_get(v, i);
    if (!json_is_integer(e) ||
        json_integer_value(e) != moai_manifest_rank_of(dp, tp, pp, m->mesh_tp, m->mesh_pp))
      return field_error(p, g, "does not match the mesh: the manifest was edited; recompile "
                               "the plan");
  }
  return moai_ok_status();
}

static moai_status_t parse_rank(const parser_t *p, const json_t *v, size_t i,
                                moai_manifest_t *m) {
  char f[48];
  snprintf(f, sizeof(f), "ranks[%zu]", i);
  static const char *const keys[] = {"rank", "dp", "tp", "pp", "device", "groups", NULL};
  MOAI_RETURN_IF_ERROR(check_keys(p, v, f, keys));
  int64_t rank = 0, c[3] = {0}, device = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "rank", 0, &rank));
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "dp", 0, &c[0]));
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "tp", 0, &c[1]));
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "pp", 0, &c[2]));
  MOAI_RETURN_IF_ERROR(get_int(p, v, f, "device", 0, &device));
  if ((size_t)rank != i) return field_error(p, f, "rank must equal its position in 'ranks'");
  if (c[0] >= m->mesh_dp || c[1] >= m->mesh_tp || c[2] >= m->mesh_pp)
    return field_error(p, f, "has coordinates outside the mesh");
  moai_manifest_rank_t *r = &m->ranks[i];
  *r = (moai_manifest_rank_t){.rank = (uint32_t)rank, .dp = (uint32_t)c[0],
                              .tp = (uint32_t)c[1], .pp = (uint32_t)c[2]};
  if (moai_manifest_rank_of(r->dp, r->tp, r->pp, m->mesh_tp, m->mesh_pp) != r->rank)
    return field_error(p, f, "coordinates do not match its rank (rank = (dp * pp_size + pp) "
                             "* tp_size + tp)");
  if ((size_t)device >= m->device_count) return field_error(p, f, "device names no 'devices' entry");
  if (m->format_version >= 3 && (size_t)device < m->device_count &&
      (uint32_t)device != (m->devices[device].zero ? r->rank : r->pp * m->mesh_tp + r->tp))
    return field_error(p, f, "device must be the one at its (tp, pp): pp * mesh.tp + tp (with "
                             "ZeRO-1: its own rank)");
  r->device = (uint32_t)device;
  static const char *const group_keys[] = {"dp", "tp", "pp", NULL};
  char g[64];
  snprintf(g, sizeof(g), "%s.groups", f);
  json_t *groups = json_object_get(v, "groups");
  MOAI_RETURN_IF_ERROR(check_keys(p, groups, g, group_keys));
  MOAI_RETURN_IF_ERROR(check_group(p, groups, f, "dp", m, r));
  MOAI_RETURN_IF_ERROR(check_group(p, groups, f, "tp", m, r));
  return check_group(p, groups, f, "pp", m, r);
}

/* Format 2's mesh, ranks and prediction; format 1 reads as one rank. */
static moai_status_t parse_parallel(const parser_t *p, const json_t *root, moai_manifest_t *m) {
  m->mesh_dp = m->mesh_tp = m->mesh_pp = 1;
  if (m->format_version < 2) {
    MOAI_RETURN_IF_ERROR(moai_allocator_malloc(p->allocator, sizeof(*m->ranks),
                                               (void **)&m->ranks));
    m->rank_count = 1;
    m->ranks[0] = (moai_manifest_rank_t){0};
    return moai_ok_status();
  }
  static const char *const mesh_keys[] = {"dp", "tp", "pp", NULL};
  json_t *mesh = json_object_get(root, "mesh");
  MOAI_RETURN_IF_ERROR(check_keys(p, mesh, "mesh", mesh_keys));
  int64_t dp = 0, tp = 0, pp = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, mesh, "mesh", "dp", 1, &dp));
  MOAI_RETURN_IF_ERROR(get_int(p, mesh, "mesh", "tp", 1, &tp));
  MOAI_RETURN_IF_ERROR(get_int(p, mesh, "mesh", "pp", 1, &pp));
  if (dp > 65536 || tp > 65536 || pp > 65536 || dp * tp * pp > 65536)
    return field_error(p, "mesh", "has more than 65536 ranks");
  m->mesh_dp = (uint32_t)dp;
  m->mesh_tp = (uint32_t)tp;
  m->mesh_pp = (uint32_t)pp;
  if (m->format_version >= 3) MOAI_RETURN_IF_ERROR(check_mesh_devices(p, m));
  json_t *ranks = json_object_get(root, "ranks");
  size_t n = (size_t)(dp * tp * pp);
  if (!json_is_array(ranks) || json_array_size(ranks) != n) {
    char what[160];
    snprintf(what, sizeof(what), "must hold dp x tp x pp = %zu entries (mesh %lldx%lldx%lld); "
             "the manifest was edited: recompile the plan", n, (long long)dp, (long long)tp,
             (long long)pp);
    return field_error(p, "ranks", what);
  }
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(p->allocator, n * sizeof(*m->ranks),
                                             (void **)&m->ranks));
  m->rank_count = n;
  for (size_t i = 0; i < n; ++i)
    MOAI_RETURN_IF_ERROR(parse_rank(p, json_array_get(ranks, i), i, m));
  json_t *pred = json_object_get(root, "prediction");
  if (json_is_null(pred)) return moai_ok_status();
  static const char *const pred_keys[] = {"step_seconds", "memory_bytes", NULL};
  MOAI_RETURN_IF_ERROR(check_keys(p, pred, "prediction", pred_keys));
  json_t *secs = json_object_get(pred, "step_seconds");
  if (!json_is_number(secs) || json_number_value(secs) < 0)
    return field_error(p, "prediction.step_seconds", "must be a number >= 0");
  int64_t mem = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, pred, "prediction", "memory_bytes", 0, &mem));
  m->has_prediction = true;
  m->predicted_step_seconds = json_number_value(secs);
  m->predicted_memory_bytes = (uint64_t)mem;
  return moai_ok_status();
}

static moai_status_t parse_root(const parser_t *p, const json_t *root, moai_manifest_t *m) {
  if (!json_is_object(root))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: not a JSON object", p->name);
  /* The format and its version first: a newer format may differ anywhere. */
  const char *format = json_string_value(json_object_get(root, "format"));
  if (!format || strcmp(format, MOAI_PLAN_FORMAT_NAME) != 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: not a moai plan manifest ('format' must be \"" MOAI_PLAN_FORMAT_NAME
                       "\")", p->name);
  MOAI_RETURN_IF_ERROR(get_int(p, root, "", "format_version", 1, &m->format_version));
  if (m->format_version > MOAI_PLAN_FORMAT_VERSION)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "%s: plan format %lld is newer than this runtime (%d); use a newer "
                       "moai-run, or recompile the plan with this moai", p->name,
                       (long long)m->format_version, MOAI_PLAN_FORMAT_VERSION);
  static const char *const keys_v1[] = {"format", "format_version", "moai_version",
                                        "abi_version", "target", "model", "inputs", "outputs",
                                        "devices", "training", NULL};
  static const char *const keys_v2[] = {"format", "format_version", "moai_version",
                                        "abi_version", "target", "model", "inputs", "outputs",
                                        "devices", "training", "mesh", "ranks", "prediction",
                                        NULL};
  MOAI_RETURN_IF_ERROR(check_keys(p, root, "", m->format_version >= 2 ? keys_v2 : keys_v1));
  MOAI_RETURN_IF_ERROR(get_string(p, root, "", "moai_version", true, &m->moai_version));
  int64_t abi = 0;
  MOAI_RETURN_IF_ERROR(get_int(p, root, "", "abi_version", 1, &abi));
  if (abi > UINT32_MAX) return field_error(p, "abi_version", "is out of range");
  m->abi_version = (uint32_t)abi;
  MOAI_RETURN_IF_ERROR(parse_target(p, root, m));
  static const char *const model_keys[] = {"source", "opset", "producer", NULL};
  json_t *model = json_object_get(root, "model");
  MOAI_RETURN_IF_ERROR(check_keys(p, model, "model", model_keys));
  MOAI_RETURN_IF_ERROR(get_string(p, model, "model", "source", false, &m->model_source));
  MOAI_RETURN_IF_ERROR(get_int(p, model, "model", "opset", 0, &m->model_opset));
  MOAI_RETURN_IF_ERROR(get_string(p, model, "model", "producer", false, &m->model_producer));
  MOAI_RETURN_IF_ERROR(parse_tensors(p, root, "inputs", &m->inputs, &m->input_count));
  MOAI_RETURN_IF_ERROR(parse_tensors(p, root, "outputs", &m->outputs, &m->output_count));
  if (m->output_count == 0) return field_error(p, "outputs", "must not be empty");
  json_t *devices = json_object_get(root, "devices");
  if (!json_is_array(devices) || json_array_size(devices) == 0)
    return field_error(p, "devices", "must be a non-empty array");
  size_t n = json_array_size(devices);
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(p->allocator, n * sizeof(*m->devices),
                                             (void **)&m->devices));
  m->device_count = n;
  for (size_t i = 0; i < n; ++i)
    MOAI_RETURN_IF_ERROR(m->format_version >= 3
                             ? parse_device_v3(p, json_array_get(devices, i), i, &m->devices[i])
                             : parse_device(p, json_array_get(devices, i), i, &m->devices[i]));
  json_t *training = json_object_get(root, "training");
  if (!json_is_null(training) && !json_is_object(training))
    return field_error(p, "training", "must be null or an object");
  m->training = json_is_object(training);
  if (m->training) MOAI_RETURN_IF_ERROR(parse_training(p, training, m));
  return parse_parallel(p, root, m);
}

moai_status_t moai_manifest_parse(const char *name, const char *text, size_t size,
                                  moai_allocator_t allocator, moai_manifest_t **out_manifest) {
  json_error_t err;
  json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &err);
  if (!root)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s:%d:%d: not valid JSON: %s", name, err.line,
                       err.column, err.text);
  moai_manifest_t *m = NULL;
  moai_status_t status = moai_allocator_malloc(allocator, sizeof(*m), (void **)&m);
  if (!status) {
    m->allocator = allocator;
    parser_t p = {name, allocator};
    status = parse_root(&p, root, m);
  }
  json_decref(root);
  if (status) {
    moai_manifest_free(m);
    return status;
  }
  *out_manifest = m;
  return moai_ok_status();
}

moai_status_t moai_manifest_read(const char *path, moai_allocator_t allocator,
                                 moai_manifest_t **out_manifest) {
  moai_file_map_t map;
  MOAI_RETURN_IF_ERROR(moai_file_map(path, &map));
  moai_status_t status;
  if (map.size > MOAI_MANIFEST_MAX_BYTES)
    status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: %zu bytes is too large for a manifest",
                         path, map.size);
  else
    status = moai_manifest_parse(path, map.data ? (const char *)map.data : "", map.size,
                                 allocator, out_manifest);
  moai_file_unmap(&map);
  return status;
}

void moai_manifest_free(moai_manifest_t *m) {
  if (!m) return;
  moai_allocator_t a = m->allocator;
  moai_allocator_free(a, (void *)m->moai_version);
  moai_allocator_free(a, (void *)m->target_triple);
  moai_allocator_free(a, (void *)m->target_cpu);
  for (size_t i = 0; m->features && i < m->feature_count; ++i)
    moai_allocator_free(a, (void *)m->features[i]);
  moai_allocator_free(a, (void *)m->features);
  moai_allocator_free(a, (void *)m->model_source);
  moai_allocator_free(a, (void *)m->model_producer);
  for (size_t i = 0; m->inputs && i < m->input_count; ++i)
    moai_allocator_free(a, (void *)m->inputs[i].name);
  moai_allocator_free(a, m->inputs);
  for (size_t i = 0; m->outputs && i < m->output_count; ++i)
    moai_allocator_free(a, (void *)m->outputs[i].name);
  moai_allocator_free(a, m->outputs);
  for (size_t i = 0; m->devices && i < m->device_count; ++i) {
    moai_manifest_device_t *d = &m->devices[i];
    moai_allocator_free(a, (void *)d->binary);
    moai_allocator_free(a, (void *)d->weights);
    moai_allocator_free(a, (void *)d->plan);
    for (size_t s = 0; d->shards && s < d->shard_count; ++s)
      moai_allocator_free(a, (void *)d->shards[s].name);
    moai_allocator_free(a, d->shards);
    for (size_t s = 0; d->owned && s < d->owned_count; ++s)
      moai_allocator_free(a, (void *)d->owned[s]);
    moai_allocator_free(a, d->owned);
    moai_allocator_free(a, (void *)d->pipeline.recv);
    moai_allocator_free(a, (void *)d->pipeline.recv_grad);
    moai_allocator_free(a, (void *)d->pipeline.send);
    moai_allocator_free(a, (void *)d->pipeline.send_grad);
  }
  moai_allocator_free(a, m->devices);
  moai_manifest_training_t *tr = &m->train;
  moai_allocator_free(a, (void *)tr->optimizer);
  moai_allocator_free(a, (void *)tr->loss_output);
  moai_allocator_free(a, (void *)tr->loss_weight_output);
  moai_allocator_free(a, (void *)tr->loss_weight_kind);
  moai_allocator_free(a, (void *)tr->labels_input);
  for (size_t i = 0; tr->trainable && i < tr->trainable_count; ++i)
    moai_allocator_free(a, (void *)tr->trainable[i]);
  moai_allocator_free(a, (void *)tr->trainable);
  moai_allocator_free(a, m->ranks);
  moai_allocator_free(a, m);
}
