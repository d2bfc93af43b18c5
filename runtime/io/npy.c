#include "io/npy.h"

#include <stdio.h>
#include <string.h>

#include "io/dtype.h"
#include "io/file.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_ALIGN 64

struct moai_npy_t {
  moai_allocator_t allocator;
  moai_file_map_t map;
  moai_npy_header_t header;
};

typedef struct cursor_t {
  const char *name;
  const char *text;
  size_t pos, size;
} cursor_t;

static void skip_ws(cursor_t *c) {
  while (c->pos < c->size && (c->text[c->pos] == ' ' || c->text[c->pos] == '\t' ||
                              c->text[c->pos] == '\n' || c->text[c->pos] == '\r'))
    ++c->pos;
}

static moai_status_t syntax_error(const cursor_t *c, const char *expected) {
  /* Show the header (it is short) so the user sees what is wrong with it. */
  int shown = c->size < 120 ? (int)c->size : 120;
  char text[121];
  for (int i = 0; i < shown; ++i) {
    char ch = c->text[i];
    text[i] = (ch >= 32 && ch < 127) ? ch : '?';
  }
  text[shown] = '\0';
  while (shown > 0 && text[shown - 1] == ' ') text[--shown] = '\0';
  return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "%s: malformed .npy header at byte %zu: expected %s (header: %s)",
                     c->name, c->pos, expected, text);
}

static bool accept(cursor_t *c, char ch) {
  skip_ws(c);
  if (c->pos < c->size && c->text[c->pos] == ch) {
    ++c->pos;
    return true;
  }
  return false;
}

/* A quoted Python string without escapes, at most size-1 chars. */
static moai_status_t parse_string(cursor_t *c, char *out, size_t size) {
  skip_ws(c);
  if (c->pos >= c->size || (c->text[c->pos] != '\'' && c->text[c->pos] != '"'))
    return syntax_error(c, "a quoted string");
  char quote = c->text[c->pos++];
  size_t n = 0;
  while (c->pos < c->size && c->text[c->pos] != quote) {
    char ch = c->text[c->pos];
    if (ch == '\\' || ch < 32 || ch >= 127 || n + 1 >= size)
      return syntax_error(c, "a short plain string");
    out[n++] = ch;
    ++c->pos;
  }
  if (c->pos >= c->size) return syntax_error(c, "a closing quote");
  ++c->pos;
  out[n] = '\0';
  return moai_ok_status();
}

static moai_status_t parse_bool(cursor_t *c, bool *out) {
  skip_ws(c);
  const char *p = c->text + c->pos;
  size_t left = c->size - c->pos;
  if (left >= 4 && memcmp(p, "True", 4) == 0) {
    c->pos += 4;
    *out = true;
  } else if (left >= 5 && memcmp(p, "False", 5) == 0) {
    c->pos += 5;
    *out = false;
  } else {
    return syntax_error(c, "True or False");
  }
  return moai_ok_status();
}

static moai_status_t parse_shape(cursor_t *c, moai_npy_header_t *h) {
  if (!accept(c, '(')) return syntax_error(c, "a shape tuple '('");
  int32_t rank = 0;
  bool trailing_comma = false;
  for (;;) {
    skip_ws(c);
    if (accept(c, ')')) break;
    if (c->pos >= c->size || c->text[c->pos] < '0' || c->text[c->pos] > '9')
      return syntax_error(c, "a non-negative integer dimension");
    int64_t v = 0;
    while (c->pos < c->size && c->text[c->pos] >= '0' && c->text[c->pos] <= '9') {
      int digit = c->text[c->pos++] - '0';
      if (v > (INT64_MAX - digit) / 10) return syntax_error(c, "a dimension that fits in 64 bits");
      v = v * 10 + digit;
    }
    if (c->pos < c->size && c->text[c->pos] == 'L') ++c->pos; /* Python 2 long */
    if (rank == MOAI_MAX_RANK)
      return MOAI_STATUS(MOAI_UNIMPLEMENTED, "%s: rank exceeds moai's limit of %d", c->name,
                         MOAI_MAX_RANK);
    h->dims[rank++] = v;
    trailing_comma = accept(c, ',');
    if (!trailing_comma) {
      if (!accept(c, ')')) return syntax_error(c, "',' or ')' in the shape");
      break;
    }
  }
  if (rank == 1 && !trailing_comma)
    return syntax_error(c, "a tuple: a 1-d shape is written '(n,)'");
  h->rank = rank;
  return moai_ok_status();
}

static moai_status_t parse_descr(const char *name, const char *descr, int32_t *out_dtype) {
  static const struct {
    const char *descr;
    int32_t dtype;
  } k_descrs[] = {
      {"<f8", MOAI_ABI_F64}, {"<f4", MOAI_ABI_F32}, {"<f2", MOAI_ABI_F16},
      {"<i8", MOAI_ABI_I64}, {"<i4", MOAI_ABI_I32}, {"<i2", MOAI_ABI_I16},
      {"|i1", MOAI_ABI_I8},  {"<i1", MOAI_ABI_I8},  {"<u8", MOAI_ABI_U64},
      {"<u4", MOAI_ABI_U32}, {"<u2", MOAI_ABI_U16}, {"|u1", MOAI_ABI_U8},
      {"<u1", MOAI_ABI_U8},  {"|b1", MOAI_ABI_BOOL}, {"<b1", MOAI_ABI_BOOL},
  };
  for (size_t i = 0; i < sizeof(k_descrs) / sizeof(k_descrs[0]); ++i)
    if (strcmp(descr, k_descrs[i].descr) == 0) {
      *out_dtype = k_descrs[i].dtype;
      return moai_ok_status();
    }
  if (descr[0] == '>')
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: big-endian data ('%s') is not supported: save "
                       "a.astype(a.dtype.newbyteorder('<'))", name, descr);
  return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                     "%s: dtype '%s' is not supported (moai reads <f8 <f4 <f2 <i8 <i4 <i2 "
                     "|i1 <u8 <u4 <u2 |u1 |b1)", name, descr);
}

/* The header dict: exactly descr, fortran_order and shape, in any order. */
static moai_status_t parse_dict(cursor_t *c, moai_npy_header_t *h) {
  if (!accept(c, '{')) return syntax_error(c, "'{'");
  bool seen_descr = false, seen_fortran = false, seen_shape = false, fortran = false;
  char descr[32] = {0};
  for (;;) {
    if (accept(c, '}')) break;
    char key[32];
    MOAI_RETURN_IF_ERROR(parse_string(c, key, sizeof(key)));
    if (!accept(c, ':')) return syntax_error(c, "':'");
    bool *seen;
    if (strcmp(key, "descr") == 0) {
      seen = &seen_descr;
      skip_ws(c);
      if (c->pos < c->size && c->text[c->pos] == '[')
        return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                           "%s: structured arrays are not supported (one plain dtype only)",
                           c->name);
      MOAI_RETURN_IF_ERROR(parse_string(c, descr, sizeof(descr)));
    } else if (strcmp(key, "fortran_order") == 0) {
      seen = &seen_fortran;
      MOAI_RETURN_IF_ERROR(parse_bool(c, &fortran));
    } else if (strcmp(key, "shape") == 0) {
      seen = &seen_shape;
      MOAI_RETURN_IF_ERROR(parse_shape(c, h));
    } else {
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: unexpected key '%s' in the .npy header",
                         c->name, key);
    }
    if (*seen)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: key '%s' repeats in the .npy header",
                         c->name, key);
    *seen = true;
    if (!accept(c, ',')) {
      if (!accept(c, '}')) return syntax_error(c, "',' or '}'");
      break;
    }
  }
  skip_ws(c);
  if (c->pos != c->size) return syntax_error(c, "only padding after '}'");
  if (!seen_descr || !seen_fortran || !seen_shape)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: the .npy header lacks '%s'", c->name,
                       !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
  if (fortran)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: Fortran-ordered arrays are not supported: save "
                       "np.ascontiguousarray(a)", c->name);
  return parse_descr(c->name, descr, &h->dtype);
}

moai_status_t moai_npy_parse(const char *name, const void *data, size_t size,
                             moai_npy_header_t *out_header) {
  const unsigned char *bytes = data;
  if (size < 10 || memcmp(bytes, NPY_MAGIC, 6) != 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: not a .npy file (no \\x93NUMPY magic)", name);
  unsigned major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: .npy format version %u.%u is not supported (1.0, 2.0, 3.0)", name,
                       major, minor);
  size_t start = major == 1 ? 10 : 12;
  if (size < start)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: truncated .npy header", name);
  uint64_t hlen = major == 1 ? (uint64_t)bytes[8] | (uint64_t)bytes[9] << 8
                             : (uint64_t)bytes[8] | (uint64_t)bytes[9] << 8 |
                                   (uint64_t)bytes[10] << 16 | (uint64_t)bytes[11] << 24;
  if (hlen > size - start)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: truncated .npy file: the header claims %llu bytes, %zu remain",
                       name, (unsigned long long)hlen, size - start);
  moai_npy_header_t h = {0};
  cursor_t c = {name, (const char *)bytes + start, 0, (size_t)hlen};
  MOAI_RETURN_IF_ERROR(parse_dict(&c, &h));
  if (!moai_shape_nbytes(h.dtype, h.rank, h.dims, &h.nbytes))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: the array's size overflows", name);
  h.data_offset = start + hlen;
  uint64_t have = size - h.data_offset;
  if (have != h.nbytes) {
    char shape[160];
    moai_shape_format(h.rank, h.dims, shape, sizeof(shape));
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: %s array of shape %s needs %llu data bytes but the file has "
                       "%llu (%s)", name, moai_abi_dtype_name(h.dtype), shape,
                       (unsigned long long)h.nbytes, (unsigned long long)have,
                       have < h.nbytes ? "truncated" : "trailing bytes");
  }
  *out_header = h;
  return moai_ok_status();
}

moai_status_t moai_npy_open(const char *path, moai_allocator_t allocator, moai_npy_t **out) {
  moai_npy_t *npy = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, sizeof(*npy), (void **)&npy));
  npy->allocator = allocator;
  moai_status_t status = moai_file_map(path, &npy->map);
  if (!status) status = moai_npy_parse(path, npy->map.data ? npy->map.data : (const void *)"",
                                       npy->map.size, &npy->header);
  if (status) {
    moai_npy_close(npy);
    return status;
  }
  *out = npy;
  return moai_ok_status();
}

const moai_npy_header_t *moai_npy_header(const moai_npy_t *npy) { return &npy->header; }

const void *moai_npy_data(const moai_npy_t *npy) {
  return npy->header.nbytes ? npy->map.data + npy->header.data_offset : NULL;
}

void moai_npy_close(moai_npy_t *npy) {
  if (!npy) return;
  moai_file_unmap(&npy->map);
  moai_allocator_free(npy->allocator, npy);
}

moai_status_t moai_npy_write(const char *path, int32_t dtype, int32_t rank,
                             const int64_t *dims, const void *data) {
  const char *descr = dtype == MOAI_ABI_BF16 ? "<u2" : moai_dtype_npy_descr(dtype);
  uint64_t nbytes = 0;
  if (!descr || !moai_shape_nbytes(dtype, rank, dims, &nbytes))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: cannot write dtype %d rank %d as .npy",
                       path, (int)dtype, (int)rank);
  /* NumPy's own layout: the dict, spaces, '\n', data at a multiple of 64. */
  char header[512];
  int n = snprintf(header, sizeof(header), "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr);
  for (int32_t i = 0; i < rank; ++i)
    n += snprintf(header + n, sizeof(header) - (size_t)n, i ? ", %lld" : "%lld",
                  (long long)dims[i]);
  n += snprintf(header + n, sizeof(header) - (size_t)n, "%s), }", rank == 1 ? "," : "");
  size_t start = 10;
  size_t total = start + (size_t)n + 1;
  size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  size_t hlen = padded - start;
  memset(header + n, ' ', hlen - (size_t)n - 1);
  header[hlen - 1] = '\n';
  unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                              (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
  moai_atomic_file_t file;
  MOAI_RETURN_IF_ERROR(moai_atomic_file_open(path, &file));
  moai_status_t status = moai_atomic_file_write(&file, prefix, sizeof(prefix));
  if (!status) status = moai_atomic_file_write(&file, header, hlen);
  if (!status && nbytes) status = moai_atomic_file_write(&file, data, (size_t)nbytes);
  if (status) {
    moai_atomic_file_abort(&file);
    return status;
  }
  return moai_atomic_file_commit(&file);
}
