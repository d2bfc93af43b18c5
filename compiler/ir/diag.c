#include "diag.h"

#include <stdlib.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"

MlirLocation moai_loc_node(MlirContext ctx, const char *file,
                           const char *node_name, const char *op_type,
                           long index) {
  MlirLocation fl = mlirLocationFileLineColGet(
      ctx, mlirStringRefCreateFromCString(file), (unsigned)(index + 1), 1);
  MlirLocation named =
      mlirLocationNameGet(ctx, mlirStringRefCreateFromCString(node_name), fl);
  MlirAttribute meta =
      mlirStringAttrGet(ctx, mlirStringRefCreateFromCString(op_type));
  return mlirLocationFusedGet(ctx, 1, &named, meta);
}

/* Pulls file, node and op type out of a node location; false otherwise. */
static bool unpack_node_loc(MlirLocation loc, MlirStringRef *file,
                            MlirStringRef *node, MlirStringRef *op_type) {
  if (!mlirLocationIsAFused(loc) ||
      mlirLocationFusedGetNumLocations(loc) != 1)
    return false;
  MlirAttribute meta = mlirLocationFusedGetMetadata(loc);
  if (mlirAttributeIsNull(meta) || !mlirAttributeIsAString(meta)) return false;
  MlirLocation inner;
  mlirLocationFusedGetLocations(loc, &inner);
  if (!mlirLocationIsAName(inner)) return false;
  MlirLocation child = mlirLocationNameGetChildLoc(inner);
  if (!mlirLocationIsAFileLineColRange(child)) return false;
  *file = mlirIdentifierStr(mlirLocationFileLineColRangeGetFilename(child));
  *node = mlirIdentifierStr(mlirLocationNameGetName(inner));
  *op_type = mlirStringAttrGetValue(meta);
  return true;
}

void moai_loc_format(MlirLocation loc, moai_strbuf_t *sb) {
  MlirStringRef file, node, op_type;
  if (unpack_node_loc(loc, &file, &node, &op_type)) {
    moai_strbuf_append_n(sb, file.data, file.length);
    moai_strbuf_append(sb, ": node '");
    moai_strbuf_append_n(sb, node.data, node.length);
    moai_strbuf_append(sb, "' (");
    moai_strbuf_append_n(sb, op_type.data, op_type.length);
    moai_strbuf_append(sb, ")");
    return;
  }
  if (mlirLocationIsAFileLineColRange(loc)) {
    MlirStringRef f =
        mlirIdentifierStr(mlirLocationFileLineColRangeGetFilename(loc));
    moai_strbuf_append_n(sb, f.data, f.length);
    moai_strbuf_appendf(sb, ":%d:%d", mlirLocationFileLineColRangeGetStartLine(loc),
                        mlirLocationFileLineColRangeGetStartColumn(loc));
    return;
  }
  if (mlirLocationIsAName(loc)) {
    MlirStringRef n = mlirIdentifierStr(mlirLocationNameGetName(loc));
    moai_strbuf_append(sb, "'");
    moai_strbuf_append_n(sb, n.data, n.length);
    moai_strbuf_append(sb, "'");
    return;
  }
  /* Anything else: MLIR's own spelling without the loc(...) wrapper. */
  moai_strbuf_t tmp;
  moai_strbuf_init(&tmp, moai_allocator_system());
  mlirLocationPrint(loc, moai_strbuf_mlir_callback, &tmp);
  if (tmp.data) moai_strbuf_append(sb, tmp.data);
  moai_strbuf_reset(&tmp);
}

static const char *severity_prefix(MlirDiagnosticSeverity severity) {
  switch (severity) {
    case MlirDiagnosticError: return "";
    case MlirDiagnosticWarning: return "warning: ";
    case MlirDiagnosticNote: return "note: ";
    case MlirDiagnosticRemark: return "remark: ";
  }
  return "";
}

static void format_diagnostic(MlirDiagnostic diag, moai_strbuf_t *sb) {
  moai_loc_format(mlirDiagnosticGetLocation(diag), sb);
  moai_strbuf_append(sb, ": ");
  moai_strbuf_append(sb, severity_prefix(mlirDiagnosticGetSeverity(diag)));
  mlirDiagnosticPrint(diag, moai_strbuf_mlir_callback, sb);
}

static MlirLogicalResult handle(MlirDiagnostic diag, void *user_data) {
  moai_diag_sink_t *sink = user_data;
  MlirDiagnosticSeverity severity = mlirDiagnosticGetSeverity(diag);
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  format_diagnostic(diag, &sb);
  if (sink->print_notes) {
    for (intptr_t i = 0; i < mlirDiagnosticGetNumNotes(diag); ++i) {
      moai_strbuf_append(&sb, "\n  ");
      format_diagnostic(mlirDiagnosticGetNote(diag, i), &sb);
    }
  }
  const char *text = sb.data ? sb.data : "";
  if (sink->stream) fprintf(sink->stream, "%s\n", text);
  if (severity == MlirDiagnosticError) {
    sink->error_count++;
    if (!sink->first_error && sb.data) {
      sink->first_error = sb.data;
      sb.data = NULL;
    }
  }
  moai_strbuf_reset(&sb);
  return mlirLogicalResultSuccess();
}

void moai_diag_attach(MlirContext ctx, moai_diag_sink_t *sink, FILE *stream) {
  memset(sink, 0, sizeof(*sink));
  sink->stream = stream;
  sink->ctx = ctx;
  sink->id = mlirContextAttachDiagnosticHandler(ctx, handle, sink, NULL);
}

void moai_diag_detach(moai_diag_sink_t *sink) {
  if (!mlirContextIsNull(sink->ctx))
    mlirContextDetachDiagnosticHandler(sink->ctx, sink->id);
  free(sink->first_error);
  sink->first_error = NULL;
  sink->ctx = (MlirContext){NULL};
}

moai_status_t moai_diag_take_status(moai_diag_sink_t *sink,
                                    moai_status_code_t code,
                                    const char *fallback) {
  moai_status_t s = sink->first_error
                        ? MOAI_STATUS(code, "%s", sink->first_error)
                        : MOAI_STATUS(code, "%s", fallback);
  free(sink->first_error);
  sink->first_error = NULL;
  return s;
}
