# emotiond - top-level build.
#   make run     build, then serve the committed default model on :8080
#   make test    fast Check suite (no dataset needed)
#   make asan    the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-data  slow checks that need ../shared/data
#   make bench   benchmarks (print figures, never fail on timing)
#   make test-contract  every response checked against openapi.yaml by Prism (tests/contract/)
#   make man     build/emotiond.1, the man page, from the --help texts
#   make readme  regenerate README.md's configuration table
#   make test-browser  the web page end to end in headless Chromium (playwright-core)
#   make soak    64 connections for 5 minutes of mixed requests (tests/soak/)
#   make soak-valgrind  a shorter soak with the server under Valgrind
#   make kill-loop  kill -9 at random moments, 200 rounds (KILL_ROUNDS)
# Every entry point reaches `deps`, which installs missing libraries on a fresh
# Debian 12 machine (as root) or prints the apt-get line to run.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O3
SAN     ?=
PKGS    := libmicrohttpd jansson libpng libturbojpeg openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) check 2>/dev/null)
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) $(SAN) -fopenmp \
           -Inn -Iservice $(PKG_CFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lopenblas -lm -lpthread
TEST_LDLIBS := $(shell pkg-config --libs check libcurl libjpeg 2>/dev/null)
LDFLAGS += $(SAN) -fopenmp

# libjpeg62-turbo-dev: tests only (tests/test_jpeg_dc.c), libjpeg-turbo's own
# libjpeg API, the one encoder here that writes restart markers.
DEB_PACKAGES := pkg-config libmicrohttpd-dev libjansson-dev libpng-dev libturbojpeg0-dev \
                check libopenblas-dev libcurl4-openssl-dev libjpeg62-turbo-dev
DEB_PKGCONFIG := libmicrohttpd jansson libpng libturbojpeg check openblas libcurl libjpeg

NN_SRC      := $(sort $(wildcard nn/*.c))
SERVICE_SRC := $(sort $(filter-out service/main.c,$(wildcard service/*.c)))
TEST_SRC    := $(sort $(wildcard tests/test_*.c))
SLOW_SRC    := $(sort $(wildcard tests/slow_*.c))
TEST_COMMON := $(sort $(wildcard tests/common_*.c))

NN_OBJ      := $(NN_SRC:%.c=$(BUILD)/%.o)
SERVICE_OBJ := $(SERVICE_SRC:%.c=$(BUILD)/%.o)
TEST_COMMON_OBJ := $(TEST_COMMON:%.c=$(BUILD)/%.o)
TEST_BIN    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
SLOW_BIN    := $(SLOW_SRC:tests/%.c=$(BUILD)/tests/%)
# here, before the rules that list them (make expands a rule's prerequisites
# where it reads the rule: further down, `make bench` saw an empty list and
# ran bench/run.sh on whatever bench binaries an earlier build had left)
BENCH_SRC   := $(sort $(wildcard bench/*.c))
BENCH_BIN   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.SECONDARY:
.PHONY: all deps run test asan test-data bench clean build-all _run _test _test-data _bench \
        man readme _readme test-contract \
        test-browser

# Entry points install dependencies first, then build in a sub-make: the
# pkg-config flags above are computed when make starts, which on a fresh
# machine is before `deps` has installed the libraries.
all: deps
	@$(MAKE) --no-print-directory build-all
build-all: $(BUILD)/emotiond

deps:
	@missing=""; for p in $(DEB_PKGCONFIG); do \
	  pkg-config --exists $$p 2>/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ] || ! command -v pkg-config >/dev/null; then \
	  echo "deps: missing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); \
	  else \
	    echo "run: sudo apt-get install -y $(DEB_PACKAGES)"; exit 1; \
	  fi; \
	fi

$(BUILD)/%.o: %.c $(wildcard nn/*.h service/*.h tests/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

# The version is EMOTIOND_VERSION in service/version.h. A git checkout adds
# `git describe` (a tarball without .git builds without it); the header is
# rewritten only when that changes, so version.o is not rebuilt every time.
ifneq ($(wildcard .git),)
GIT_DESCRIBE := $(shell d=$$(GIT_OPTIONAL_LOCKS=0 git describe --tags --always 2>/dev/null) && \
  { GIT_OPTIONAL_LOCKS=0 git diff-index --quiet HEAD -- 2>/dev/null || d=$$d-dirty; \
    printf '%s' "$$d" | tr -cd 'A-Za-z0-9._+/-'; })
endif
$(BUILD)/gen/git_describe.h: _git-describe-always
	@mkdir -p $(dir $@)
	@printf '#define EMOTIOND_GIT "%s"\n' '$(GIT_DESCRIBE)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/service/version.o: $(BUILD)/gen/git_describe.h
$(BUILD)/service/version.o: CFLAGS += -I$(BUILD)/gen
.PHONY: _git-describe-always

$(BUILD)/libnn.a: $(NN_OBJ)
	@rm -f $@; ar rcs $@ $^

# The web page (service/web/) is compiled into the binary: a small host tool
# turns each file into a C array (build/gen/web_assets.c, see web_assets.h).
WEB_SRC := $(sort $(wildcard $(addprefix service/web/*.,html js css svg png ico)))

$(BUILD)/tools/embed: service/web/embed.c
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $<"
	@$(CC) -std=c99 -Wall -Wextra -Werror -O2 $< -o $@

$(BUILD)/gen/web_assets.c: $(BUILD)/tools/embed $(WEB_SRC)
	@mkdir -p $(dir $@)
	@echo "  EMBED   $(WEB_SRC)"
	@$(BUILD)/tools/embed $(WEB_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c service/web_assets.h
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libservice.a: $(SERVICE_OBJ) $(BUILD)/gen/web_assets.o
	@rm -f $@; ar rcs $@ $^ $(if $(SERVICE_OBJ),,)

$(BUILD)/emotiond: $(BUILD)/service/main.o $(BUILD)/libservice.a $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_COMMON_OBJ) $(BUILD)/libservice.a $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(TEST_LDLIBS)

run: deps
	@$(MAKE) --no-print-directory _run
_run: $(BUILD)/emotiond
	$(BUILD)/emotiond serve --model models/default.emod --port 8080

test: deps
	@$(MAKE) --no-print-directory _test
_test: $(BUILD)/emotiond $(BUILD)/tests/soak/loadgen $(TEST_BIN)
	@BUILD=$(BUILD) tests/run.sh $(TEST_BIN)

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

test-data: deps
	@$(MAKE) --no-print-directory _test-data
_test-data: $(BUILD)/emotiond $(SLOW_BIN)
	@BUILD=$(BUILD) tests/run.sh $(SLOW_BIN)

bench: deps
	@$(MAKE) --no-print-directory _bench
_bench: $(BUILD)/emotiond $(BENCH_BIN)
	BUILD=$(BUILD) bench/run.sh

# The page in a real browser: Debian's chromium driven by playwright-core
# (tests/browser/, installed from the npm registry on first use).
test-browser: deps
	@$(MAKE) --no-print-directory $(BUILD)/emotiond
	BUILD=$(BUILD) tests/browser/run.sh

# The man page, made by the binary from its --help texts.
man: deps
	@$(MAKE) --no-print-directory $(BUILD)/emotiond.1
$(BUILD)/emotiond.1: $(BUILD)/emotiond
	$(BUILD)/emotiond help --man > $@.tmp && mv $@.tmp $@
	@echo "wrote $@ (man -l $@)"

# README.md's configuration table, between its config-table markers, from
# `emotiond serve --print-config-table`; tests/test_cli.c fails when it differs.
readme: deps
	@$(MAKE) --no-print-directory _readme
_readme: $(BUILD)/emotiond
	@$(BUILD)/emotiond serve --print-config-table > $(BUILD)/config-table.md
	@awk -v table=$(BUILD)/config-table.md \
	  '/<!-- config-table:end -->/ { skip = 0 } !skip { print } \
	   /<!-- config-table:begin -->/ { while ((getline l < table) > 0) print l; skip = 1 }' \
	  README.md > README.md.tmp && mv README.md.tmp README.md
	@echo "README.md: configuration table regenerated"

# The API contract: the integration requests of tests/contract/ go through
# Prism (proxy mode, pinned in tests/contract/package.json), which validates
# every response against openapi.yaml; any violation fails.
test-contract: deps
	@$(MAKE) --no-print-directory $(BUILD)/emotiond
	BUILD=$(BUILD) tests/contract/run.sh

clean:
	rm -rf build

# ---- soak (issue 7; tests/soak/soak.sh says what passes) ----
.PHONY: soak soak-valgrind _soak-bins kill-loop
# kill -9 at random moments, KILL_ROUNDS rounds on one store (make test runs 4)
KILL_ROUNDS ?= 200
kill-loop: deps
	@$(MAKE) --no-print-directory $(BUILD)/emotiond $(BUILD)/tests/test_kill_loop
	@EMOTIOND_KILL_ROUNDS=$(KILL_ROUNDS) BUILD=$(BUILD) tests/run.sh $(BUILD)/tests/test_kill_loop
soak: deps
	@$(MAKE) --no-print-directory _soak-bins
	@BUILD=$(BUILD) tests/soak/soak.sh
# Under Valgrind the default model takes about a minute per request, so this
# soak serves a tiny network with random weights: what Valgrind checks (leaks,
# memory errors) is the service's code, not the model's size.
soak-valgrind: deps
	@$(MAKE) --no-print-directory _soak-bins $(BUILD)/bench/make_model
	@command -v valgrind >/dev/null || apt-get install -y valgrind
	@$(BUILD)/bench/make_model tests/soak/tiny_arch.json $(BUILD)/soak-tiny.emod
	@SOAK_MODEL=$(BUILD)/soak-tiny.emod BUILD=$(BUILD) tests/soak/soak.sh --valgrind
_soak-bins: $(BUILD)/emotiond $(BUILD)/tests/soak/loadgen
$(BUILD)/tests/soak/loadgen: $(BUILD)/tests/soak/loadgen.o $(BUILD)/libservice.a $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# ---- fuzzing and ThreadSanitizer (issue 7; see tests/README.md) ----
#   make fuzz          each libFuzzer harness of tests/fuzz/ for FUZZ_SECONDS (300)
#   make fuzz-ci       the same for FUZZ_CI_SECONDS (60) each
#   make fuzz-seeds    regenerate the hand-made seeds in tests/corpus/
#   make tsan          the threaded tests under ThreadSanitizer
# The harnesses are also linked (with the project's compiler, no libFuzzer)
# into tests/test_fuzz_corpus.c, which `make test` runs: it replays every
# file of tests/corpus/<harness>/ through its harness.
FUZZ_NAMES      := $(sort $(notdir $(basename $(wildcard tests/fuzz/fuzz_*.c))))
FUZZ_SECONDS    ?= 300
FUZZ_CI_SECONDS ?= 60
FUZZ_CC         ?= clang
FUZZ_BUILD      := build/fuzz
FUZZ_SAN        := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_REPLAY_OBJ := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/replay_%.o)
# The tests that run threads in one process: worker pool and HTTP server
# (service_*, web, metrics), hot swap under load (admin_swap), training beside
# serving (admin_train), admin API (admin_auth, hostile_bodies), disk faults
# under training and serving (faults_disk, SKIP without root). Left out:
# test_admin_crash SIGKILLs its server processes, so TSan in them never gets to
# report, and its timings assume uninstrumented speed.
TSAN_TESTS      := test_admin_swap test_admin_train test_admin_auth test_hostile_bodies \
                   test_service_http test_service_faces test_service_corpus \
                   test_service_process test_web test_metrics_promtool test_faults_disk test_worker_pool

.PHONY: fuzz fuzz-ci fuzz-build fuzz-seeds _fuzz-bins tsan _tsan

$(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/%.o) $(FUZZ_REPLAY_OBJ): tests/fuzz/fuzz_common.h
$(BUILD)/tests/fuzz/replay_%.o: tests/fuzz/%.c $(wildcard nn/*.h service/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (corpus replay)"
	@$(CC) $(CFLAGS) -DLLVMFuzzerTestOneInput=$*_one -c $< -o $@
$(BUILD)/tests/test_fuzz_corpus: $(BUILD)/tests/test_fuzz_corpus.o $(FUZZ_REPLAY_OBJ) \
                                  $(TEST_COMMON_OBJ) $(BUILD)/libservice.a $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(TEST_LDLIBS)

fuzz-build: deps
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: $(FUZZ_CC) missing: apt-get install -y clang libomp-dev"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
	  OPT="-O1 -fno-omit-frame-pointer" SAN="$(FUZZ_SAN)" _fuzz-bins
_fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/fuzzers/%)
$(BUILD)/fuzzers/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/libservice.a $(BUILD)/libnn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_NAMES)
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_CI_SECONDS)

fuzz-seeds: deps
	@$(MAKE) --no-print-directory $(BUILD)/tests/fuzz/gen_seeds
	$(BUILD)/tests/fuzz/gen_seeds tests/corpus
$(BUILD)/tests/fuzz/gen_seeds: $(BUILD)/tests/fuzz/gen_seeds.o $(BUILD)/libservice.a $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(shell pkg-config --libs libjpeg 2>/dev/null)

# ThreadSanitizer with gcc. OpenMP runs one thread (OMP_NUM_THREADS=1): libgomp
# is not instrumented, so its barriers would show as races in our parallel
# loops (false positives); the service's own threads (HTTP, workers, training
# job, swaps) are what these tests check. tests/tsan.supp lists what remains.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan OPT="-O1 -fno-omit-frame-pointer" \
	  SAN="-fsanitize=thread" _tsan
_tsan: $(BUILD)/emotiond $(TSAN_TESTS:%=$(BUILD)/tests/%)
	@OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	  TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 exitcode=66 second_deadlock_stack=1 $(TSAN_OPTIONS)" \
	  BUILD=$(BUILD) tests/run.sh $(TSAN_TESTS:%=$(BUILD)/tests/%)
# tests/test_bombs.c builds its hostile PNGs with zlib
$(BUILD)/tests/test_bombs: LDLIBS += -lz
# tests/test_alloc_fail.c fails the Nth allocation: the allocator calls of
# nn/, service/ and the test go to its __wrap_* functions (test binary only);
# json_load* are wrapped to know when Jansson parses (see the test)
$(BUILD)/tests/test_alloc_fail: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=free \
  -Wl,--wrap=json_loads,--wrap=json_loadb,--wrap=json_load_file
