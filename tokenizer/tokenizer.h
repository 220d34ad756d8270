/*
 * tokenizer.h - the Gemma tokenizer: a Hugging Face `tokenizer.json` BPE
 * model (SentencePiece-style, byte fallback) read from its bytes.
 *
 * Encoding does what Hugging Face `tokenizers` does for this file:
 *   1. added tokens (special and not: `<bos>`, `<start_of_turn>`, runs of
 *      `\n`, runs of U+2581, HTML tags ...) are matched in the raw text,
 *      leftmost-longest, before normalisation;
 *   2. each stretch between them is normalised (the file's string Replace:
 *      " " -> U+2581 for Gemma) and BPE-merged as one word (no
 *      pre-tokenizer; a Split on " " is accepted as the no-op it is):
 *      lowest merge rank first, leftmost on ties, with a priority queue
 *      (O(n log n) in the stretch length);
 *   3. characters with no vocabulary entry become `<0xXX>` byte tokens
 *      (byte fallback), else `<unk>` (fused).
 * No BOS is added: prepend 2 yourself, or encode text that starts with
 * "<bos>" (as the chat template does).
 *
 * Decoding: U+2581 -> space, consecutive byte tokens fused into UTF-8 (a run
 * that is not valid UTF-8 becomes one U+FFFD per byte token, as HF does),
 * special tokens kept unless skip_special.
 *
 * What a tokenizer.json may ask for beyond that (other normalizers or
 * pre-tokenizers, BPE dropout, added tokens with lstrip/rstrip/normalized,
 * ...) makes tok_create fail with a message naming it, rather than encode
 * differently from Hugging Face.
 *
 * A struct tokenizer is immutable after tok_create: every function here may
 * be called from any number of threads at once.
 */
#ifndef GR_TOKENIZER_H
#define GR_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

struct tokenizer;

/*
 * Builds a tokenizer from the bytes of a tokenizer.json (borrowed; need not
 * be NUL-terminated). *out: caller frees with tok_destroy. ST_EFORMAT when
 * the file is malformed or asks for something this implementation lacks
 * (the message says which).
 */
int tok_create(const char *json, size_t len, struct tokenizer **out);
/* Reads the file at path, then tok_create. */
int tok_create_from_file(const char *path, struct tokenizer **out);
void tok_destroy(struct tokenizer *t);

/*
 * Encodes len bytes of UTF-8 text (NUL bytes allowed). *ids: a new array
 * (caller frees with free(); never NULL on success, even when *n_ids is 0).
 * ST_EINVAL if text is not valid UTF-8, ST_ENOMEM.
 */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, int **ids, int *n_ids);

/*
 * Decodes n ids into a new NUL-terminated string (*text, caller frees with
 * free(); *len without the NUL). skip_special drops the special tokens
 * (`<bos>`, `<eos>`, `<pad>`, `<unk>`, `<start_of_turn>`, `<end_of_turn>`).
 * ST_EINVAL if an id is outside [0, tok_vocab_size).
 */
int tok_decode(const struct tokenizer *t, const int *ids, int n, int skip_special,
	       char **text, size_t *len);

int tok_vocab_size(const struct tokenizer *t);
/* The vocabulary piece of id (borrowed, NUL-terminated), or NULL if out of range. */
const char *tok_piece(const struct tokenizer *t, int id);
/* The id of a piece, or -1. tok_id(t, "<end_of_turn>") == 107 for Gemma. */
int tok_id(const struct tokenizer *t, const char *piece);
/* Whether id is a special added token (what skip_special drops). */
int tok_is_special(const struct tokenizer *t, int id);
/* Ids of "<bos>", "<eos>", "<pad>", "<unk>" (-1 when the vocabulary lacks one). */
int tok_bos_id(const struct tokenizer *t);
int tok_eos_id(const struct tokenizer *t);
int tok_pad_id(const struct tokenizer *t);
int tok_unk_id(const struct tokenizer *t);

/*
 * Incremental decoding, one id at a time, in caller-owned storage (no
 * allocation). Each call returns only complete UTF-8; the concatenation of
 * every feed's output and the final flush equals tok_decode of the whole
 * sequence. A run of byte tokens is held back until it ends (the next
 * non-byte token, or flush), because HF turns a whole run into U+FFFDs when
 * any byte of it is invalid; once a run is known to be invalid its U+FFFDs
 * are emitted at once. A valid run longer than TOK_STREAM_HOLD bytes is
 * emitted early (whole characters only); only if such a run later turns
 * invalid does the output differ from tok_decode.
 */
#define TOK_STREAM_HOLD 512
#define TOK_PIECE_MAX 1024	/* tok_create refuses longer pieces */
#define TOK_STREAM_OUT (3 * (TOK_STREAM_HOLD + 1) + TOK_PIECE_MAX + 16)

struct tok_stream {
	const struct tokenizer *tok;	/* borrowed */
	int skip_special;
	int run_bad;			/* current byte run is invalid: U+FFFD per byte token */
	int need;			/* continuation bytes the held run still expects */
	unsigned char lo, hi;		/* allowed range of the next continuation byte */
	size_t n_hold;			/* bytes (= byte tokens) held from the current run */
	unsigned char hold[TOK_STREAM_HOLD];
	char out[TOK_STREAM_OUT];
};

void tok_stream_init(struct tok_stream *s, const struct tokenizer *t, int skip_special);
/*
 * Feeds one id. *text points into s (valid until the next call) and holds
 * *len bytes of complete UTF-8 (often 0). ST_EINVAL for an id out of range
 * (the stream is unchanged).
 */
int tok_stream_feed(struct tok_stream *s, int id, const char **text, size_t *len);
/* Ends the sequence: emits what was held. s is reset for a new sequence. */
void tok_stream_flush(struct tok_stream *s, const char **text, size_t *len);

#endif
