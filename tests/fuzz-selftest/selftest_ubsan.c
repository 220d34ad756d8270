/*
 * selftest_ubsan.c - a libFuzzer target planted with undefined behaviour
 * (a zero offset applied to a null pointer, as tok_load.c once did) on
 * every input. Built only by tests/fuzz/run_fuzz.test.sh, never by
 * `make fuzz`: tools/run-fuzz.sh must report it as a failure.
 */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *volatile base = NULL;
	const uint8_t *end = base + (size - size);	/* NULL + 0: undefined */
	(void)data;
	return end == NULL ? 0 : 1;
}
