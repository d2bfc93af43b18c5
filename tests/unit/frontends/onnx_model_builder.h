/* Builds small ONNX models in memory with protobuf-c's generated structs, for
 * the importer's unit tests. Everything a builder allocates lives in its
 * arena and is freed by tb_free. */
#ifndef MOAI_TESTS_ONNX_MODEL_BUILDER_H
#define MOAI_TESTS_ONNX_MODEL_BUILDER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

typedef struct tb_block_t {
  struct tb_block_t *next;
  _Alignas(16) unsigned char data[];
} tb_block_t;

typedef struct tb_t {
  tb_block_t *blocks;
  Onnx__ModelProto *model;
  Onnx__GraphProto *graph;
} tb_t;

static inline void *tb_alloc(tb_t *b, size_t size) {
  tb_block_t *block = calloc(1, sizeof(tb_block_t) + size);
  block->next = b->blocks;
  b->blocks = block;
  return block->data;
}

static inline char *tb_str(tb_t *b, const char *s) {
  if (!s) return NULL;
  char *copy = tb_alloc(b, strlen(s) + 1);
  strcpy(copy, s);
  return copy;
}

static inline void *tb_dup(tb_t *b, const void *p, size_t size) {
  void *copy = tb_alloc(b, size ? size : 1);
  if (size) memcpy(copy, p, size);
  return copy;
}

/* Appends `item` to a repeated field (array of pointers). */
static inline void tb_push(tb_t *b, void *array_field, size_t *count,
                           void *item) {
  void ***array = array_field;
  void **grown = tb_alloc(b, (*count + 1) * sizeof(void *));
  if (*count) memcpy(grown, *array, *count * sizeof(void *));
  grown[(*count)++] = item;
  *array = grown;
}

static inline void tb_free(tb_t *b) {
  while (b->blocks) {
    tb_block_t *next = b->blocks->next;
    free(b->blocks);
    b->blocks = next;
  }
  b->model = NULL;
  b->graph = NULL;
}

/* A model importing ai.onnx `opset` (domain "") with an empty graph. */
static inline void tb_init(tb_t *b, int64_t opset) {
  memset(b, 0, sizeof(*b));
  b->model = tb_alloc(b, sizeof(Onnx__ModelProto));
  onnx__model_proto__init(b->model);
  b->model->has_ir_version = 1;
  b->model->ir_version = 8;
  b->model->producer_name = tb_str(b, "moai-test");
  b->model->producer_version = tb_str(b, "1.0");
  Onnx__OperatorSetIdProto *o = tb_alloc(b, sizeof(*o));
  onnx__operator_set_id_proto__init(o);
  o->domain = tb_str(b, "");
  o->has_version = 1;
  o->version = opset;
  tb_push(b, &b->model->opset_import, &b->model->n_opset_import, o);
  b->graph = tb_alloc(b, sizeof(Onnx__GraphProto));
  onnx__graph_proto__init(b->graph);
  b->graph->name = tb_str(b, "g");
  b->model->graph = b->graph;
}

/* A tensor type; dims < 0 become symbolic ("N"); rank < 0: no shape. */
static inline Onnx__TypeProto *tb_type(tb_t *b, int elem, int rank,
                                       const int64_t *dims) {
  Onnx__TypeProto *tp = tb_alloc(b, sizeof(*tp));
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = tb_alloc(b, sizeof(*tt));
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = elem;
  if (rank >= 0) {
    tt->shape = tb_alloc(b, sizeof(Onnx__TensorShapeProto));
    onnx__tensor_shape_proto__init(tt->shape);
    for (int i = 0; i < rank; ++i) {
      Onnx__TensorShapeProto__Dimension *d = tb_alloc(b, sizeof(*d));
      onnx__tensor_shape_proto__dimension__init(d);
      if (dims[i] >= 0) {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = dims[i];
      } else {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        d->dim_param = tb_str(b, "N");
      }
      tb_push(b, &tt->shape->dim, &tt->shape->n_dim, d);
    }
  }
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  return tp;
}

static inline Onnx__ValueInfoProto *tb_value(tb_t *b, const char *name,
                                             int elem, int rank,
                                             const int64_t *dims) {
  Onnx__ValueInfoProto *vi = tb_alloc(b, sizeof(*vi));
  onnx__value_info_proto__init(vi);
  vi->name = tb_str(b, name);
  vi->type = tb_type(b, elem, rank, dims);
  return vi;
}

static inline void tb_input(tb_t *b, const char *name, int elem, int rank,
                            const int64_t *dims) {
  tb_push(b, &b->graph->input, &b->graph->n_input,
          tb_value(b, name, elem, rank, dims));
}

static inline void tb_output(tb_t *b, const char *name, int elem, int rank,
                             const int64_t *dims) {
  tb_push(b, &b->graph->output, &b->graph->n_output,
          tb_value(b, name, elem, rank, dims));
}

static inline void tb_value_info(tb_t *b, const char *name, int elem, int rank,
                                 const int64_t *dims) {
  tb_push(b, &b->graph->value_info, &b->graph->n_value_info,
          tb_value(b, name, elem, rank, dims));
}

/* A node; inputs and outputs are NULL-terminated lists ("" allowed). */
static inline Onnx__NodeProto *tb_node(tb_t *b, const char *op_type,
                                       const char *name,
                                       const char *const *inputs,
                                       const char *const *outputs) {
  Onnx__NodeProto *n = tb_alloc(b, sizeof(*n));
  onnx__node_proto__init(n);
  n->op_type = tb_str(b, op_type);
  n->name = tb_str(b, name);
  for (size_t i = 0; inputs && inputs[i]; ++i)
    tb_push(b, &n->input, &n->n_input, tb_str(b, inputs[i]));
  for (size_t i = 0; outputs && outputs[i]; ++i)
    tb_push(b, &n->output, &n->n_output, tb_str(b, outputs[i]));
  tb_push(b, &b->graph->node, &b->graph->n_node, n);
  return n;
}

static inline Onnx__AttributeProto *tb_attr(
    tb_t *b, Onnx__NodeProto *n, const char *name,
    Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = tb_alloc(b, sizeof(*a));
  onnx__attribute_proto__init(a);
  a->name = tb_str(b, name);
  a->has_type = 1;
  a->type = type;
  tb_push(b, &n->attribute, &n->n_attribute, a);
  return a;
}

static inline void tb_attr_int(tb_t *b, Onnx__NodeProto *n, const char *name,
                               int64_t v) {
  Onnx__AttributeProto *a =
      tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

static inline void tb_attr_float(tb_t *b, Onnx__NodeProto *n, const char *name,
                                 float v) {
  Onnx__AttributeProto *a =
      tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = v;
}

static inline void tb_attr_ints(tb_t *b, Onnx__NodeProto *n, const char *name,
                                size_t count, const int64_t *v) {
  Onnx__AttributeProto *a =
      tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = count;
  a->ints = tb_dup(b, v, count * sizeof(int64_t));
}

static inline void tb_attr_string(tb_t *b, Onnx__NodeProto *n, const char *name,
                                  const char *s) {
  Onnx__AttributeProto *a =
      tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.len = strlen(s);
  a->s.data = tb_dup(b, s, a->s.len);
}

/* A TensorProto with dims; data is set by the caller. */
static inline Onnx__TensorProto *tb_tensor(tb_t *b, const char *name, int dtype,
                                           int rank, const int64_t *dims) {
  Onnx__TensorProto *t = tb_alloc(b, sizeof(*t));
  onnx__tensor_proto__init(t);
  t->name = tb_str(b, name);
  t->has_data_type = 1;
  t->data_type = dtype;
  t->n_dims = (size_t)rank;
  t->dims = tb_dup(b, dims, (size_t)rank * sizeof(int64_t));
  return t;
}

static inline void tb_raw(tb_t *b, Onnx__TensorProto *t, const void *data,
                          size_t size) {
  t->has_raw_data = 1;
  t->raw_data.len = size;
  t->raw_data.data = tb_dup(b, data, size);
}

static inline Onnx__TensorProto *tb_initializer(tb_t *b, Onnx__TensorProto *t) {
  tb_push(b, &b->graph->initializer, &b->graph->n_initializer, t);
  return t;
}

/* A float32 initializer in raw_data or float_data. */
static inline Onnx__TensorProto *tb_init_f32(tb_t *b, const char *name,
                                             int rank, const int64_t *dims,
                                             const float *values, int raw) {
  Onnx__TensorProto *t =
      tb_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims);
  size_t n = 1;
  for (int i = 0; i < rank; ++i) n *= (size_t)dims[i];
  if (raw) {
    tb_raw(b, t, values, n * sizeof(float));
  } else {
    t->n_float_data = n;
    t->float_data = tb_dup(b, values, n * sizeof(float));
  }
  return tb_initializer(b, t);
}

static inline void tb_external(tb_t *b, Onnx__TensorProto *t,
                               const char *location, const char *offset,
                               const char *length) {
  const char *keys[3] = {"location", "offset", "length"};
  const char *values[3] = {location, offset, length};
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  for (int i = 0; i < 3; ++i) {
    if (!values[i]) continue;
    Onnx__StringStringEntryProto *e = tb_alloc(b, sizeof(*e));
    onnx__string_string_entry_proto__init(e);
    e->key = tb_str(b, keys[i]);
    e->value = tb_str(b, values[i]);
    tb_push(b, &t->external_data, &t->n_external_data, e);
  }
}

static inline void tb_metadata(tb_t *b, const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = tb_alloc(b, sizeof(*e));
  onnx__string_string_entry_proto__init(e);
  e->key = tb_str(b, key);
  e->value = tb_str(b, value);
  tb_push(b, &b->model->metadata_props, &b->model->n_metadata_props, e);
}

/* The serialized model (malloc'd; free it). */
static inline uint8_t *tb_pack(const tb_t *b, size_t *out_size) {
  size_t size = onnx__model_proto__get_packed_size(b->model);
  uint8_t *data = malloc(size ? size : 1);
  *out_size = onnx__model_proto__pack(b->model, data);
  return data;
}

#endif /* MOAI_TESTS_ONNX_MODEL_BUILDER_H */
