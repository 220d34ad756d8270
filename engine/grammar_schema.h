/*
 * grammar_schema.h - what a request constrains its output with, compiled
 * into a grammar: a JSON Schema, any JSON object (json_object), a regular
 * expression, or one of a list of strings (choice). Shared compiled
 * grammars: engine/grammar_cache.h.
 *
 * JSON Schema support (docs/API.md lists it): type (all seven, or a list),
 * properties / required / additionalProperties (absent counts as false,
 * as OpenAI's strict mode and xgrammar do), enum, const, items,
 * prefixItems, minItems / maxItems, anyOf / oneOf (both as anyOf),
 * allOf of object schemas, $ref to #, #/$defs/.., #/definitions/..
 * (recursive), minLength / maxLength, pattern, format (date, time,
 * date-time, uuid, email), integer minimum / maximum /
 * exclusiveMinimum / exclusiveMaximum, number minimum >= 0. Anything else
 * that constrains a value is refused naming the keyword; annotations
 * (title, description, default, examples, $schema, $id, $comment) are
 * ignored. Properties come out in the order the schema lists them.
 */
#ifndef GR_GRAMMAR_SCHEMA_H
#define GR_GRAMMAR_SCHEMA_H

#include <stddef.h>

#include "engine/grammar.h"

enum grs_kind { GRS_JSON_SCHEMA = 1, GRS_JSON_OBJECT = 2, GRS_REGEX = 3, GRS_CHOICE = 4 };

/*
 * Compiles text (a schema's JSON; a regex; a JSON array of strings for
 * choice; ignored for json_object) into *out (caller frees with
 * gr_grammar_destroy). ST_EINVAL: unsupported or malformed, err says
 * which keyword (e.g. "unsupported keyword 'not'").
 */
int grs_compile(enum grs_kind kind, const char *text, size_t n, struct gr_grammar **out,
		char *err, size_t errlen);

#endif
