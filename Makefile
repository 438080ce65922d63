# The gpt toolchain.  `make` builds every program into bin/, `make test`
# runs the whole suite, `make demo` runs the quickstart.  Sources are
# discovered by wildcard: a new libcommon/*.c joins the library, a new
# tools/gpt-*.c becomes a program, a new tests/unit/test_*.c a unit test.

VERSION  = 0.1
PREFIX  ?= /usr/local
O       ?= build
BIN     ?= bin
CC      ?= cc
NVCC    ?= nvcc
OPT     ?= -O2
WERROR  ?= -Werror
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wvla -Wformat=2
ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
endif
CFLAGS   = -std=gnu11 $(OPT) -g $(WARN) $(WERROR) -fopenmp -pthread $(SANFLAGS)
CPPFLAGS = -Ilibcommon -D_GNU_SOURCE -DGPT_VERSION='"$(VERSION)"' \
           -DGPT_SHARE_DIR='"$(PREFIX)/share/gpt"' -MMD -MP
# --as-needed: a program loads only the libraries it calls.  Every tool
# names the same list, and OpenBLAS, loaded, starts a thread per core
# that spins: gpt-tokenize paid 50 ms of CPU before its first byte.
LDFLAGS  = -fopenmp -pthread -Wl,--as-needed $(SANFLAGS)
# libcurl is opened by http.c when a transfer starts (dlopen), not linked.
LDLIBS   = -lzstd -lxxhash -larchive -lsnappy -lz -lbrotlidec -llz4 \
           -lopenblas -lm -ldl

LIB_SRC  = $(wildcard libcommon/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(O)/%.o)
LIB      = $(O)/libcommon.a
TOOL_SRC = $(wildcard tools/gpt-*.c)
TOOLS    = $(TOOL_SRC:tools/%.c=$(BIN)/%)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNITS    = $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
MAN      = $(wildcard man/man1/*.1 man/man5/*.5 man/man7/*.7)

# MPI (libcommon/dist.c), for data-parallel gpt-train under mpirun or
# srun: built when mpicc is found (Debian: libopenmpi-dev), its flags
# asked of mpicc itself.  The library is linked --as-needed, so only the
# programs that use dist.c (gpt-train) load it.  Without mpicc, gpt-train
# runs single-process and refuses a launch of several ranks; the build
# says so once.
MPICC     ?= mpicc
MPICC_PATH := $(shell command -v $(MPICC) 2>/dev/null)
ifneq ($(MPICC_PATH),)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null || $(MPICC) -show | sed 's/^[^ ]* //')
MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
$(O)/libcommon/dist.o: CPPFLAGS += -DGPT_MPI=1 $(patsubst -I%,-isystem %,$(MPI_CFLAGS))
LDLIBS    += -Wl,--push-state,--as-needed $(MPI_LIBS) -Wl,--pop-state
else
ifeq ($(MAKELEVEL),0)
$(info mpicc not found: gpt-train built without MPI (single process only))
endif
endif

# The CUDA engine (cuda/).  Built when nvcc is found (NVCC=path picks one);
# CUDA_ARCH lists the compute capabilities to compile for (machine code
# for each, plus PTX of the last so newer cards can run it).  cudart is
# linked statically and cuBLASLt is opened with dlopen at run time, so the
# same binaries start, and run on the CPU, where no CUDA is installed.
# Without nvcc the build is CPU-only and says so once.  libcommon never
# names cuda/: its engine_open finds the CUDA engine's table through the
# weak symbol engine_cuda, which --undefined makes the linker take from
# libgptcuda.a (left undefined, NULL, in a CPU-only build).
.DEFAULT_GOAL := all
CUDA_ARCH ?= 80 90
NVCC_PATH := $(shell command -v $(NVCC) 2>/dev/null)
ifneq ($(NVCC_PATH),)
CUDA_HOME  ?= $(patsubst %/bin/,%,$(dir $(realpath $(NVCC_PATH))))
CUDA_LIBDIR = $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/targets/x86_64-linux/lib) $(CUDA_HOME)/lib64)
CUDA_OBJ    = $(patsubst %.cu,$(O)/%.o,$(wildcard cuda/*.cu))
CUDA_LIB    = $(O)/libgptcuda.a
NVCCFLAGS   = -std=c++17 -O3 -lineinfo \
              $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a)) \
              -gencode arch=compute_$(lastword $(CUDA_ARCH)),code=compute_$(lastword $(CUDA_ARCH)) \
              -Xcompiler -Wall,-Wextra -Werror all-warnings \
              -Ilibcommon -Icuda -DGCUDA_LIBDIR='"$(CUDA_LIBDIR)"'
CPPFLAGS   += -DGPT_CUDA=1 -Icuda
# Only the programs that run a model take the engine (and, through it,
# cudart and OpenBLAS): gpt-tokenize, gpt-shard and the rest stay small
# and start fast.
ENGINE_PROGS = $(addprefix $(BIN)/,gpt-train gpt-eval gpt-sample gpt-classify gpt-serve) \
               $(UNITS) $(O)/tests/cuda-test $(O)/tests/bench-gpu
$(ENGINE_PROGS): LDFLAGS += -Wl,--undefined=engine_cuda
LDLIBS     := $(CUDA_LIB) $(LIB) $(CUDA_LIBDIR)/libcudart_static.a -ldl -lrt -lstdc++ $(LDLIBS)

$(TOOLS) $(UNITS): $(CUDA_LIB)

$(O)/cuda/%.o: cuda/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c -o $@ $<

$(CUDA_LIB): $(CUDA_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)/tests/cuda-test: tests/cuda/cuda_test.c $(CUDA_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(O)/tests/bench-gpu: tests/bench/bench_gpu.c $(CUDA_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Needs a GPU: every kernel and the whole model against the CPU engine.
cuda-test: all
	SHARED=$${SHARED:-$(abspath ..)/shared} BIN=$(abspath $(BIN)) $(O)/tests/cuda-test

# cudasim (tests/cudasim): the same cuda/ sources compiled as host C++ and
# run on the CPU, one fiber per CUDA thread, with a stand-in cuBLASLt, so
# that `make cuda-sim-test` runs cuda-test's checks where there is no GPU.
SIM         = $(O)/sim
SIM_OBJ     = $(patsubst %.cu,$(SIM)/%.o,$(wildcard cuda/*.cu)) $(SIM)/cudasim.o
SIMFLAGS    = -std=c++17 -O2 -g -fopenmp -Wall -Wno-unused-function -Wno-unknown-pragmas \
              -include tests/cudasim/cudasim.h -I$(CUDA_HOME)/include -Icuda -Ilibcommon \
              -DGCUDA_LIBDIR='"$(abspath $(SIM))"' $(SANFLAGS)
$(SIM)/cuda/%.cpp: cuda/%.cu tests/cudasim/prep.pl
	@mkdir -p $(@D)
	perl tests/cudasim/prep.pl $< > $@
$(SIM)/cuda/%.o: $(SIM)/cuda/%.cpp tests/cudasim/cudasim.h
	$(CXX) $(SIMFLAGS) -MMD -MP -Icuda -c -o $@ $<
-include $(SIM_OBJ:.o=.d)
$(SIM)/cudasim.o: tests/cudasim/cudasim.cpp tests/cudasim/cudasim.h
	@mkdir -p $(@D)
	$(CXX) $(SIMFLAGS) -c -o $@ $<
$(SIM)/libcublasLt.so.13: tests/cudasim/cublaslt.cpp
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O2 -fPIC -shared -Wall -I$(CUDA_HOME)/include -o $@ $< -lopenblas
# A stand-in NCCL, its sums over ranks through MPI (when built with it).
$(SIM)/libnccl.so.2: tests/cudasim/nccl.cpp
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O2 -fPIC -shared -Wall $(if $(MPI_LIBS),-DGPT_MPI=1 $(MPI_CFLAGS)) -o $@ $< $(MPI_LIBS)
SIM_LINK    = -rdynamic -Wl,--disable-new-dtags,-rpath,$(abspath $(SIM)) $(SIM_OBJ) $(LIB) \
              $(filter-out $(CUDA_LIB) $(LIB) %libcudart_static.a,$(LDLIBS))
$(SIM)/cuda-test: tests/cuda/cuda_test.c $(SIM_OBJ) $(LIB) $(SIM)/libcublasLt.so.13 $(SIM)/libnccl.so.2
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< $(SIM_LINK)
# The programs that take --device, with the emulator as their GPU.
SIM_TOOLS   = $(patsubst %,$(SIM)/bin/%,gpt-train gpt-eval gpt-sample)
$(SIM)/bin/%: $(O)/tools/%.o $(SIM_OBJ) $(LIB) $(SIM)/libcublasLt.so.13 $(SIM)/libnccl.so.2
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(SIM_LINK)

$(SIM)/selftest.cpp: tests/cudasim/selftest.cu tests/cudasim/prep.pl
	@mkdir -p $(@D)
	perl tests/cudasim/prep.pl $< > $@
$(SIM)/selftest: $(SIM)/selftest.cpp $(SIM)/cudasim.o tests/cudasim/cudasim.h
	$(CXX) $(SIMFLAGS) -o $@ $< $(SIM)/cudasim.o

$(SIM)/memplan: tests/cudasim/memplan.c $(SIM_OBJ) $(LIB) $(SIM)/libcublasLt.so.13
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(SIM_LINK)

$(SIM)/bench-gpu: tests/bench/bench_gpu.c $(SIM_OBJ) $(LIB) $(SIM)/libcublasLt.so.13
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(SIM_LINK)
$(SIM)/gpumodel: tests/cudasim/gpumodel.c tests/cudasim/count.h $(SIM_OBJ) $(LIB) $(SIM)/libcublasLt.so.13
	$(CC) $(CPPFLAGS) -Itests/cudasim $(CFLAGS) $(LDFLAGS) -o $@ $< $(SIM_LINK)

# No GPU needed: a roofline of one d12 training step from the work the
# emulator counts (tests/cudasim/gpumodel.c; a few minutes on 2 cores).
gpu-model: $(SIM)/gpumodel
	$(SIM)/gpumodel -k -o $(O)/gpu-model.tsv $(GPU_MODEL_ARGS)

# Every program, those three emulated: a BIN for tests of --device cuda.
$(SIM)/allbin/.done: $(TOOLS) $(SIM_TOOLS)
	@mkdir -p $(@D)
	cp -f $(TOOLS) $(@D)/ && cp -f $(SIM_TOOLS) $(@D)/ && touch $@

# What `all` builds besides the programs and unit tests.
CUDA_ALL    = $(O)/tests/cuda-test $(O)/tests/bench-gpu \
              $(SIM)/cuda-test $(SIM)/selftest $(SIM)/memplan $(SIM)/gpumodel \
              $(SIM)/bench-gpu $(SIM)/allbin/.done

# No GPU needed: the emulator's own checks, then all of cuda-test's on it
# (about ten minutes on 2 cores; tests/cli/cudasim.sh runs the quick part).
cuda-sim-test: $(SIM)/cuda-test $(SIM)/selftest $(SIM)/allbin/.done
	$(SIM)/selftest
	SHARED=$${SHARED:-$(abspath ..)/shared} BIN=$(abspath $(SIM)/allbin) $(SIM)/cuda-test

-include $(CUDA_OBJ:.o=.d)
else
ifeq ($(MAKELEVEL),0)
$(info nvcc not found: CPU-only build)
endif
cuda-test cuda-sim-test gpu-model:
	@echo "$@: nvcc not found: this is a CPU-only build" >&2; exit 1
endif

.PHONY: all test check asan ubsan demo install clean bench cuda-test cuda-sim-test gpu-model
.DELETE_ON_ERROR:
.SECONDARY:

all: $(TOOLS) $(UNITS) $(CUDA_ALL)

# The model's loops are written for the vectoriser: -O3, and no floating
# point traps assumed (results are unchanged; never -ffast-math or -march).
$(O)/libcommon/model.o: OPT = -O3 -fno-trapping-math
$(O)/libcommon/lstm.o: OPT = -O3 -fno-trapping-math
# AdamW's loop vectorises once sqrtf need not set errno (same results).
$(O)/libcommon/optim.o: OPT = -O3 -fno-math-errno

$(O)/libcommon/%.o: libcommon/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(O)/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(O)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: $(O)/tools/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# gpt-serve: libmicrohttpd and jansson (Debian's); its chat page is
# tools/chat.html, made a C string.  gpt-judge: jansson and libcurl's
# multi interface, linked.
$(BIN)/gpt-serve: LDLIBS += -lmicrohttpd -ljansson
$(BIN)/gpt-judge: LDLIBS += -ljansson -lcurl
$(O)/tools/gpt-serve.o: $(O)/tools/chat_page.h
$(O)/tools/gpt-serve.o: CPPFLAGS += -I$(O)/tools
$(O)/tools/chat_page.h: tools/chat.html
	@mkdir -p $(@D)
	{ echo 'static const char chat_page[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; } >$@

$(O)/tests/%: $(O)/tests/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The suite: C unit tests and shell CLI tests; T=word runs the ones whose
# name contains word.  Closes with "N passed, N failed".
test:
	@sh tests/install-deps.sh test
	@$(MAKE) --no-print-directory all
	@BIN=$(abspath $(BIN)) O=$(abspath $(O)) sh tests/run.sh $(T)

asan:
	$(MAKE) O=build/asan BIN=build/asan/bin SAN=1 OPT=-O1 test

# Quick checks while working: build and run the matching tests only.
check: all
	@BIN=$(abspath $(BIN)) O=$(abspath $(O)) sh tests/run.sh $(T)

ubsan: asan

demo:
	@sh tests/install-deps.sh build
	@$(MAKE) --no-print-directory all
	sh pipelines/quickstart.sh

bench: all
	@for b in tests/bench/bench-*.sh; do BENCH_GPU_OPTIONAL=1 sh $$b || exit 1; done

bench-%: all
	sh tests/bench/bench-$*.sh

install: $(TOOLS)
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	         $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	cp $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	for f in $(MAN); do \
	  s=$${f#man/}; cp $$f $(DESTDIR)$(PREFIX)/share/man/$$s; done
	# The GPT-2 vocabulary, when a copy is at hand, so the tools work offline.
	v=$${GPT_VOCAB:-../shared/data/gpt2}; \
	if [ -f "$$v/encoder.json" ] && [ -f "$$v/vocab.bpe" ]; then \
	  mkdir -p $(DESTDIR)$(PREFIX)/share/gpt/gpt2 && \
	  cp "$$v/encoder.json" "$$v/vocab.bpe" $(DESTDIR)$(PREFIX)/share/gpt/gpt2/; fi

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(TOOL_SRC:tools/%.c=$(O)/tools/%.d) $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%.d)
