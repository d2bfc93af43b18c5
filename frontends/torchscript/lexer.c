/* The lexer of TorchScript code files: Python's tokens and layout (INDENT
 * and DEDENT from leading spaces, no layout inside brackets), and the
 * arena the syntax tree lives in. */
#include <stdlib.h>
#include <string.h>

#include "torchscript/ast.h"
#include "torchscript/value.h"

/* ---- arena: the value arena's (value.c) ------------------------------------ */

moai_ts_ast_arena_t *moai_ts_ast_arena_create(void) { return moai_ts_arena_create(); }
void moai_ts_ast_arena_destroy(moai_ts_ast_arena_t *arena) { moai_ts_arena_destroy(arena); }
void *moai_ts_ast_arena_alloc(moai_ts_ast_arena_t *arena, size_t size) {
  return moai_ts_arena_alloc(arena, size);
}

/* ---- lexer --------------------------------------------------------------- */

typedef struct lexer_t {
  moai_ts_ast_arena_t *arena;
  const char *archive, *file;
  const char *s, *end;
  int line;
  int depth; /* open brackets */
  int indents[MOAI_TS_MAX_NESTING + 1];
  int nindents;
  moai_ts_token_t *toks;
  size_t count, capacity;
} lexer_t;

static moai_status_t lex_error(const lexer_t *lx, const char *what) {
  return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: %s:%d: syntax error: %s",
                     lx->archive, lx->file, lx->line, what);
}

static moai_status_t push(lexer_t *lx, moai_ts_token_t tok) {
  if (lx->count == lx->capacity) {
    size_t capacity = lx->capacity ? lx->capacity * 2 : 256;
    moai_ts_token_t *toks = moai_ts_ast_arena_alloc(
        lx->arena, capacity * sizeof(moai_ts_token_t));
    if (!toks)
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: %s: out of memory lexing",
                         lx->archive, lx->file);
    if (lx->count) memcpy(toks, lx->toks, lx->count * sizeof(moai_ts_token_t));
    lx->toks = toks;
    lx->capacity = capacity;
  }
  tok.line = tok.line ? tok.line : lx->line;
  lx->toks[lx->count++] = tok;
  return moai_ok_status();
}

static moai_status_t push_kind(lexer_t *lx, moai_ts_tok_kind_t kind) {
  return push(lx, (moai_ts_token_t){.kind = kind});
}

/* At the start of a logical line: measures the indentation, skips blank and
 * comment lines, and emits INDENT/DEDENTs. Returns with lx->s at the first
 * token of the line or at the end. */
static moai_status_t lex_line_start(lexer_t *lx) {
  for (;;) {
    int col = 0;
    while (lx->s < lx->end && *lx->s == ' ') ++col, ++lx->s;
    if (lx->s < lx->end && *lx->s == '\t')
      return lex_error(lx, "a tab in the indentation (the TorchScript printer "
                           "indents with spaces)");
    if (lx->s < lx->end && *lx->s == '\r') ++lx->s;
    if (lx->s < lx->end && *lx->s == '#')
      while (lx->s < lx->end && *lx->s != '\n') ++lx->s;
    if (lx->s < lx->end && *lx->s == '\n') {
      ++lx->s;
      ++lx->line;
      continue;
    }
    if (lx->s >= lx->end) return moai_ok_status();
    int top = lx->indents[lx->nindents - 1];
    if (col > top) {
      if (lx->nindents > MOAI_TS_MAX_NESTING)
        return lex_error(lx, "blocks nested too deeply");
      lx->indents[lx->nindents++] = col;
      return push_kind(lx, MOAI_TS_TOK_INDENT);
    }
    while (col < lx->indents[lx->nindents - 1]) {
      --lx->nindents;
      MOAI_RETURN_IF_ERROR(push_kind(lx, MOAI_TS_TOK_DEDENT));
    }
    if (col != lx->indents[lx->nindents - 1])
      return lex_error(lx, "the indentation matches no enclosing block");
    return moai_ok_status();
  }
}

static bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static moai_status_t lex_number(lexer_t *lx) {
  const char *p = lx->s;
  bool is_float = false;
  while (p < lx->end && is_digit(*p)) ++p;
  if (p < lx->end && *p == '.') {
    is_float = true;
    ++p;
    while (p < lx->end && is_digit(*p)) ++p;
  }
  if (p < lx->end && (*p == 'e' || *p == 'E')) {
    const char *q = p + 1;
    if (q < lx->end && (*q == '+' || *q == '-')) ++q;
    if (q < lx->end && is_digit(*q)) {
      is_float = true;
      p = q;
      while (p < lx->end && is_digit(*p)) ++p;
    }
  }
  if (p < lx->end && (is_ident_start(*p) || is_digit(*p)))
    return lex_error(lx, "a malformed number");
  size_t n = (size_t)(p - lx->s);
  char buf[64];
  if (n >= sizeof(buf)) return lex_error(lx, "a number literal is too long");
  memcpy(buf, lx->s, n);
  buf[n] = '\0';
  moai_ts_token_t tok = {0};
  if (is_float) {
    tok.kind = MOAI_TS_TOK_FLOAT;
    tok.f = strtod(buf, NULL);
  } else {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      if (v > (UINT64_C(1) << 63) / 10)
        return lex_error(lx, "an integer literal does not fit 64 bits");
      v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    if (v > (UINT64_C(1) << 63))
      return lex_error(lx, "an integer literal does not fit 64 bits");
    tok.kind = MOAI_TS_TOK_INT;
    tok.u = v;
  }
  lx->s = p;
  return push(lx, tok);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static moai_status_t lex_string(lexer_t *lx) {
  char quote = *lx->s++;
  const char *start = lx->s;
  size_t cap = 0;
  for (const char *p = start; p < lx->end && *p != quote && *p != '\n'; ++p) {
    if (*p == '\\' && p + 1 < lx->end) ++p;
    ++cap;
  }
  char *out = moai_ts_ast_arena_alloc(lx->arena, cap + 1);
  if (!out)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: %s: out of memory lexing",
                       lx->archive, lx->file);
  size_t n = 0;
  for (;;) {
    if (lx->s >= lx->end || *lx->s == '\n')
      return lex_error(lx, "a string is not closed on its line");
    char c = *lx->s++;
    if (c == quote) break;
    if (c == '\\') {
      if (lx->s >= lx->end) return lex_error(lx, "a string ends in '\\'");
      char e = *lx->s++;
      switch (e) {
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case '0': c = '\0'; break;
        case '\\': case '\'': case '"': c = e; break;
        case 'x': {
          int hi = lx->s < lx->end ? hex_value(lx->s[0]) : -1;
          int lo = lx->s + 1 < lx->end ? hex_value(lx->s[1]) : -1;
          if (hi < 0 || lo < 0) return lex_error(lx, "a bad \\x escape");
          c = (char)(hi * 16 + lo);
          lx->s += 2;
          break;
        }
        default:
          return lex_error(lx, "an unknown escape in a string");
      }
    }
    out[n++] = c;
  }
  out[n] = '\0';
  return push(lx, (moai_ts_token_t){
                      .kind = MOAI_TS_TOK_STR, .text = out, .len = n});
}

/* Operators, longest first. */
static const struct {
  const char *text;
  int op;
} k_ops[] = {
    {"**", MOAI_TS_OP_POW},    {"//", MOAI_TS_OP_FLOORDIV},
    {"==", MOAI_TS_OP_EQ},     {"!=", MOAI_TS_OP_NE},
    {"<=", MOAI_TS_OP_LE},     {">=", MOAI_TS_OP_GE},
    {"<<", MOAI_TS_OP_LSHIFT}, {">>", MOAI_TS_OP_RSHIFT},
    {"->", MOAI_TS_OP_ARROW},
};

static moai_status_t lex_op(lexer_t *lx) {
  const char *p = lx->s;
  moai_ts_token_t tok = {.kind = MOAI_TS_TOK_OP};
  size_t n = 0;
  for (size_t i = 0; i < sizeof(k_ops) / sizeof(k_ops[0]); ++i)
    if (lx->end - p >= 2 && p[0] == k_ops[i].text[0] &&
        p[1] == k_ops[i].text[1]) {
      tok.op = k_ops[i].op;
      n = 2;
      break;
    }
  if (!n) {
    if (!strchr("()[]{},:.;=+-*/%&|^~@<>", *p) || !*p)
      return lex_error(lx, "an unexpected character");
    tok.op = (unsigned char)*p;
    n = 1;
  }
  /* Augmented assignment: "+=", "//=", ... (not "==", "<=", ">=", "!="). */
  bool arith = tok.op != '=' && tok.op != MOAI_TS_OP_EQ &&
               tok.op != MOAI_TS_OP_NE && tok.op != MOAI_TS_OP_LE &&
               tok.op != MOAI_TS_OP_GE && tok.op != '<' && tok.op != '>' &&
               tok.op != MOAI_TS_OP_ARROW && !strchr("()[]{},:.;~", tok.op);
  if (arith && p + n < lx->end && p[n] == '=' &&
      !(p + n + 1 < lx->end && p[n + 1] == '=')) {
    tok.aug = tok.op;
    tok.op = MOAI_TS_OP_AUGASSIGN;
    ++n;
  }
  if (tok.op == '(' || tok.op == '[' || tok.op == '{') {
    if (++lx->depth > MOAI_TS_MAX_NESTING)
      return lex_error(lx, "brackets nested too deeply");
  } else if (tok.op == ')' || tok.op == ']' || tok.op == '}') {
    if (lx->depth == 0) return lex_error(lx, "an unmatched closing bracket");
    --lx->depth;
  }
  lx->s += n;
  return push(lx, tok);
}

static moai_status_t lex_all(lexer_t *lx) {
  MOAI_RETURN_IF_ERROR(lex_line_start(lx));
  while (lx->s < lx->end) {
    char c = *lx->s;
    if (c == ' ' || c == '\r' || c == '\f') {
      ++lx->s;
    } else if (c == '\\' && lx->s + 1 < lx->end && lx->s[1] == '\n') {
      lx->s += 2; /* explicit line joining */
      ++lx->line;
    } else if (c == '#') {
      while (lx->s < lx->end && *lx->s != '\n') ++lx->s;
    } else if (c == '\n') {
      ++lx->s;
      if (lx->depth == 0) {
        MOAI_RETURN_IF_ERROR(push_kind(lx, MOAI_TS_TOK_NEWLINE));
        ++lx->line;
        MOAI_RETURN_IF_ERROR(lex_line_start(lx));
      } else {
        ++lx->line;
      }
    } else if (c == '\t') {
      ++lx->s;
    } else if (is_ident_start(c)) {
      const char *p = lx->s;
      while (p < lx->end && (is_ident_start(*p) || is_digit(*p))) ++p;
      size_t n = (size_t)(p - lx->s);
      char *text = moai_ts_ast_arena_alloc(lx->arena, n + 1);
      if (!text)
        return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: %s: out of memory lexing",
                           lx->archive, lx->file);
      memcpy(text, lx->s, n);
      lx->s = p;
      MOAI_RETURN_IF_ERROR(push(
          lx, (moai_ts_token_t){.kind = MOAI_TS_TOK_NAME, .text = text, .len = n}));
    } else if (is_digit(c) ||
               (c == '.' && lx->s + 1 < lx->end && is_digit(lx->s[1]))) {
      MOAI_RETURN_IF_ERROR(lex_number(lx));
    } else if (c == '"' || c == '\'') {
      MOAI_RETURN_IF_ERROR(lex_string(lx));
    } else {
      MOAI_RETURN_IF_ERROR(lex_op(lx));
    }
  }
  if (lx->depth) return lex_error(lx, "the file ends inside brackets");
  if (lx->count && lx->toks[lx->count - 1].kind != MOAI_TS_TOK_NEWLINE &&
      lx->toks[lx->count - 1].kind != MOAI_TS_TOK_DEDENT)
    MOAI_RETURN_IF_ERROR(push_kind(lx, MOAI_TS_TOK_NEWLINE));
  while (lx->nindents > 1) {
    --lx->nindents;
    MOAI_RETURN_IF_ERROR(push_kind(lx, MOAI_TS_TOK_DEDENT));
  }
  return push_kind(lx, MOAI_TS_TOK_EOF);
}

moai_status_t moai_ts_lex(moai_ts_ast_arena_t *arena, const char *archive,
                          const char *file, const char *text, size_t len,
                          moai_ts_token_t **out_tokens, size_t *out_count) {
  lexer_t lx = {.arena = arena,
                .archive = archive ? archive : "<archive>",
                .file = file ? file : "<code>",
                .s = text,
                .end = text + len,
                .line = 1,
                .nindents = 1};
  if (len > MOAI_TS_MAX_SOURCE_BYTES)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: %s: the code file is larger than %u bytes",
                       lx.archive, lx.file, MOAI_TS_MAX_SOURCE_BYTES);
  if (memchr(text, '\0', len))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: %s: the code file contains a NUL byte (corrupt)",
                       lx.archive, lx.file);
  MOAI_RETURN_IF_ERROR(lex_all(&lx));
  *out_tokens = lx.toks;
  *out_count = lx.count;
  return moai_ok_status();
}
