/*
 * grammar.h - byte-level context-free grammars for structured outputs: a
 * builder (rules of alternatives of sequences of byte classes and rule
 * references), the compiled immutable grammar, and a pushdown matcher
 * advanced byte by byte.
 *
 * Not here: what a grammar says (engine/grammar_regex.c compiles regular
 * expressions, engine/grammar_schema.c JSON Schema) nor the token mask
 * (engine/grammar_mask.c).
 *
 * The matcher holds a set of heads; a head is a position (the index of a
 * byte class in the flat element array) and a return stack (a persistent
 * linked list of positions in an arena, shared by heads). Advancing by a
 * byte keeps the heads whose class holds it, moves them past it and
 * expands rule references and rule ends (closure) until every head waits
 * on a byte class again; a head that returns from the root rule marks the
 * state accepting. Grammars must not be left-recursive (the compilers
 * here only make right recursion); the closure's depth and the head count
 * are bounded (GR_MAX_DEPTH, GR_MAX_HEADS), a rule expansion is made once
 * per (position, stack) in a step, and a step's work is capped
 * (GR_STEP_BUDGET), so no grammar can hang it.
 * States live in the matcher's arena; gr_mark / gr_rewind discard those
 * made after a mark (the mask's trie walk), gr_commit compacts the arena
 * to the current state (once per token).
 */
#ifndef GR_GRAMMAR_H
#define GR_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#define GR_MAX_ELEMS (1 << 22)	/* elements of one grammar */
#define GR_MAX_HEADS 512
#define GR_MAX_DEPTH 2048	/* return-stack depth (JSON nesting) */
#define GR_VIS_N 1024		/* expansion keys remembered per step */
#define GR_STEP_BUDGET 50000	/* closure calls per step (heads past it are dropped) */

enum gr_etype { GR_E_CHAR = 1, GR_E_REF = 2, GR_E_ALT = 3, GR_E_END = 4 };

struct gr_elem {
	int32_t type;	/* enum gr_etype */
	int32_t v;	/* class index (CHAR) or rule id (REF) */
};

/* A byte class: 256 bits. */
struct gr_class {
	uint32_t b[8];
};

static inline int gr_class_has(const struct gr_class *c, unsigned char x)
{
	return (c->b[x >> 5] >> (x & 31)) & 1;
}

static inline void gr_class_set(struct gr_class *c, unsigned lo, unsigned hi)
{
	for (unsigned x = lo; x <= hi && x < 256; x++)
		c->b[x >> 5] |= 1u << (x & 31);
}

/* ---- builder ---- */

struct gr_builder;

/* A builder (caller frees with gb_destroy, or gb_finish takes it). */
int gb_create(struct gr_builder **out);
void gb_destroy(struct gr_builder *b);
/* A new empty rule (no alternatives yet: it matches nothing until gb_alt/elements). */
int gb_rule(struct gr_builder *b);
/* Appends to rule r's current alternative: a byte class, a literal, a reference. */
int gb_class(struct gr_builder *b, int r, const struct gr_class *c);
int gb_byte(struct gr_builder *b, int r, unsigned char x);
int gb_lit(struct gr_builder *b, int r, const char *s, size_t n);
int gb_ref(struct gr_builder *b, int r, int target);
/* Closes rule r's current alternative and opens the next. */
int gb_alt(struct gr_builder *b, int r);
/* A new rule matching x repeated [min, max] times (max < 0: unbounded). */
int gb_repeat(struct gr_builder *b, int x, int min, int max);
/* A new rule matching x (sep x){[min-1, max-1]} ... i.e. min..max x's separated by sep. */
int gb_sep_list(struct gr_builder *b, int x, int sep, int min, int max);
/* Whether the builder ran out of room (every call after that fails). */
int gb_failed(const struct gr_builder *b);

struct gr_grammar;

/* Compiles rule root of b into a grammar; destroys b in every case. */
int gb_finish(struct gr_builder *b, int root, struct gr_grammar **out);
void gr_grammar_destroy(struct gr_grammar *g);

/* ---- matcher ---- */

struct gr_head {
	int32_t pos;	/* element index of a CHAR */
	int32_t stk;	/* stack node, -1: empty */
};

/* A state: heads[off, off + n) of the matcher's arena, and whether complete. */
struct gr_st {
	int32_t off, n;
	int32_t accept;
};

struct gr_match {
	const struct gr_grammar *g;	/* borrowed */
	struct gr_head *heads;
	int32_t n_heads, cap_heads;
	int32_t *nodes;		/* pairs (pos, next) */
	int32_t n_nodes, cap_nodes;
	struct gr_st cur;	/* the state after every committed byte */
	int failed;		/* out of memory */
	/* per step: rule expansions already made ((pos, stack) keys stamped
	 * with gen; a nullable loop would otherwise re-expand without end) and
	 * the expansions left (GR_STEP_BUDGET) */
	uint64_t *vis_key;	/* [GR_VIS_N] */
	uint32_t *vis_gen;	/* [GR_VIS_N] */
	uint32_t gen;
	int32_t budget;
};

struct gr_mark {
	int32_t n_heads, n_nodes;
};

/* The start state of g (init: caller releases with gr_match_release). */
int gr_match_init(struct gr_match *m, const struct gr_grammar *g);
void gr_match_release(struct gr_match *m);

/*
 * The state after byte x from s, into *out: returns 1 when it is alive
 * (some head or accepting), 0 when x is rejected, ST_ENOMEM.
 */
int gr_step(struct gr_match *m, const struct gr_st *s, unsigned char x, struct gr_st *out);

/* Advances the current state by n bytes: 0, or ST_EINVAL (rejected: unchanged). */
int gr_advance(struct gr_match *m, const void *bytes, size_t n);

/* Current state: complete (the input so far is a sentence), can it continue. */
static inline int gr_accepting(const struct gr_match *m) { return m->cur.accept; }
static inline int gr_can_continue(const struct gr_match *m) { return m->cur.n > 0; }

static inline struct gr_mark gr_mark(const struct gr_match *m)
{
	struct gr_mark k = { m->n_heads, m->n_nodes };
	return k;
}

static inline void gr_rewind(struct gr_match *m, struct gr_mark k)
{
	m->n_heads = k.n_heads;
	m->n_nodes = k.n_nodes;
}

/* The byte class head h waits on. */
const struct gr_class *gr_head_class(const struct gr_match *m, const struct gr_head *h);

/*
 * The current state serialised (accept flag, then per head its position
 * and its stack's positions, -1 closing each) into out[0, cap): returns
 * the length it needs (call with cap 0 to size it). Equal keys: equal states.
 */
int gr_state_key(const struct gr_match *m, int32_t *out, int cap);
/* The same for state s of m. */
int gr_state_key_of(const struct gr_match *m, const struct gr_st *s, int32_t *out, int cap);

/* Copies state s of src into dst's arena as *out (same grammar): 0 or ST_ENOMEM. */
int gr_state_copy(struct gr_match *dst, const struct gr_match *src, const struct gr_st *s,
		  struct gr_st *out);

/* Whether states a and b of m hold the same heads (as sets) and completion. */
int gr_state_equal(const struct gr_match *m, const struct gr_st *a, const struct gr_st *b);

/* Whether the whole text is a sentence of g (a fresh matcher; for tests and the CLI). */
int gr_accepts(const struct gr_grammar *g, const void *text, size_t n);

/* The grammar's size (elements), for logs and tests. */
int gr_grammar_size(const struct gr_grammar *g);

#endif
