/* Reading ONNX's node test data (model.onnx and test_data_set_0's
 * input_N.pb / output_N.pb TensorProtos) into plain buffers, and looking
 * up the single node's attributes and values: shared by
 * test_kernels_elementwise_onnx.c and test_kernels_nn_onnx.c. Each case
 * file defines MAX_VALUES (inputs and outputs kept per case) before
 * including this header, and writes its own case_load on top of
 * case_read_model and load_value. */
#ifndef MOAI_TESTS_ONNX_TESTDATA_SUPPORT_H
#define MOAI_TESTS_ONNX_TESTDATA_SUPPORT_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "moai_test.h"
#include "onnx.pb-c.h"

#ifndef MAX_VALUES
#error "define MAX_VALUES before including onnx_testdata_support.h"
#endif

/* load_value's `declared` that keeps the dtype the data has. */
#define ONNX_ANY_DTYPE (-1)

/* A tensor read from a .pb file. */
typedef struct value_t {
  char name[128];
  int32_t dtype, rank;
  int64_t dims[MOAI_MAX_RANK];
  unsigned char *data;
  size_t bytes;
} value_t;

/* One single-node test: its folder's name, the model and its node, the
 * default domain's opset, and test_data_set_0's values. */
typedef struct onnx_case_t {
  const char *name;
  Onnx__ModelProto *model;
  const Onnx__NodeProto *node;
  int64_t opset;
  value_t inputs[MAX_VALUES], outputs[MAX_VALUES];
  int n_inputs, n_outputs;
} onnx_case_t;

/* Bytes of one element of a moai dtype, 0 for any other ONNX dtype. */
static inline size_t dtype_size_or_0(int32_t dt) {
  switch (dt) {
    case MOAI_ABI_U8: case MOAI_ABI_I8: case MOAI_ABI_BOOL: return 1;
    case MOAI_ABI_U16: case MOAI_ABI_I16: case MOAI_ABI_F16: case MOAI_ABI_BF16: return 2;
    case MOAI_ABI_F32: case MOAI_ABI_I32: case MOAI_ABI_U32: return 4;
    case MOAI_ABI_F64: case MOAI_ABI_I64: case MOAI_ABI_U64: return 8;
    default: return 0;
  }
}

/* A whole file into a malloc'd buffer (NULL if it cannot be opened). */
static inline unsigned char *read_file(const char *path, size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  size_t cap = 0, len = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 65536;
      unsigned char *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  fclose(f);
  *out_len = len;
  return buf;
}

/* A TensorProto's elements (raw_data or typed fields) into v. Returns 0 if
 * the dtype is not a moai dtype or the data is malformed. */
static inline int tensor_to_value(const Onnx__TensorProto *t, const char *name, value_t *v) {
  memset(v, 0, sizeof *v);
  snprintf(v->name, sizeof v->name, "%s", t->name && t->name[0] ? t->name : name);
  v->dtype = t->data_type;
  v->rank = (int32_t)t->n_dims;
  size_t es = dtype_size_or_0(v->dtype);
  if (!es || t->n_dims > MOAI_MAX_RANK) return 0;
  int64_t n = 1;
  for (size_t d = 0; d < t->n_dims; ++d) n *= v->dims[d] = t->dims[d];
  if (n < 0 || n > (1 << 24)) return 0;
  v->bytes = (size_t)n * es;
  v->data = calloc(1, v->bytes + 8);
  int ok = v->data != NULL;
  if (ok && t->has_raw_data) {
    ok = t->raw_data.len == v->bytes;
    if (ok && v->bytes) memcpy(v->data, t->raw_data.data, v->bytes);
  } else if (ok) {
    for (int64_t i = 0; i < n && ok; ++i) {
      switch (v->dtype) {
        case MOAI_ABI_F32:
          ok = (size_t)i < t->n_float_data;
          if (ok) ((float *)v->data)[i] = t->float_data[i];
          break;
        case MOAI_ABI_F64:
          ok = (size_t)i < t->n_double_data;
          if (ok) ((double *)v->data)[i] = t->double_data[i];
          break;
        case MOAI_ABI_I64:
          ok = (size_t)i < t->n_int64_data;
          if (ok) ((int64_t *)v->data)[i] = t->int64_data[i];
          break;
        case MOAI_ABI_U32: case MOAI_ABI_U64:
          ok = (size_t)i < t->n_uint64_data;
          if (ok) memcpy(v->data + (size_t)i * es, &t->uint64_data[i], es); /* little-endian */
          break;
        default: /* int32, int16, int8, uint8, uint16, bool, f16, bf16 */
          ok = (size_t)i < t->n_int32_data;
          if (ok) memcpy(v->data + (size_t)i * es, &t->int32_data[i], es);
      }
    }
  }
  if (!ok) {
    free(v->data);
    v->data = NULL;
  }
  return ok;
}

/* The element type a graph input/output declares (0 if not a tensor). */
static inline int32_t declared_dtype(const Onnx__ValueInfoProto *vi) {
  if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
      !vi->type->tensor_type || !vi->type->tensor_type->has_elem_type)
    return 0;
  return vi->type->tensor_type->elem_type;
}

/* Reads a .pb tensor into v, `name` naming it where the file does not.
 * Unless `declared` is ONNX_ANY_DTYPE, the graph value declares that dtype:
 * the declared type wins where the data's differs in name only (ONNX's
 * bfloat16 cast tests store uint16 data), and any other mismatch fails. */
static inline int load_value(const char *path, const char *name, int32_t declared, value_t *v) {
  size_t len;
  unsigned char *buf = read_file(path, &len);
  if (!buf) return 0;
  Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
  free(buf);
  if (!t) return 0;
  int ok = tensor_to_value(t, name, v);
  onnx__tensor_proto__free_unpacked(t, NULL);
  if (ok && declared != ONNX_ANY_DTYPE && declared != v->dtype) {
    if (dtype_size_or_0(declared) == dtype_size_or_0(v->dtype)) v->dtype = declared;
    else ok = 0;
  }
  if (!ok) {
    free(v->data);
    v->data = NULL;
  }
  return ok;
}

/* Unpacks the model at `path` into c->model and takes c->opset from its
 * default-domain import; 0 when it cannot be read or has no graph. */
static inline int case_read_model(onnx_case_t *c, const char *path) {
  size_t len;
  unsigned char *buf = read_file(path, &len);
  if (buf) c->model = onnx__model_proto__unpack(NULL, len, buf);
  free(buf);
  if (!c->model || !c->model->graph) return 0;
  for (size_t i = 0; i < c->model->n_opset_import; ++i) {
    const Onnx__OperatorSetIdProto *o = c->model->opset_import[i];
    if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) c->opset = o->version;
  }
  return 1;
}

static inline void case_free(onnx_case_t *c) {
  for (int i = 0; i < c->n_inputs; ++i) free(c->inputs[i].data);
  for (int i = 0; i < c->n_outputs; ++i) free(c->outputs[i].data);
  if (c->model) onnx__model_proto__free_unpacked(c->model, NULL);
  c->model = NULL;
}

/* ---- the node's values and attributes ---- */

static inline const value_t *find_value(const value_t *vals, int n, const char *name) {
  if (!name || !name[0]) return NULL;
  for (int i = 0; i < n; ++i)
    if (!strcmp(vals[i].name, name)) return &vals[i];
  return NULL;
}
static inline const value_t *node_input(const onnx_case_t *c, size_t i) {
  return i < c->node->n_input ? find_value(c->inputs, c->n_inputs, c->node->input[i]) : NULL;
}
static inline const value_t *node_output(const onnx_case_t *c, size_t i) {
  return i < c->node->n_output ? find_value(c->outputs, c->n_outputs, c->node->output[i]) : NULL;
}

static inline const Onnx__AttributeProto *attr(const onnx_case_t *c, const char *name) {
  for (size_t i = 0; i < c->node->n_attribute; ++i)
    if (!strcmp(c->node->attribute[i]->name, name)) return c->node->attribute[i];
  return NULL;
}
static inline int64_t attr_i(const onnx_case_t *c, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = attr(c, name);
  return a ? a->i : dflt;
}
static inline float attr_f(const onnx_case_t *c, const char *name, float dflt) {
  const Onnx__AttributeProto *a = attr(c, name);
  return a ? a->f : dflt;
}
static inline int attr_s_is(const onnx_case_t *c, const char *name, const char *value) {
  const Onnx__AttributeProto *a = attr(c, name);
  return a && a->s.len == strlen(value) && !memcmp(a->s.data, value, a->s.len);
}
/* ints attribute into out[0..n), or dflt where absent; returns its length. */
static inline size_t attr_ints(const onnx_case_t *c, const char *name, int64_t *out, size_t n,
                               int64_t dflt) {
  const Onnx__AttributeProto *a = attr(c, name);
  for (size_t i = 0; i < n; ++i) out[i] = a && i < a->n_ints ? a->ints[i] : dflt;
  return a ? a->n_ints : 0;
}

/* Element i of an integer tensor (int32/int64). */
static inline int64_t value_int(const value_t *v, int64_t i) {
  return v->dtype == MOAI_ABI_I64 ? ((const int64_t *)v->data)[i] : ((const int32_t *)v->data)[i];
}
static inline int64_t value_numel(const value_t *v) {
  int64_t n = 1;
  for (int j = 0; j < v->rank; ++j) n *= v->dims[j];
  return n;
}

/* The folder of ONNX's node tests: MOAI_ONNX_TESTDATA_DIR, else Debian's. */
static inline const char *onnx_testdata_root(void) {
  const char *root = getenv("MOAI_ONNX_TESTDATA_DIR");
  return root ? root : "/usr/share/libonnx-testdata/data/node";
}

static inline int onnx_testdata_cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists, sorted, the node tests under `root` that `keep` accepts (NULL:
 * all), leaving out the `_expanded` variants. The caller frees each name and
 * the array. A missing folder fails the test: scripts/setup.sh installs
 * libonnx-testdata, so skipping would hide a broken setup. */
static inline size_t onnx_testdata_list(const char *root, int (*keep)(const char *),
                                        char ***out_names) {
  *out_names = NULL;
  DIR *d = opendir(root);
  if (!d) {
    fprintf(stderr, "\n  %s: %s (package libonnx-testdata; scripts/setup.sh installs it)\n",
            root, strerror(errno));
    CU_FAIL("ONNX's node test data is missing");
    return 0;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.' || strstr(e->d_name, "_expanded")) continue;
    if (keep && !keep(e->d_name)) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 512;
      char **grown = realloc(names, cap * sizeof *names);
      CU_ASSERT_FATAL(grown != NULL);
      names = grown;
    }
    names[n] = strdup(e->d_name);
    CU_ASSERT_FATAL(names[n] != NULL);
    ++n;
  }
  closedir(d);
  qsort(names, n, sizeof *names, onnx_testdata_cmp_names);
  *out_names = names;
  return n;
}

#endif /* MOAI_TESTS_ONNX_TESTDATA_SUPPORT_H */
