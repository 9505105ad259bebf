# emotiond - top-level build.
#   make run     build, then serve the committed default model on :8080
#   make test    fast Check suite (no dataset needed)
#   make asan    the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-data  slow checks that need ../shared/data
#   make bench   benchmarks (print figures, never fail on timing)
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
TEST_LDLIBS := $(shell pkg-config --libs check libcurl 2>/dev/null)
LDFLAGS += $(SAN) -fopenmp

DEB_PACKAGES := pkg-config libmicrohttpd-dev libjansson-dev libpng-dev libturbojpeg0-dev \
                check libopenblas-dev libcurl4-openssl-dev
DEB_PKGCONFIG := libmicrohttpd jansson libpng libturbojpeg check openblas libcurl

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

.SECONDARY:
.PHONY: all deps run test asan test-data bench clean build-all _run _test _test-data _bench

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

$(BUILD)/libnn.a: $(NN_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/libservice.a: $(SERVICE_OBJ)
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
_test: $(BUILD)/emotiond $(TEST_BIN)
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

clean:
	rm -rf build

BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
