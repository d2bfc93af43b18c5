/* A minimal protobuf wire-format scanner that finds where each initializer's
 * raw_data payload lies in the model file, so a moai.weight can point at its
 * bytes (file, offset, length) instead of copying them. protobuf-c gives the
 * parsed bytes but not their position.
 *
 * Path followed: ModelProto field 7 (graph) -> GraphProto field 5
 * (initializer, repeated) -> TensorProto field 9 (raw_data). protobuf-c
 * merges a message field that occurs more than once and concatenates its
 * repeated fields, so initializers are numbered across every occurrence of
 * field 7 in order; for raw_data, like protobuf-c, the last occurrence wins.
 * Wire format: https://protobuf.dev/programming-guides/encoding/ */
#include "onnx/importer.h"

enum {
  WIRE_VARINT = 0,
  WIRE_FIXED64 = 1,
  WIRE_LEN = 2,
  WIRE_START_GROUP = 3,
  WIRE_END_GROUP = 4,
  WIRE_FIXED32 = 5,
};

enum {
  MODEL_FIELD_GRAPH = 7,
  GRAPH_FIELD_INITIALIZER = 5,
  TENSOR_FIELD_RAW_DATA = 9,
};

typedef struct wire_reader_t {
  const uint8_t *base; /* start of the whole buffer, for offsets */
  const uint8_t *p;
  const uint8_t *end;
} wire_reader_t;

static bool read_varint(wire_reader_t *r, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return false;
    uint8_t byte = *r->p++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false; /* more than 10 bytes */
}

/* Reads a tag; false at the end of the buffer or on a malformed tag. */
static bool read_tag(wire_reader_t *r, uint32_t *field, unsigned *wire_type) {
  uint64_t tag;
  if (!read_varint(r, &tag)) return false;
  *field = (uint32_t)(tag >> 3);
  *wire_type = (unsigned)(tag & 7);
  return *field != 0 && (tag >> 3) <= UINT32_MAX;
}

/* Reads a length-delimited payload into `sub`. */
static bool read_len(wire_reader_t *r, wire_reader_t *sub) {
  uint64_t len;
  if (!read_varint(r, &len)) return false;
  if (len > (uint64_t)(r->end - r->p)) return false;
  sub->base = r->base;
  sub->p = r->p;
  sub->end = r->p + len;
  r->p += len;
  return true;
}

static bool skip(wire_reader_t *r, unsigned wire_type) {
  uint64_t v;
  wire_reader_t sub;
  switch (wire_type) {
    case WIRE_VARINT: return read_varint(r, &v);
    case WIRE_LEN: return read_len(r, &sub);
    case WIRE_FIXED64:
      if (r->end - r->p < 8) return false;
      r->p += 8;
      return true;
    case WIRE_FIXED32:
      if (r->end - r->p < 4) return false;
      r->p += 4;
      return true;
    default: return false; /* groups: protobuf-c rejects them too */
  }
}

static bool scan_tensor(wire_reader_t *r, int64_t *out_offset,
                        int64_t *out_length) {
  *out_offset = -1;
  *out_length = 0;
  while (r->p < r->end) {
    uint32_t field;
    unsigned wt;
    if (!read_tag(r, &field, &wt)) return false;
    if (field == TENSOR_FIELD_RAW_DATA && wt == WIRE_LEN) {
      wire_reader_t sub;
      if (!read_len(r, &sub)) return false;
      *out_offset = (int64_t)(sub.p - sub.base);
      *out_length = (int64_t)(sub.end - sub.p);
    } else if (!skip(r, wt)) {
      return false;
    }
  }
  return true;
}

static bool scan_graph(wire_reader_t *r, size_t count, size_t *inout_found,
                       int64_t *out_offsets, int64_t *out_lengths) {
  while (r->p < r->end) {
    uint32_t field;
    unsigned wt;
    if (!read_tag(r, &field, &wt)) return false;
    if (field == GRAPH_FIELD_INITIALIZER && wt == WIRE_LEN) {
      wire_reader_t sub;
      if (!read_len(r, &sub)) return false;
      size_t i = (*inout_found)++;
      if (i >= count) return false;
      if (!scan_tensor(&sub, &out_offsets[i], &out_lengths[i])) return false;
    } else if (!skip(r, wt)) {
      return false;
    }
  }
  return true;
}

bool moai_onnx_wire_find_raw_data(const uint8_t *data, size_t size,
                                  size_t count, int64_t *out_offsets,
                                  int64_t *out_lengths) {
  if (size == 0) return count == 0;
  wire_reader_t r = {.base = data, .p = data, .end = data + size};
  size_t found = 0;
  while (r.p < r.end) {
    uint32_t field;
    unsigned wt;
    if (!read_tag(&r, &field, &wt)) return false;
    if (field == MODEL_FIELD_GRAPH && wt == WIRE_LEN) {
      wire_reader_t sub;
      if (!read_len(&r, &sub)) return false;
      if (!scan_graph(&sub, count, &found, out_offsets, out_lengths))
        return false;
    } else if (!skip(&r, wt)) {
      return false;
    }
  }
  return found == count;
}
