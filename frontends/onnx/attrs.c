/* Node attributes -> MLIR attributes, through the op table: each attribute
 * must be declared by the op and have the declared ONNX type; declared
 * attributes with a default are always set (IRDL verifies their presence);
 * required ones must be given. Constant nodes' value attributes are handled
 * here too. */
#include <stdlib.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "ir/dialect.h"
#include "onnx/importer.h"


static const char *attr_type_name(int type) {
  switch (type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return "FLOAT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return "INT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return "STRING";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return "TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: return "GRAPH";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
      return "SPARSE_TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO: return "TYPE_PROTO";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return "FLOATS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return "INTS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: return "STRINGS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return "TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: return "GRAPHS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
      return "SPARSE_TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
      return "TYPE_PROTOS";
    default: return "UNDEFINED";
  }
}

/* The attribute's ONNX type; old producers leave `type` out, so it is then
 * read off the field that is set. */
static int attr_type(const Onnx__AttributeProto *a) {
  if (a->has_type &&
      a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
    return (int)a->type;
  if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
  if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
  if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

static int type_of_kind(moai_attr_kind_t kind) {
  switch (kind) {
    case MOAI_ATTR_INT:
    case MOAI_ATTR_TYPE: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    case MOAI_ATTR_FLOAT: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    case MOAI_ATTR_STRING: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    case MOAI_ATTR_INTS: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    case MOAI_ATTR_FLOATS: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    case MOAI_ATTR_TENSOR: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  }
  return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

static moai_status_t check_type(moai_onnx_importer_t *im,
                                const moai_onnx_node_t *node,
                                const Onnx__AttributeProto *a, int want) {
  int type = attr_type(a);
  if (type != want)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "attribute '%s' has type %s, expected %s",
                                moai_onnx_str(a->name), attr_type_name(type),
                                attr_type_name(want));
  if (a->ref_attr_name)
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_INVALID_ARGUMENT,
        "attribute '%s' refers to a function attribute, "
        "which only functions may do",
        moai_onnx_str(a->name));
  return moai_ok_status();
}

/* A TENSOR attribute's value as DenseElementsAttr. */
static moai_status_t tensor_attr(moai_onnx_importer_t *im,
                                 const moai_onnx_node_t *node,
                                 const Onnx__AttributeProto *a,
                                 MlirAttribute *out) {
  char what[256];
  snprintf(what, sizeof(what), "node '%s' (%s): attribute '%s'", node->name,
           node->op_type, moai_onnx_str(a->name));
  if (!a->t)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT, "%s: no tensor given",
                           what);
  moai_onnx_tensor_info_t info;
  MOAI_RETURN_IF_ERROR(moai_onnx_tensor_describe(im, a->t, what, &info));
  return moai_onnx_tensor_to_elements(im, a->t, &info, what, out);
}

static moai_status_t convert(moai_onnx_importer_t *im,
                             const moai_onnx_node_t *node,
                             const moai_attr_def_t *def,
                             const Onnx__AttributeProto *a,
                             MlirAttribute *out) {
  MlirContext ctx = im->ctx;
  switch (def->kind) {
    case MOAI_ATTR_INT: *out = moai_onnx_i64_attr(ctx, a->i); break;
    case MOAI_ATTR_FLOAT:
      *out = mlirFloatAttrDoubleGet(ctx, mlirF32TypeGet(ctx), a->f);
      break;
    case MOAI_ATTR_STRING:
      *out = mlirStringAttrGet(
          ctx, mlirStringRefCreate(a->s.data ? (const char *)a->s.data : "",
                                   a->s.len));
      break;
    case MOAI_ATTR_INTS:
      *out = mlirDenseI64ArrayGet(ctx, (intptr_t)a->n_ints, a->ints);
      break;
    case MOAI_ATTR_FLOATS:
      *out = mlirDenseF32ArrayGet(ctx, (intptr_t)a->n_floats, a->floats);
      break;
    case MOAI_ATTR_TENSOR: return tensor_attr(im, node, a, out);
    case MOAI_ATTR_TYPE: {
      if (a->i < 0 || a->i > 255 || !moai_dtype_is_supported((int)a->i))
        return MOAI_ONNX_NODE_ERROR(
            im, node, MOAI_UNIMPLEMENTED,
            "attribute '%s': dtype %s (%lld) is not "
            "supported",
            def->name,
            moai_onnx_dtype_code_name(a->i < 0 || a->i > 255 ? -1 : (int)a->i),
            (long long)a->i);
      *out = mlirTypeAttrGet(moai_dtype_to_mlir(ctx, (moai_dtype_t)a->i));
      break;
    }
  }
  return moai_ok_status();
}

/* The default of an attribute the node leaves out, from the op table. */
static moai_status_t default_attr(moai_onnx_importer_t *im,
                                  const moai_onnx_node_t *node,
                                  const moai_attr_def_t *def,
                                  MlirAttribute *out) {
  if (!moai_attr_default(im->ctx, def, out))
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_INTERNAL,
        "the op table's default '%s' for attribute '%s' "
        "does not parse",
        def->default_text, def->name);
  return moai_ok_status();
}

moai_status_t moai_onnx_unknown_attr(moai_onnx_importer_t *im,
                                     const moai_onnx_node_t *node,
                                     const char *name) {
  return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                              "unknown attribute '%s' for %s (opset %lld)",
                              name, node->op_type, (long long)im->opset);
}

/* The legacy entry called `name`, or NULL. */
static moai_onnx_legacy_attr_t *find_legacy(moai_onnx_legacy_attr_t *legacy,
                                            size_t n_legacy, const char *name) {
  for (size_t k = 0; k < n_legacy; ++k)
    if (strcmp(legacy[k].name, name) == 0) return &legacy[k];
  return NULL;
}

moai_status_t moai_onnx_node_attributes(moai_onnx_importer_t *im,
                                        const moai_onnx_node_t *node,
                                        MlirNamedAttribute *out_attrs,
                                        size_t *inout_count,
                                        moai_onnx_legacy_attr_t *legacy,
                                        size_t n_legacy) {
  const moai_op_def_t *def = node->def;
  const Onnx__NodeProto *p = node->proto;
  bool seen[MOAI_OP_MAX_ATTRS] = {false};
  size_t count = *inout_count;
  for (size_t k = 0; k < n_legacy; ++k) legacy[k].value = NULL;
  for (size_t i = 0; i < p->n_attribute; ++i) {
    const Onnx__AttributeProto *a = p->attribute[i];
    const char *name = moai_onnx_str(a->name);
    if (!*name)
      return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                  "attribute %zu has no name", i);
    if (moai_onnx_attr_since(node->op_type, name) > im->opset)
      return moai_onnx_unknown_attr(im, node, name);
    moai_onnx_legacy_attr_t *l = find_legacy(legacy, n_legacy, name);
    if (l) {
      if (l->value)
        return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                    "attribute '%s' is given twice", name);
      MOAI_RETURN_IF_ERROR(check_type(im, node, a, l->type));
      l->value = a;
      continue;
    }
    const moai_attr_def_t *ad = moai_op_def_find_attr(def, name);
    if (!ad) return moai_onnx_unknown_attr(im, node, name);
    size_t k = (size_t)(ad - def->attrs);
    if (seen[k])
      return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                  "attribute '%s' is given twice", name);
    seen[k] = true;
    MOAI_RETURN_IF_ERROR(check_type(im, node, a, type_of_kind(ad->kind)));
    MlirAttribute value;
    MOAI_RETURN_IF_ERROR(convert(im, node, ad, a, &value));
    out_attrs[count++] = moai_onnx_named(im->ctx, ad->name, value);
  }
  for (size_t k = 0; k < MOAI_OP_MAX_ATTRS && def->attrs[k].name; ++k) {
    const moai_attr_def_t *ad = &def->attrs[k];
    /* An attribute the upgrade captures gets its value from the upgrade. */
    if (seen[k] || !ad->default_text || find_legacy(legacy, n_legacy, ad->name))
      continue;
    if (strcmp(ad->default_text, MOAI_ATTR_REQUIRED) == 0)
      return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                  "missing required attribute '%s'", ad->name);
    MlirAttribute value;
    MOAI_RETURN_IF_ERROR(default_attr(im, node, ad, &value));
    out_attrs[count++] = moai_onnx_named(im->ctx, ad->name, value);
  }
  *inout_count = count;
  return moai_ok_status();
}

moai_status_t moai_onnx_constant_node_value(moai_onnx_importer_t *im,
                                            const moai_onnx_node_t *node,
                                            MlirAttribute *out_value) {
  const Onnx__NodeProto *p = node->proto;
  if (p->n_attribute != 1)
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_INVALID_ARGUMENT,
        "has %zu attributes, expected exactly one of value, "
        "value_float, value_floats, value_int, value_ints",
        p->n_attribute);
  const Onnx__AttributeProto *a = p->attribute[0];
  const char *name = moai_onnx_str(a->name);
  MlirContext ctx = im->ctx;
  if (strcmp(name, "value") == 0) {
    MOAI_RETURN_IF_ERROR(
        check_type(im, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR));
    return tensor_attr(im, node, a, out_value);
  }
  if (strcmp(name, "value_float") == 0) {
    MOAI_RETURN_IF_ERROR(
        check_type(im, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT));
    *out_value = moai_onnx_f32_elements(ctx, &a->f, 1, true);
  } else if (strcmp(name, "value_floats") == 0) {
    MOAI_RETURN_IF_ERROR(
        check_type(im, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS));
    *out_value = moai_onnx_f32_elements(ctx, a->floats, a->n_floats, false);
  } else if (strcmp(name, "value_int") == 0) {
    MOAI_RETURN_IF_ERROR(
        check_type(im, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT));
    *out_value = moai_onnx_i64_elements(ctx, &a->i, 1, true);
  } else if (strcmp(name, "value_ints") == 0) {
    MOAI_RETURN_IF_ERROR(
        check_type(im, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS));
    *out_value = moai_onnx_i64_elements(ctx, a->ints, a->n_ints, false);
  } else if (strcmp(name, "sparse_value") == 0 ||
             strcmp(name, "value_string") == 0 ||
             strcmp(name, "value_strings") == 0) {
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_UNIMPLEMENTED,
                                "Constant with attribute '%s' is not supported",
                                name);
  } else {
    return moai_onnx_unknown_attr(im, node, name);
  }
  if (mlirAttributeIsNull(*out_value))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                "could not build the constant's elements");
  return moai_ok_status();
}
