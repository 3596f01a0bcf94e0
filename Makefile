# kbpipe - batch loader for a PostgreSQL + pgvector knowledge base.
#
#   make demo     install what is missing, build, start the local database,
#                 migrate, seed and run the sample pipelines
#   make check    install what is missing, build, start the local database,
#                 run every test (SAN=1: under ASan + UBSan; T=NAME: only
#                 the tests whose name contains NAME)
#   make bench    benchmarks (figures printed, never asserted)
#   make fuzz     the fuzz harnesses of tests/fuzz, longer: libFuzzer when
#                 clang is installed (FUZZ_SECONDS each), else the gcc
#                 driver under ASan + UBSan (FUZZ_RUNS mutated inputs each)
#
# Sources are found by wildcard: a new src/<module>/*.c or tests/unit/test_*.c
# needs no Makefile change.

PREFIX  ?= /usr/local
CC      ?= cc
PKGS    := libpq yaml-0.1 libsodium openblas jansson libcurl libxml-2.0 poppler-glib
SAN     ?= 0

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g \
               -DKB_VERSION='"0.1.0"' -DKB_DATADIR='"$(PREFIX)/share/kbpipe"' -Isrc
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1
  LDFLAGS_SAN := -fsanitize=address,undefined
  BUILD := build/san
else
  BUILD := build/rel
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# poppler-glib, OpenBLAS, libxml2 and libcurl are not linked: src/ingest/pdf.c,
# src/embed/blas.c, src/ingest/html.c and src/util/curl_lib.c dlopen them at
# their first use, so a process that reads no PDF, compares no vectors
# (dedup), reads no HTML and makes no HTTP request never loads them (27, 7,
# ~5 and ~3 ms of CPU at every start otherwise; docs/loading.md, "What kbpipe
# controls", (4)); their headers still give the types
DLOPENED   := poppler-glib openblas libxml-2.0 libcurl
PKG_LIBS   = $(shell pkg-config --libs $(filter-out $(DLOPENED),$(PKGS)) 2>/dev/null) -lcsv -lm -lpthread

LIB_SRC   := $(sort $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c)))
HDRS      := $(wildcard src/*.h src/*/*.h)
REL_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ  := $(LIB_SRC:%.c=$(BUILD)/tobj/%.o)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_SRC := $(sort $(wildcard tests/integration/test_*.c))
ITEST_BIN := $(ITEST_SRC:tests/integration/%.c=$(BUILD)/tests/%)
TSUP_SRC  := $(sort $(wildcard tests/support/*.c))
TSUP_OBJ  := $(TSUP_SRC:%.c=$(BUILD)/tobj/%.o)
comma     := ,
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)

# make fuzz: libFuzzer when clang is there (never installed by deps), else
# the gcc driver; FUZZ_ENGINE=driver forces the driver
FUZZ_ENGINE  ?= $(if $(shell command -v clang 2>/dev/null),libfuzzer,driver)
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= 100000
LF           := build/fuzz-lf
LF_CFLAGS    := $(filter-out -O2 -fsanitize=address$(comma)undefined,$(CFLAGS_BASE)) -O1 \
                -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined
LF_OBJ       := $(LIB_SRC:%.c=$(LF)/obj/%.o)
LF_BIN       := $(FUZZ_NAMES:%=$(LF)/bin/%)

# The database the demo and tests use: the project-local cluster (scripts/db.sh)
PGDIR := $(shell scripts/db.sh dir)
export PGHOST := $(PGDIR)
export PGUSER := $(shell scripts/db.sh user)
export PGDATABASE ?= supervisor_service
export KBPIPE_TEST_DSN ?= host=$(PGDIR) user=$(PGUSER) dbname=kbpipe_test
export KBPIPE_BIN = $(CURDIR)/$(BUILD)/kbpipe-test
export KBPIPE_ROOT = $(CURDIR)

# keep test objects between runs (they are intermediate files to make)
.SECONDARY:

.PHONY: all deps deps-test db db-stop build check unit integration sqltest demo seed migrate bench \
        install clean fuzz torture

all: bin/kbpipe

# bin/kbpipe is always the release build, also under SAN=1 (the sanitizer
# build is $(BUILD)/kbpipe-test, which the tests run): a `make check SAN=1`
# must not leave an ASan binary behind for `make demo` or `make install`.
# Copy, then rename: a kbpipe still running from bin/ keeps its old file.
ifeq ($(SAN),1)
bin/kbpipe: FORCE
	@$(MAKE) --no-print-directory SAN=0 bin/kbpipe
FORCE:
else
bin/kbpipe: $(BUILD)/kbpipe
	@mkdir -p bin
	cp $< $@.tmp && mv -f $@.tmp $@
endif

$(BUILD)/kbpipe: $(BUILD)/obj/src/main.o $(REL_OBJ)
	@echo "  LD      $@"
	@$(CC) -o $@ $^ $(LDFLAGS_SAN) $(PKG_LIBS)

# the same program built with fault points, for integration tests
$(BUILD)/kbpipe-test: $(BUILD)/tobj/src/main.o $(TEST_OBJ)
	@echo "  LD      $@"
	@$(CC) -o $@ $^ $(LDFLAGS_SAN) $(PKG_LIBS)

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tobj/%.o: %.c $(HDRS) $(wildcard tests/support/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC(t)   $<"
	@$(CC) $(CFLAGS_BASE) -DKB_UNIT_TEST -DKB_FAULTS -Itests/support $(PKG_CFLAGS) $(shell pkg-config --cflags cmocka) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tobj/tests/unit/%.o $(TEST_OBJ) $(TSUP_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) -o $@ $^ $(LDFLAGS_SAN) $(PKG_LIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/%: $(BUILD)/tobj/tests/integration/%.o $(TEST_OBJ) $(TSUP_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) -o $@ $^ $(LDFLAGS_SAN) $(PKG_LIBS) $(shell pkg-config --libs cmocka)

# a fuzz harness with the replay-and-mutate driver (tests/fuzz/driver.c)
$(FUZZ_SRC:%.c=$(BUILD)/obj/%.o): $(wildcard tests/fuzz/*.h)
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/driver.o $(REL_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) -o $@ $^ $(LDFLAGS_SAN) $(PKG_LIBS)

# the same harness linked with libFuzzer (make fuzz, clang only)
$(LF)/obj/%.o: %.c $(HDRS) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC(lf)  $<"
	@clang $(LF_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(LF)/bin/%: $(LF)/obj/tests/fuzz/%.o $(LF_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS)

build: bin/kbpipe $(BUILD)/kbpipe-test $(UNIT_BIN) $(ITEST_BIN) $(FUZZ_BIN)

deps:
	@bash scripts/deps.sh

# what the tests need besides: node, npm and the reference tokenizer
deps-test:
	@bash scripts/deps.sh --test

db: deps
	@bash scripts/db.sh start

db-stop:
	@bash scripts/db.sh stop

# deps first, so a fresh machine has the compiler's libraries before building
check: deps-test
	@$(MAKE) --no-print-directory build
	@bash scripts/db.sh start
	@bash tests/run.sh "$(BUILD)" "$(T)"

# kill -9 and server stops at random instants of every phase of a run, each
# followed by a re-run that must end as one clean run (docs/testing.md);
# TORTURE_TRIALS=1000 for the long form, TORTURE_SEED to replay,
# TORTURE_SCALE=1 for the whole corpus (3: a third, as measured in docs/testing.md)
TORTURE_TRIALS ?= 100
TORTURE_SCALE ?= 3
torture: deps
	@$(MAKE) --no-print-directory $(BUILD)/kbpipe-test
	@bash scripts/db.sh start
	@TORTURE_TRIALS=$(TORTURE_TRIALS) TORTURE_SCALE=$(TORTURE_SCALE) bash tests/torture/torture.sh

migrate: deps
	@$(MAKE) --no-print-directory bin/kbpipe
	@bash scripts/db.sh start
	bin/kbpipe migrate up

seed: migrate
	bin/kbpipe seed

demo: deps
	@$(MAKE) --no-print-directory bin/kbpipe
	@bash scripts/db.sh start
	@bash scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory build
	@bash scripts/db.sh start
	@bash bench/run.sh "$(BUILD)"

# no database needed: the harnesses read scratch files only
fuzz: deps
ifeq ($(FUZZ_ENGINE),libfuzzer)
	@$(MAKE) --no-print-directory $(LF_BIN)
	@bash tests/fuzz/run.sh -t $(FUZZ_SECONDS) -e libfuzzer $(LF)/bin $(FUZZ_NAMES)
else
	@$(MAKE) --no-print-directory SAN=1 $(FUZZ_SRC:tests/fuzz/%.c=build/san/fuzz/%)
	@bash tests/fuzz/run.sh -n $(FUZZ_RUNS) build/san/fuzz $(FUZZ_NAMES)
endif

# the rank table ships in data/; its SHA-256 is pinned in scripts/fetch-tokenizer.sh
install: bin/kbpipe
	@echo "$$(sed -n 's/^RANKS_SHA256=//p' scripts/fetch-tokenizer.sh)  data/cl100k_base.json" | \
	  sha256sum -c --quiet - || { echo "install: data/cl100k_base.json is damaged; git checkout -- data/cl100k_base.json" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/kbpipe/migrations \
	           $(DESTDIR)$(PREFIX)/share/kbpipe/seed $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 bin/kbpipe $(DESTDIR)$(PREFIX)/bin/kbpipe
	install -m 644 migrations/*.sql $(DESTDIR)$(PREFIX)/share/kbpipe/migrations/
	install -m 644 samples/seed/*.json $(DESTDIR)$(PREFIX)/share/kbpipe/seed/
	install -m 644 data/cl100k_base.json $(DESTDIR)$(PREFIX)/share/kbpipe/
	[ ! -f docs/kbpipe.1 ] || install -m 644 docs/kbpipe.1 $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build bin

# One target per pipelines/*.yaml: `make -j4 pipelines` (pipelines/pipelines.mk)
include pipelines/pipelines.mk
$(addprefix pipeline-,$(PIPELINE_NAMES)) $(SHARD_TARGETS): bin/kbpipe
