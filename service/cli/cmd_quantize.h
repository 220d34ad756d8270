/*
 * cmd_quantize.h - `gemma-run quantize --model DIR --out DIR [--scheme S]`:
 * write an FP8 (compressed-tensors) copy of a local bf16/f16/f32 model
 * directory (loader/quantize_fp8.h). argv[0] is "quantize"; returns the
 * exit status (0 ok, 1 failure, 2 usage error). Only main() calls it.
 */
#ifndef GR_CMD_QUANTIZE_H
#define GR_CMD_QUANTIZE_H

int cmd_quantize(int argc, char **argv);

#endif
