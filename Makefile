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
LDFLAGS  = -fopenmp -pthread $(SANFLAGS)
LDLIBS   = -lzstd -lxxhash -lcurl -larchive -lsnappy -lz -lbrotlidec -llz4 \
           -lopenblas -lm

LIB_SRC  = $(wildcard libcommon/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(O)/%.o)
LIB      = $(O)/libcommon.a
TOOL_SRC = $(wildcard tools/gpt-*.c)
TOOLS    = $(TOOL_SRC:tools/%.c=$(BIN)/%)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNITS    = $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
MAN      = $(wildcard man/man1/*.1 man/man5/*.5 man/man7/*.7)

.PHONY: all test check asan ubsan demo install clean bench lint-man
.DELETE_ON_ERROR:
.SECONDARY:

all: $(TOOLS) $(UNITS)

# The model's loops are written for the vectoriser: -O3, and no floating
# point traps assumed (results are unchanged; never -ffast-math or -march).
$(O)/libcommon/model.o: OPT = -O3 -fno-trapping-math

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
	@for b in tests/bench/bench-*.sh; do sh $$b || exit 1; done

bench-%: all
	sh tests/bench/bench-$*.sh

install: $(TOOLS)
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	         $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	cp $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	for f in $(MAN); do \
	  s=$${f#man/}; cp $$f $(DESTDIR)$(PREFIX)/share/man/$$s; done

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(TOOL_SRC:tools/%.c=$(O)/tools/%.d) $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%.d)
