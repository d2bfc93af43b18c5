/* Cluster files: strict JSON, every field required, no unknown field. */
#include "cost/cluster.h"

#include <jansson.h>
#include <string.h>
#include <unistd.h>

typedef struct field_t {
  const char *key;
  double *out;
} field_t;

/* Reads `obj`, whose path is `where`, into `fields`; every key is required
 * and no other key is allowed. */
static moai_status_t read_object(const char *file, const char *where, json_t *obj,
                                 const field_t *fields, size_t count) {
  if (!json_is_object(obj))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: field '%s' must be an object", file, where);
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    size_t i = 0;
    while (i < count && strcmp(fields[i].key, key) != 0) ++i;
    if (i == count)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: unknown field '%s%s%s'", file,
                         where, *where ? "." : "", key);
  }
  for (size_t i = 0; i < count; ++i) {
    json_t *x = json_object_get(obj, fields[i].key);
    if (!x)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: missing field '%s%s%s'", file,
                         where, *where ? "." : "", fields[i].key);
    if (!fields[i].out) continue; /* a sub-object, read by the caller */
    if (!json_is_number(x) || !(json_number_value(x) > 0))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: field '%s%s%s' must be a positive number", file, where,
                         *where ? "." : "", fields[i].key);
    *fields[i].out = json_number_value(x);
  }
  return moai_ok_status();
}

static moai_status_t parse_root(json_t *root, const char *file, moai_cluster_t *c) {
  double nodes = 0, dpn = 0;
  /* NULL out: a sub-object (read below) or a string. */
  const field_t top[] = {{"name", NULL},       {"nodes", &nodes},
                         {"devices_per_node", &dpn}, {"device", NULL},
                         {"intra_node", NULL}, {"inter_node", NULL}};
  MOAI_RETURN_IF_ERROR(read_object(file, "", root, top, sizeof(top) / sizeof(top[0])));
  json_t *name = json_object_get(root, "name");
  if (!json_is_string(name))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: field 'name' must be a string", file);
  snprintf(c->name, sizeof(c->name), "%s", json_string_value(name));
  if (nodes != (double)(int64_t)nodes || dpn != (double)(int64_t)dpn)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: fields 'nodes' and 'devices_per_node' must be integers", file);
  c->nodes = (int64_t)nodes;
  c->devices_per_node = (int64_t)dpn;
  json_t *device = json_object_get(root, "device");
  const field_t dev[] = {{"memory_bytes", &c->memory_bytes},
                         {"memory_usable_fraction", &c->memory_usable_fraction},
                         {"peak_flops", NULL},
                         {"memory_bandwidth", &c->memory_bandwidth}};
  MOAI_RETURN_IF_ERROR(read_object(file, "device", device, dev, 4));
  if (c->memory_usable_fraction > 1)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: field 'device.memory_usable_fraction' must be in (0, 1]", file);
  const field_t peak[] = {{"f32", &c->peak_flops_f32},
                          {"bf16", &c->peak_flops_bf16},
                          {"f16", &c->peak_flops_f16}};
  MOAI_RETURN_IF_ERROR(
      read_object(file, "device.peak_flops", json_object_get(device, "peak_flops"), peak, 3));
  const field_t intra[] = {{"bandwidth", &c->intra_bandwidth}, {"latency", &c->intra_latency}};
  MOAI_RETURN_IF_ERROR(read_object(file, "intra_node", json_object_get(root, "intra_node"), intra, 2));
  const field_t inter[] = {{"bandwidth", &c->inter_bandwidth}, {"latency", &c->inter_latency}};
  MOAI_RETURN_IF_ERROR(read_object(file, "inter_node", json_object_get(root, "inter_node"), inter, 2));
  return moai_ok_status();
}

/* Parses `root` (released here) into *out, which is written only on success. */
static moai_status_t parse_owned(json_t *root, const char *name, moai_cluster_t *out) {
  moai_cluster_t c;
  memset(&c, 0, sizeof(c));
  moai_status_t status = parse_root(root, name, &c);
  json_decref(root);
  if (!status) *out = c;
  return status;
}

moai_status_t moai_cluster_parse(const char *json, const char *name, moai_cluster_t *out) {
  json_error_t err;
  json_t *root = json_loads(json, 0, &err);
  if (!root)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s:%d: not valid JSON: %s", name, err.line,
                       err.text);
  return parse_owned(root, name, out);
}

moai_status_t moai_cluster_load(const char *path, moai_cluster_t *out) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (!root) {
    FILE *f = fopen(path, "r");
    if (!f) return MOAI_STATUS(MOAI_NOT_FOUND, "%s: cannot open the cluster file", path);
    fclose(f);
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s:%d: not valid JSON: %s", path, err.line,
                       err.text);
  }
  return parse_owned(root, path, out);
}

moai_status_t moai_cluster_from_host(int64_t devices, moai_cluster_t *out) {
  if (devices < 1)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "--devices must be at least 1, got %lld",
                       (long long)devices);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGE_SIZE);
  if (cores < 1) cores = 1;
  double ram = pages > 0 && page > 0 ? (double)pages * (double)page : 8e9;
  moai_cluster_t c;
  memset(&c, 0, sizeof(c));
  snprintf(c.name, sizeof(c.name), "this machine as %lld devices", (long long)devices);
  c.nodes = 1;
  c.devices_per_node = devices;
  c.memory_bytes = ram / (double)devices;
  c.memory_usable_fraction = 0.8;
  double flops = (double)cores * MOAI_CLUSTER_HOST_FLOPS_PER_CORE / (double)devices;
  /* A CPU has no bf16 FMA in general: bf16 runs at the f32 rate. */
  c.peak_flops_f32 = c.peak_flops_bf16 = c.peak_flops_f16 = flops;
  c.memory_bandwidth = MOAI_CLUSTER_HOST_MEMORY_BANDWIDTH / (double)devices;
  c.intra_bandwidth = c.inter_bandwidth = MOAI_CLUSTER_HOST_MEMORY_BANDWIDTH / (double)devices;
  c.intra_latency = c.inter_latency = 2e-6; /* a barrier between threads */
  *out = c;
  return moai_ok_status();
}
