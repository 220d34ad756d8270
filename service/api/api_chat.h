/*
 * api_chat.h - an OpenAI "messages" list -> the Gemma chat prompt as text.
 *
 * The one place the chat prompt is rendered: api_parse (chat requests) and
 * /tokenize with messages (http_server.c) both call api_chat_render, which
 * checks the messages' JSON shape and hands them to chat_render
 * (tokenizer/chat_template.h). The text starts with "<bos>": encode it
 * without adding another BOS.
 */
#ifndef GR_SERVICE_API_CHAT_H
#define GR_SERVICE_API_CHAT_H

#include <cjson/cJSON.h>

#include "service/api/api.h"

#define API_MAX_MESSAGES 256

/* Renders messages into *text (malloc'd). 0, or ST_EINVAL (400, param
 * "messages") / ST_ENOMEM (500) with *e filled. */
int api_chat_render(const cJSON *messages, int add_generation_prompt, char **text, struct api_err *e);

#endif
