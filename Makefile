# gemma-run build. `make` builds build/gemma-run (CPU backend always, CUDA when
# nvcc is found; CUDA=0 forces CPU-only). See README.md and docs/.
#
# Sources are found by wildcard, so a new module file or test needs no edit here:
#   common/ kernels/ tokenizer/ loader/ engine/ service/ (and subfolders) -> build/libgemma.a
#   kernels/cuda/*.cu                               -> nvcc, when CUDA is on
#   service/cli/main.c                              -> build/gemma-run
#
# Layers (docs/ARCHITECTURE.md): each folder is compiled with only the include
# roots it may use, so an upward #include fails to compile:
#   common <- kernels, tokenizer <- loader (kernels), engine (kernels, tokenizer)
#   <- service (engine; not loader) <- service/cli (everything)
# $(BUILD)/inc/LAYER/ holds one symlink per folder that LAYER may include.
# libevent's flags go to service/ only, libcurl's and OpenSSL's to loader/ and
# service/auth/ (tests/layout.test.sh checks the #include lines themselves, since
# Debian puts every library's headers in /usr/include where no flag can hide them).
#   tests/**/test_*.c                               -> one binary each, run by tests/run.sh
#   tests/fuzz/fuzz_*.c                             -> libFuzzer targets (make fuzz)
#   bench/*.c                                       -> build/bench/* (bench/loadgen.c -> build/loadgen)

BUILD   ?= build
CUDA    ?= auto
SAN     ?= 0
CC      ?= cc
NVCC    ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
ifeq ($(CUDA),0)
NVCC :=
endif
# CUDA is built when nvcc is found and there is CUDA code to build.
HAVE_CUDA := $(if $(and $(NVCC),$(wildcard kernels/cuda/*.cu)),1,0)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))

PKGS    := libevent libevent_pthreads libcjson libcurl openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS_EVENT := $(shell pkg-config --cflags libevent libevent_pthreads 2>/dev/null)
CFLAGS_NET   := $(shell pkg-config --cflags libcurl openssl 2>/dev/null)
CFLAGS_CJSON := $(shell pkg-config --cflags libcjson 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT     ?= -O2
CFLAGS  := -std=c11 $(OPT) -g -Wall -Wextra -Wshadow -Werror -MMD -MP -D_GNU_SOURCE \
           $(CFLAGS_CJSON) -pthread -fno-strict-aliasing
# The CPU kernels are the hot loops: vectorise them for AVX2/FMA machines
# (every Cloud Run GPU host has them).
KCFLAGS := -O3 -mavx2 -mfma -mf16c
LDLIBS  := $(PKG_LIBS) -lm -pthread

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(HAVE_CUDA),1)
CFLAGS  += -DGR_HAVE_CUDA=1 -I$(CUDA_HOME)/include
LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
# SASS for every Cloud Run GPU: sm_89 (L4), sm_90 (H100-class), sm_120 (RTX PRO 6000
# Blackwell); PTX for the newest of them. Only the ones this nvcc can build (it lists
# them with --list-gpu-code; CUDA >= 12.8 has sm_120): an older local nvcc still builds,
# and the image build checks with cuobjdump that all three are in (Dockerfile).
GR_SM   ?= 89 90 120
NV_CODES := $(shell $(NVCC) --list-gpu-code 2>/dev/null)
NV_SM   := $(if $(NV_CODES),$(foreach s,$(GR_SM),$(if $(filter sm_$(s),$(NV_CODES)),$(s))),$(GR_SM))
NV_PTX  := $(lastword $(NV_SM))
NVFLAGS := -std=c++17 -O3 -I$(BUILD)/inc/kernels -Xcompiler -fPIC,-Wall,-Werror \
           $(foreach s,$(NV_SM),-gencode arch=compute_$(s),code=sm_$(s)) \
           -gencode arch=compute_$(NV_PTX),code=compute_$(NV_PTX)
endif

LAYERS  := common kernels tokenizer loader engine service
LIB_SRC := $(sort $(shell find $(LAYERS) -name '*.c'))
LIB_SRC := $(filter-out service/cli/main.c,$(LIB_SRC))
CU_SRC  := $(if $(filter 1,$(HAVE_CUDA)),$(wildcard kernels/cuda/*.cu))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
LIB     := $(BUILD)/libgemma.a

TEST_SRC := $(wildcard tests/*/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(filter-out bench/loadgen.c,$(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
TOOLS   := $(if $(wildcard tools/mkmodel.c),$(BUILD)/mkmodel) $(if $(wildcard bench/loadgen.c),$(BUILD)/loadgen)

.PHONY: test-image all deps run test test-gpu asan fuzz bench clean tests
.SECONDARY:
all: $(BUILD)/gemma-run $(TOOLS)

# What each layer may include (the folders under $(BUILD)/inc/LAYER/).
INC_common    := common
INC_kernels   := common kernels
INC_tokenizer := common tokenizer
INC_loader    := common kernels loader
INC_engine    := common kernels tokenizer engine
INC_service   := common kernels tokenizer engine service
INC_STAMP := $(BUILD)/inc/.stamp
$(INC_STAMP): Makefile
	@rm -rf $(BUILD)/inc
	@$(foreach l,$(LAYERS),mkdir -p $(BUILD)/inc/$(l) && \
	  $(foreach d,$(INC_$(l)),ln -s $(CURDIR)/$(d) $(BUILD)/inc/$(l)/$(d) &&) true;)
	@touch $@
# Include flags of one source file: its layer's root (service/cli/, tests,
# tools and benchmarks see the whole tree), plus the libraries it may use.
top_of    = $(firstword $(subst /, ,$(1)))
layer_of  = $(if $(filter service/cli/%,$(1)),,$(filter $(LAYERS),$(call top_of,$(1))))
inc_flags = $(if $(call layer_of,$(1)),-I$(BUILD)/inc/$(call layer_of,$(1)),-I.) \
            $(if $(filter service/% tests/% bench/% tools/%,$(1)),$(CFLAGS_EVENT)) \
            $(if $(filter loader/% service/auth/% tests/% bench/% tools/%,$(1)),$(CFLAGS_NET))

$(BUILD)/obj/kernels/cpu/%.o: kernels/cpu/%.c | $(INC_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(call inc_flags,$<) $(KCFLAGS) -c $< -o $@
$(BUILD)/obj/%.o: %.c | $(INC_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(call inc_flags,$<) -c $< -o $@
$(BUILD)/obj/%.o: %.cu Makefile | $(INC_STAMP)
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -MD -MP -MF $(@:.o=.d) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/gemma-run: $(BUILD)/obj/service/cli/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/mkmodel: $(BUILD)/obj/tools/mkmodel.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/loadgen: $(BUILD)/obj/bench/loadgen.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests: all $(TEST_BIN)

deps:
	@tools/deps.sh

# Serves the demo model (tools/mkmodel --preset tiny) on the CPU backend.
run: deps
	@$(MAKE) --no-print-directory all
	@tools/demo-model.sh $(BUILD)/demo-model
	$(BUILD)/gemma-run serve --model $(BUILD)/demo-model --backend cpu --port $${PORT:-8080}

test: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) HAVE_CUDA=$(HAVE_CUDA) tests/run.sh

# The whole suite with the CUDA tests required and the service tests on
# --backend cuda (tests/service/lib.sh: GR_TEST_BACKEND); needs a GPU.
test-gpu: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) HAVE_CUDA=$(HAVE_CUDA) GR_TEST_GPU=1 GR_TEST_BACKEND=cuda tests/run.sh

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (CPU build).
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CUDA=0 OPT=-O1 tests
	@BUILD=build-asan HAVE_CUDA=0 GR_SAN=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TIME ?= 20
# Each libFuzzer target for FUZZ_TIME seconds (clang, ASan + UBSan).
fuzz: deps
	@tools/run-fuzz.sh $(FUZZ_TIME) $(FUZZ_SRC)

# Replays the Dockerfile's build-stage package steps in a debootstrapped chroot of its
# distribution and builds the C part there with CUDA=0 (chroot cached under
# $(BUILD)/image-chroot; needs root and debootstrap). See docs/DEPLOY.md.
test-image:
	@BUILD=$(BUILD) tests/infra/image_rehearsal.sh

bench: deps all $(BENCH_BIN)
	@BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
