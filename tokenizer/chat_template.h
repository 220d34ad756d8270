/*
 * chat_template.h - the Gemma chat template, as text for tok_encode.
 *
 * Follows the chat_template of Gemma 2's tokenizer_config.json:
 *   <bos><start_of_turn>user\n{content|trim}<end_of_turn>\n
 *   <start_of_turn>model\n{content|trim}<end_of_turn>\n ...
 *   <start_of_turn>model\n                  (generation prompt, if asked)
 * Roles alternate user/model starting with user; "assistant" is written as
 * "model". Gemma 2's own template refuses a system message; like Gemma 3's
 * template (and vLLM users expect) a first "system" message is accepted
 * instead and its content, followed by "\n\n", is put in front of the first
 * user turn's content. `trim` is Jinja's (Python str.strip(): Unicode
 * whitespace at both ends).
 *
 * The result starts with the literal "<bos>": encode it with tok_encode
 * (which parses "<bos>" as token 2) and add no second BOS. A reply ends at
 * <end_of_turn> (107) or <eos> (1).
 */
#ifndef GR_CHAT_TEMPLATE_H
#define GR_CHAT_TEMPLATE_H

#include <stddef.h>

struct chat_msg {
	const char *role;	/* "system" (first only), "user", "assistant" or "model"; borrowed */
	const char *content;	/* UTF-8, NUL-terminated; borrowed */
};

/*
 * Renders n messages into a new NUL-terminated string (*out, caller frees
 * with free(); *len without the NUL). add_generation_prompt appends
 * "<start_of_turn>model\n". ST_EINVAL when the messages break the template's
 * rules; then err (errlen bytes, may be NULL) says why and names the
 * offending message index ("messages[2]: ..."). ST_ENOMEM.
 */
int chat_render(const struct chat_msg *msgs, int n, int add_generation_prompt,
		char **out, size_t *len, char *err, size_t errlen);

#endif
