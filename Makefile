# tinyfile: tinyd, libtiny, tiny and tinyfs.
#
#   make                 build everything into build/ (quiet; V=1 shows commands)
#   make test            build and run every test (TAP, summarised by prove)
#   make bench           build and run the benchmarks
#   make install         install under $(DESTDIR)$(PREFIX)
#   make SANITIZE=address,undefined test    the same under sanitizers, in build-san/
#   make SANITIZE=thread test-tsan          libtiny's threaded tests under TSan
#   make fuzz            libFuzzer targets, a short run of each (docs/fuzzing.md)

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
PKGDIR  ?= $(LIBDIR)/pkgconfig

SOVERSION := 1
VERSION   := 1.0.0

CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -pthread -MMD -MP -Ilibtiny
LDLIBS  += -pthread

ifdef SANITIZE
O       ?= build-san
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
# UBSan only prints by default, often into a daemon's closed stderr: make
# every finding fatal so that the tests see it.
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
else
O       ?= build
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   := $(shell pkg-config --libs fuse3 2>/dev/null)

LIB_SRC   := $(wildcard libtiny/*.c)
TINYD_SRC := $(wildcard tinyd/*.c)
TINY_SRC  := $(wildcard tiny/*.c)
FS_SRC    := $(wildcard tinyfs/*.c)
TEST_SRC  := $(wildcard tests/*.c)
BENCH_SRC := $(wildcard tests/bench/*.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(O)/obj/%.pic.o)
LIB_SOBJ  := $(LIB_SRC:%.c=$(O)/obj/%.o)
TINYD_OBJ := $(TINYD_SRC:%.c=$(O)/obj/%.o) $(O)/obj/libtiny/format.o
TINY_OBJ  := $(TINY_SRC:%.c=$(O)/obj/%.o) $(O)/obj/tinyfs/format.o $(O)/obj/tinyfs/journal.o $(O)/obj/tinyfs/measure.o
FS_OBJ    := $(FS_SRC:%.c=$(O)/obj/%.o)

LIBSO   := $(O)/libtiny.so.$(SOVERSION)
LIBA    := $(O)/libtiny.a
TINYD   := $(O)/tinyd
TINY    := $(O)/tiny
TINYFS  := $(if $(FS_SRC),$(O)/tinyfs)
TESTS   := $(TEST_SRC:tests/%.c=$(O)/tests/%)
BENCHES := $(BENCH_SRC:tests/bench/%.c=$(O)/bench/%)

MAN1 := $(wildcard docs/man/*.1)
MAN3 := $(wildcard docs/man/*.3)
MAN8 := $(wildcard docs/man/*.8)

# Debian packages the build and the tests need; the benchmarks need BENCH_PKGS too.
DEB_PKGS   := build-essential pkg-config libsnappy-dev libisal-dev libfuse3-dev fuse3 \
	python3 python3-snappy valgrind clang sqlite3 rsync git procps ed vim-tiny patch
BENCH_PKGS := gnuplot-nox btrfs-progs btrfs-compsize linux-perf

# The fuzz targets again, with $(CC) and a plain main() (tests/fuzz/replay.c),
# so that make test replays their seeds and the inputs that once failed under
# any build.
REPLAYS := $(O)/tests/replay_codec $(O)/tests/replay_request $(O)/tests/replay_tinyfs_format \
	$(O)/tests/replay_rawsplit

all: $(LIBSO) $(LIBA) $(TINYD) $(TINY) $(TINYFS) $(TESTS) $(BENCHES) $(REPLAYS) \
	$(O)/tests/mkseeds

# Objects live under $(O)/obj/ so that $(O)/tinyd, $(O)/tiny and $(O)/tinyfs can be
# the programs, not directories of objects.
$(O)/obj/%.pic.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -DTINY_BUILDING_LIB -c -o $@ $<

$(O)/obj/tinyfs/%.o: tinyfs/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) $(FUSE_CFLAGS) -c -o $@ $<

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIBSO): $(LIB_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,libtiny.so.$(SOVERSION) -o $@ $^ -lisal $(LDLIBS)
	$(Q)ln -sf libtiny.so.$(SOVERSION) $(O)/libtiny.so

$(LIBA): $(LIB_SOBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(TINYD): $(TINYD_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lsnappy -lisal $(LDLIBS)

$(TINY): $(TINY_OBJ) $(LIBA)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lisal $(LDLIBS)

$(O)/tinyfs: $(FS_OBJ) $(LIBA)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(FUSE_LIBS) -lisal $(LDLIBS)

$(O)/tests/%: $(O)/obj/tests/%.o $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lsnappy -lisal $(LDLIBS)

$(O)/tests/replay_codec: $(O)/obj/tests/fuzz/fuzz_codec.o $(O)/obj/tinyd/codec.o
$(O)/tests/replay_request: $(O)/obj/tests/fuzz/fuzz_request.o $(O)/obj/tinyd/request.o \
	$(O)/obj/tinyd/codec.o
$(O)/tests/replay_tinyfs_format: $(O)/obj/tests/fuzz/fuzz_tinyfs_format.o $(O)/obj/tinyfs/format.o
$(O)/tests/replay_rawsplit: $(O)/obj/tests/fuzz/fuzz_rawsplit.o $(O)/obj/libtiny/rawsplit.o
$(REPLAYS): $(O)/obj/tests/fuzz/replay.o $(O)/obj/libtiny/format.o
$(O)/tests/mkseeds: $(O)/obj/tests/fuzz/mkseeds.o $(O)/obj/tinyfs/format.o $(O)/obj/libtiny/format.o
$(REPLAYS) $(O)/tests/mkseeds:
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lsnappy -lisal $(LDLIBS)

# The FUSE passthrough baseline of tests/bench/fs.sh needs libfuse3 and
# shares tinyfs's table of kernel inodes (inode.o, tinyfs.h).
$(O)/obj/tests/bench/passthrough.o: tests/bench/passthrough.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -Itinyfs $(FUSE_CFLAGS) -c -o $@ $<

$(O)/bench/passthrough: $(O)/obj/tests/bench/passthrough.o $(O)/obj/tinyfs/inode.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(FUSE_LIBS) $(LDLIBS)

$(O)/bench/%: $(O)/obj/tests/bench/%.o $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lsnappy -lisal $(LDLIBS)

# Installs the missing Debian packages of PKGS (needs root), nothing else.
PKGS ?= $(DEB_PKGS)
deps:
	$(Q)missing=$$(for p in $(PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "run as root: apt-get install -y" $$missing >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The main job: a private tinyd in demo/run, a sample compressed through it,
# and a tinyfs mount demo/mnt keeping its files compressed in demo/store.
DEMO := $(CURDIR)/demo
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)mkdir -p $(DEMO)/run $(DEMO)/store $(DEMO)/mnt
	$(Q)if [ -f $(DEMO)/run/tinyd.pid ] && kill -0 $$(cat $(DEMO)/run/tinyd.pid) 2>/dev/null; then \
		echo "tinyd already running in $(DEMO)/run"; else $(O)/tinyd -d $(DEMO)/run; fi
	$(Q)TINYD_DIR=$(DEMO)/run $(O)/tiny -v -k -f -c tests/data/lcet10.txt > $(DEMO)/lcet10.txt.sz
	$(Q)TINYD_DIR=$(DEMO)/run $(O)/tiny -d -c $(DEMO)/lcet10.txt.sz | cmp - tests/data/lcet10.txt
	$(Q)mountpoint -q $(DEMO)/mnt || TINYD_DIR=$(DEMO)/run $(O)/tinyfs $(DEMO)/store $(DEMO)/mnt
	$(Q)cp -a tests/data/. $(DEMO)/mnt/ && sync
	$(Q)diff -r tests/data $(DEMO)/mnt && echo "demo/mnt holds a byte-identical copy of tests/data"
	$(Q)echo "apparent size: $$(du -sh --apparent-size $(DEMO)/mnt | cut -f1), stored: $$(du -sh $(DEMO)/mnt | cut -f1)"
	$(Q)TINYD_DIR=$(DEMO)/run $(O)/tiny stats
	@echo
	@echo "tinyd runs with run directory $(DEMO)/run; tinyfs mounts $(DEMO)/store on $(DEMO)/mnt."
	@echo "  export TINYD_DIR=$(DEMO)/run PATH=$(CURDIR)/$(O):\$$PATH"
	@echo "  tiny -k somefile; tiny stats; cp somefile $(DEMO)/mnt/; ls -ls $(DEMO)/mnt"
	@echo "Stop both with: make demo-stop"

demo-stop:
	$(Q)! mountpoint -q $(DEMO)/mnt || fusermount3 -u $(DEMO)/mnt
	$(Q)if [ -f $(DEMO)/run/tinyd.pid ]; then kill $$(cat $(DEMO)/run/tinyd.pid) 2>/dev/null || true; fi

# Tests and benchmarks find the build through $(O).
# make test T=tests/20-roundtrip.t runs a subset.
T ?= $(sort $(wildcard tests/*.t))
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)TINY_BUILD=$(CURDIR)/$(O) prove -f $(T)

# a race stops the process that has it (a daemon then fails its test)
test-tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread O=build-tsan all
	$(Q)TSAN_OPTIONS=halt_on_error=1 TINY_BUILD=$(CURDIR)/build-tsan prove -f tests/23-zerocopy.t \
		tests/30-concurrency.t tests/50-faults.t tests/74-tinyfs-pagecache.t

# libFuzzer targets (tests/fuzz/, docs/fuzzing.md), built with clang into build-fuzz/:
#   make fuzz [FUZZ_TIME=20]   seeds from tests/data, replays tests/fuzz/regress/,
#                              then fuzzes each target for FUZZ_TIME seconds
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 20
FUZZ_O     ?= build-fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-std=c11 -D_GNU_SOURCE -Wall -Wextra -Ilibtiny -pthread
FUZZERS    := $(FUZZ_O)/fuzz_codec $(FUZZ_O)/fuzz_request $(FUZZ_O)/fuzz_tinyfs_format \
	$(FUZZ_O)/fuzz_rawsplit

$(FUZZ_O)/fuzz_codec: tests/fuzz/fuzz_codec.c tinyd/codec.c libtiny/format.c
$(FUZZ_O)/fuzz_request: tests/fuzz/fuzz_request.c tinyd/request.c tinyd/codec.c libtiny/format.c
$(FUZZ_O)/fuzz_tinyfs_format: tests/fuzz/fuzz_tinyfs_format.c tinyfs/format.c libtiny/format.c
$(FUZZ_O)/fuzz_rawsplit: tests/fuzz/fuzz_rawsplit.c libtiny/rawsplit.c libtiny/format.c
$(FUZZERS): tests/fuzz/stubs.h tests/fuzz/check.h tinyd/codec.h tinyd/request.h \
	libtiny/format.h libtiny/internal.h tinyfs/tinyfs.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) -lsnappy -lisal

fuzz: $(FUZZERS) $(O)/tests/mkseeds
	$(Q)tests/fuzz/run.sh $(FUZZ_O) $(FUZZ_TIME) $(O)/tests/mkseeds

bench: all
	$(Q)$(MAKE) --no-print-directory deps PKGS="$(DEB_PKGS) $(BENCH_PKGS)"
	$(Q)TINY_BUILD=$(CURDIR)/$(O) tests/bench/run.sh

install: $(LIBSO) $(LIBA) $(TINYD) $(TINY) $(TINYFS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(INCDIR) $(DESTDIR)$(PKGDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(TINYD) $(DESTDIR)$(SBINDIR)/tinyd
	install -m 755 $(TINY) $(TINYFS) $(DESTDIR)$(BINDIR)/
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -sf libtiny.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libtiny.so
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	install -m 644 libtiny/tiny.h $(DESTDIR)$(INCDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' libtiny/libtiny.pc.in > $(DESTDIR)$(PKGDIR)/libtiny.pc
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN3),install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/)
	$(if $(MAN8),install -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/)

clean:
	rm -rf build build-san build-tsan $(FUZZ_O)

# Keep the objects of the test programs (chained pattern rules would delete them).
.SECONDARY:

.PHONY: all deps demo demo-stop test test-tsan bench install clean

-include $(shell find $(O) -name '*.d' 2>/dev/null)
