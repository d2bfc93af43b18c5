/* Reading one initializer's data back from a model file, for the plan
 * writer: weights whose bytes are in typed fields (storage "field") have no
 * byte range to copy, so the model is parsed again and the fields decoded. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "onnx/onnx_import.h"

/* Element size of an ONNX data type moai stores, 0 otherwise. */
static size_t elem_size(int32_t code) {
  switch (code) {
    case 2: case 3: case 9: return 1;          /* u8 i8 bool */
    case 4: case 5: case 10: case 16: return 2; /* u16 i16 f16 bf16 */
    case 1: case 6: case 12: return 4;          /* f32 i32 u32 */
    case 7: case 11: case 13: return 8;         /* i64 f64 u64 */
    default: return 0;
  }
}

static moai_status_t decode(const char *path, const Onnx__TensorProto *t,
                            unsigned char *dst, uint64_t nbytes) {
  const char *name = t->name;
  size_t es = elem_size(t->data_type);
  uint64_t numel = 1;
  for (size_t i = 0; i < t->n_dims; ++i) {
    if (t->dims[i] < 0)
      return MOAI_STATUS(MOAI_DATA_LOSS, "%s: initializer '%s' has a negative "
                                         "dimension", path, name);
    numel *= (uint64_t)t->dims[i];
  }
  if (es == 0 || numel * es != nbytes)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: initializer '%s' holds %llu elements of type %d, "
                       "not the %llu bytes expected",
                       path, name, (unsigned long long)numel, t->data_type,
                       (unsigned long long)nbytes);
  if (t->has_raw_data) {
    if (t->raw_data.len != nbytes)
      return MOAI_STATUS(MOAI_DATA_LOSS, "%s: initializer '%s': raw_data has "
                                         "%zu bytes, expected %llu",
                         path, name, t->raw_data.len, (unsigned long long)nbytes);
    if (nbytes) memcpy(dst, t->raw_data.data, nbytes);
    return moai_ok_status();
  }
  size_t have = 0;
  switch (t->data_type) {
    case 1: have = t->n_float_data; break;
    case 11: have = t->n_double_data; break;
    case 7: have = t->n_int64_data; break;
    case 12: case 13: have = t->n_uint64_data; break;
    default: have = t->n_int32_data; break;
  }
  if (have != numel)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: initializer '%s' has %zu values for "
                                       "%llu elements",
                       path, name, have, (unsigned long long)numel);
  for (uint64_t i = 0; i < numel; ++i) {
    unsigned char *d = dst + i * es;
    switch (t->data_type) {
      case 1: memcpy(d, &t->float_data[i], 4); break;
      case 11: memcpy(d, &t->double_data[i], 8); break;
      case 7: memcpy(d, &t->int64_data[i], 8); break;
      case 13: memcpy(d, &t->uint64_data[i], 8); break;
      case 12: {
        uint32_t v = (uint32_t)t->uint64_data[i];
        memcpy(d, &v, 4);
        break;
      }
      case 6: memcpy(d, &t->int32_data[i], 4); break;
      case 9: d[0] = t->int32_data[i] != 0; break;
      default: { /* narrowed: 8- and 16-bit ints, f16/bf16 bit patterns */
        uint32_t v = (uint32_t)t->int32_data[i];
        if (es == 1) {
          d[0] = (unsigned char)v;
        } else {
          uint16_t h = (uint16_t)v;
          memcpy(d, &h, 2);
        }
      }
    }
  }
  return moai_ok_status();
}

moai_status_t moai_onnx_read_initializer(const char *path, const char *name,
                                         void *dst, uint64_t nbytes) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return MOAI_STATUS(errno == ENOENT ? MOAI_NOT_FOUND : MOAI_IO_ERROR,
                       "%s: cannot open the model: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    close(fd);
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot read the model", path);
  }
  void *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (data == MAP_FAILED)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot map the model: %s", path,
                       strerror(errno));
  Onnx__ModelProto *model =
      onnx__model_proto__unpack(NULL, (size_t)st.st_size, data);
  moai_status_t status = moai_ok_status();
  if (!model) {
    status = MOAI_STATUS(MOAI_DATA_LOSS, "%s: not a valid ONNX model", path);
  } else {
    const Onnx__TensorProto *found = NULL;
    const Onnx__GraphProto *g = model->graph;
    for (size_t i = 0; g && i < g->n_initializer && !found; ++i)
      if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
        found = g->initializer[i];
    if (!found)
      status = MOAI_STATUS(MOAI_NOT_FOUND, "%s: no initializer '%s'", path, name);
    else
      status = decode(path, found, dst, nbytes);
    onnx__model_proto__free_unpacked(model, NULL);
  }
  munmap(data, (size_t)st.st_size);
  return status;
}
