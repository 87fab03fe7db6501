# ste-repro pipeline: fetch/decode -> pretrain -> train -> eval -> report -> diff.
# Every stage writes HDF5 files; every file below is a target, so `make <file>` reruns one stage or one
# cell. `make -n reproduce` shows the plan. See README.md.
SHELL      := /bin/bash
SWIFT      ?= swift
CONFIG     ?= release
PROFILE    ?= paper
THREADS    ?= 2
EXPERIMENT ?= experiments/table1.yaml
ifeq ($(filter $(CONFIG),debug release),)
  $(error CONFIG must be debug or release, got '$(CONFIG)')
endif
# paper, or a profile of $(EXPERIMENT) (smoke, lenet5-caffe, …; `ste plan` rejects unknown ones by name).
ifneq ($(shell echo '$(PROFILE)' | grep -E '^[a-z0-9][a-z0-9-]*$$'),$(PROFILE))
  $(error PROFILE must be paper or a profile name of $(EXPERIMENT), got '$(PROFILE)')
endif

BIN := .build/$(CONFIG)/ste
STE := $(BIN)
# Recorded in every output file (Storage.codeVersion).
# Uncommitted code changes add "-dirty-" and 12 hex digits of the diff's SHA-256, so two different changes differ.
export STE_CODE_VERSION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- Sources Package.swift 2>/dev/null || echo -dirty-$$(git diff HEAD -- Sources Package.swift | sha256sum | cut -c1-12))
export STE_THREADS := $(THREADS)
# DEVICE=cpu|cuda|auto: the engine of pretrain / train / eval (cuda: an NVIDIA GPU, libraries found at run time);
# TF32=1: TF32 tensor-core math on the GPU (recorded with the device).
DEVICE ?= cpu
export STE_DEVICE := $(DEVICE)
export STE_TF32 := $(TF32)
# RESUME_ANYWAY=1: continue resume states written under another thread count, device or code version.
export RESUME_ANYWAY

# librsvg2-bin: rsvg-convert, for the PNG copies of the committed figures (without it a report removes them).
DEB_PACKAGES := libhdf5-dev zlib1g-dev libopenblas-dev libdnnl-dev pkg-config hdf5-tools dataset-fashion-mnist librsvg2-bin

.PHONY: all deps build test cuda-libs verify fuzz fuzz-check parity reproduce reproduce-all runs data fetch peer-found theory schoenbauer schoenbauer-full schoenbauer-small-steps sweep sweep-runs plan-listed bench peer report diff run repel smoke-check clean help gpu-bundle gpu-check gpu-rehearsal
.DEFAULT_GOAL := help

help:
	@echo "make reproduce   data -> pretrain -> train -> eval -> report -> diff (MNIST rows by default)"
	@echo "make test        build and run every test (includes the smoke pipeline)"
	@echo "make cuda-libs   NVIDIA's CUDA libraries from their wheels into ~/.venv-cuda, for the CUDA engine's tests (make test)"
	@echo "make run RUN=lenet5-a2-clipped-s0   one cell;  make report;  make diff;  make theory;  make schoenbauer [-full];  make bench"
	@echo "make -j3 schoenbauer-small-steps    the Schoenbauer SGD claim at small steps (81 min on a 2-core VM; a process per seed)"
	@echo "make reproduce SET=\"nets.lenet5.train.lr=0.05\"   override any config key (own results folder); make sweep SWEEP=nets.lenet5.train.lr=0.01,0.05"
	@echo "make slurm       submit the grid as Slurm job arrays (DRY_RUN=1 previews); make slurm-status"
	@echo "make bench       our train/eval img/s next to the PyTorch peer's (BENCH_ROUNDS=2 interleaved rounds)"
	@echo "make verify      checksums, input digests and tables of results (VERIFY=path); make fuzz FUZZ_SECONDS=600"
	@echo "make parity      our engine against the PyTorch twin over hundreds of steps (4-bit ResNet-20; needs make peer)"
	@echo "Variables: PROFILE=paper|smoke THREADS=$(THREADS) CONFIG=$(CONFIG); reproduce: JOBS=$(JOBS) cells at once, REPRODUCE_THREADS=1 each"
	@echo "Profiles (make reproduce [EXPERIMENT=…] PROFILE=…), with what each is and costs (from the configs):"
	@echo "  experiments/table1.yaml  paper: the main job, about 27 min on 2 cores"
	@awk 'FNR == 1 { p = 0 } /^profiles:/ { p = 1; next } p && /^  [a-z0-9-]+:/ { name = $$1; sub(/:$$/, "", name); \
	  c = $$0; sub(/^[^#]*#? */, "", c); printf "  %-24s %s: %s\n", FILENAME, name, c }' experiments/table1.yaml experiments/fashion.yaml

# MARK: - Setup ---------------------------------------------------------------------------------

# Installs the Debian packages when one is missing (as root, or through sudo). With NO_APT=1, or where there is no
# apt-get / no way to become root (a cluster, a RHEL-family system, a container built elsewhere), it installs
# nothing: it checks that pkg-config finds HDF5, OpenBLAS and zlib and that the oneDNN 2.x header is there, and
# lists what is missing (module load …, PKG_CONFIG_PATH, CPATH / LIBRARY_PATH; docs/cluster.md).
# DEPS=skip: nothing to install or check (a prebuilt binary with its libraries, as on the GPU machine); a command-line
# variable, so it reaches nested makes (GNU make does not hand `-o deps` to them).
NO_APT ?=
deps:
	@if [ "$(DEPS)" = skip ]; then echo "deps: skipped (DEPS=skip)"; exit 0; fi; \
	if [ "$(NO_APT)" != 1 ] && command -v apt-get >/dev/null && command -v dpkg-query >/dev/null \
	     && { [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null; }; then \
	  missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else \
	  missing=""; \
	  for pc in hdf5 openblas zlib; do pkg-config --exists $$pc 2>/dev/null || missing="$$missing $$pc(pkg-config)"; done; \
	  printf '#include <oneapi/dnnl/dnnl.h>\n#if DNNL_VERSION_MAJOR != 2\n#error\n#endif\n' \
	    | $(or $(CC),cc) -E -x c - >/dev/null 2>&1 || missing="$$missing oneDNN-2.x(oneapi/dnnl/dnnl.h)"; \
	  if [ -n "$$missing" ]; then \
	    echo "error: missing:$$missing — nothing was installed (NO_APT=1, or no apt-get / root here)."; \
	    echo "  Debian/Ubuntu: apt-get install $(DEB_PACKAGES)"; \
	    echo "  RHEL family: dnf install hdf5-devel openblas-devel zlib-devel pkgconf, and oneDNN 2.x from source or a module"; \
	    echo "  modules: module load hdf5 openblas onednn/2 (PKG_CONFIG_PATH, CPATH, LIBRARY_PATH); or the container (docs/cluster.md)"; \
	    exit 1; \
	  fi; \
	  echo "deps: HDF5, OpenBLAS, zlib (pkg-config) and oneDNN 2.x found; nothing installed (NO_APT)"; \
	fi

SOURCES := Package.swift $(shell find Sources -name '*.swift' -o -name '*.h' -o -name '*.modulemap' 2>/dev/null)

# The binary is rebuilt when a source changes; runs depend on it order-only, so a rebuild does not
# silently retrain finished cells (each output records the code version that made it).
$(BIN): $(SOURCES) | deps
	$(SWIFT) build -c $(CONFIG) --product ste
	@touch $@

build: $(BIN)

# All tests, then the whole pipeline end to end on the smoke profile.
test: deps
	$(SWIFT) build -c $(CONFIG) --product ste
	@touch $(BIN)
	@$(MAKE) --no-print-directory cuda-libs || echo "make test: NVIDIA's libraries could not be installed; the tests that check the CUDA engine against them skip, saying so"
	STE_CUDA_LIBRARY_PATH="$${STE_CUDA_LIBRARY_PATH:+$$STE_CUDA_LIBRARY_PATH:}$$(ls -d $(CUDA_LIBS)/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | paste -sd: -)" \
	  $(SWIFT) test
	$(MAKE) --no-print-directory smoke-check
	@$(MAKE) --no-print-directory peer || echo "make test: the PyTorch peer could not be installed; test-load skips, saying so"
	scripts/test-load.sh
	d=$$(mktemp -d) && python3 tools/tensorboard.py results/fashion/cpu-budget --out $$d --check && rm -rf $$d
	scripts/test-deps.sh
	scripts/test-gpu-script.sh
	scripts/test-cuda-standin.sh $(BIN)
	scripts/test-faults.sh
	scripts/test-make-in-order.sh
	scripts/test-cifar-path.sh
	scripts/test-slurm.sh --local-table results/smoke/table1.csv
	$(MAKE) --no-print-directory fuzz-check

# NVIDIA's CUDA 13 libraries from their Python wheels (NVRTC, the runtime, cuBLAS, cuDNN; about 1 GB, no GPU needed),
# for the tests that check the CUDA engine against them: its kernels compile with NVRTC, every cuBLAS and cuDNN entry
# point it declares exists (Tests/GPUTests/GPULibraryTests.swift). Pinned, so that every machine checks the same ones.
CUDA_LIBS   ?= $(HOME)/.venv-cuda
CUDA_WHEELS := nvidia-cuda-nvrtc==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cublas==13.10.0.20 nvidia-cudnn-cu13==9.28.1.4
CUDA_STAMP  := $(CUDA_LIBS)/installed-$(firstword $(shell echo '$(CUDA_WHEELS)' | md5sum))
cuda-libs: $(CUDA_STAMP)
$(CUDA_STAMP):
	rm -rf $(CUDA_LIBS)
	python3 -m venv $(CUDA_LIBS)
	$(CUDA_LIBS)/bin/pip install --quiet $(CUDA_WHEELS)
	echo "$(CUDA_WHEELS)" > $@

# MARK: - Parity with PyTorch over many steps ------------------------------------------------------
# Our engine and the PyTorch twin (tools/make_fixtures.py) from one state on the same batches: a 4-bit ResNet-20
# with fixed weights for two epochs (running statistics, eval) and training for 200 steps (loss and accuracy
# averages); tools/trajectory.py --check states the tolerances. Needs the peer's Python (make peer) and
# Fashion-MNIST. Run it before any deep-net campaign (docs/resnet20-4bit-parity.md).
parity: $(BIN) data/fashion-mnist.h5
	@[ -n "$(PEER_FOUND)" ] || { echo "parity: needs PyTorch at $(PEER_PYTHON) (make peer)"; exit 2; }
	$(PEER_PYTHON) tools/trajectory.py --check --bits 4 --ste relu --eval 1000 --threads 1

# MARK: - Fuzzing ---------------------------------------------------------------------------------
# The parsers a user's input reaches (run ids, overrides, YAML grids; IDX, gzip, tar, CIFAR-10; HDF5) under
# libFuzzer (Sources/ste-fuzz). fuzz-check (in make test): the committed corpus and every input that once failed
# replayed through a plain build, the binary against seeded mutations of its inputs (scripts/test-fuzz-cli.sh),
# and a seeded, counted run of coverage-guided fuzzing per target; make fuzz: FUZZ_SECONDS of it per target.
FUZZ_TARGETS := runid-config decoders hdf5
FUZZ_SECONDS ?= 600
# make test's bounded run is seeded and counted, so that it is the same run on every machine (about 15-30 s a target).
FUZZ_CHECK_RUNS ?= 15000
FUZZ_LIMIT ?= -max_total_time=$(FUZZ_SECONDS)
FUZZ_BIN := .build/fuzz/release/ste-fuzz
$(FUZZ_BIN): $(SOURCES) | deps
	$(SWIFT) build -c release --product ste-fuzz --scratch-path .build/fuzz -Xswiftc -sanitize=fuzzer \
	  -Xswiftc -use-ld=lld -Xlinker --export-dynamic-symbol=LLVMFuzzerRunDriver
	@touch $@

fuzz-check: $(BIN) $(FUZZ_BIN)
	$(SWIFT) build -c release --product ste-fuzz
	@for t in $(FUZZ_TARGETS); do .build/release/ste-fuzz $$t Tests/Fuzz/corpus/$$t || exit 1; done
	scripts/test-fuzz-cli.sh
	@$(MAKE) --no-print-directory fuzz FUZZ_LIMIT="-seed=1 -runs=$(FUZZ_CHECK_RUNS)"

fuzz: $(FUZZ_BIN)
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; status=0; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $$work/$$t && cp $$(ls Tests/Fuzz/corpus/$$t/* | grep -v -- '-old\.h5$$') $$work/$$t/; \
	  SWIFT_BACKTRACE=enable=no $(FUZZ_BIN) $$t -- $(FUZZ_LIMIT) -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=$$work/$$t- $$work/$$t > $$work/$$t.log 2>&1 || status=1; \
	  runs=$$(grep -o 'number_of_executed_units: *[0-9]*' $$work/$$t.log | grep -o '[0-9]*$$' | tail -1); \
	  if ls $$work/$$t-* >/dev/null 2>&1; then \
	    mkdir -p Tests/Fuzz/found && cp $$work/$$t-* Tests/Fuzz/found/; status=1; \
	    echo "fuzz $$t: FAILED after $$runs inputs (kept in Tests/Fuzz/found/; add them to Tests/Fuzz/corpus/$$t once fixed)"; \
	    grep -E 'SUMMARY|Fatal error|ERROR' $$work/$$t.log | head -3; \
	  else echo "fuzz $$t: $$runs inputs ($(FUZZ_LIMIT)), no crash"; fi; \
	done; exit $$status

# MARK: - Data ----------------------------------------------------------------------------------
# The data sets are the registry's (Sources/Datasets/DatasetRegistry.swift): `ste fetch <name>` checks the raw files
# (getting missing ones where it can: a mirror, Debian's package, or a message saying where to put them) and
# `ste decode <name>` writes data/<name>.h5. Below, each data set's raw files, as make's prerequisites (the registry's
# rawDir and rawFiles; Tests/PipelineTests/MakefileDataTests.swift checks the two agree).

data/%.h5: | $(BIN)
	$(STE) fetch $*
	$(STE) decode $* --out $@

MNIST_RAW   := $(addprefix data/raw/mnist/,train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
FASHION_RAW := $(MNIST_RAW:data/raw/mnist/%=data/raw/fashion-mnist/%)
data/mnist.h5: $(MNIST_RAW)
data/fashion-mnist.h5: $(FASHION_RAW)
data/cifar10.h5: data/raw/cifar-10-binary.tar.gz

# Raw files that are not vendored: fetched (the CIFAR-10 archive where a network is reachable, else what to do).
$(FASHION_RAW): | $(BIN)
	$(STE) fetch fashion-mnist
data/raw/cifar-10-binary.tar.gz: | $(BIN)
	$(STE) fetch cifar10

fetch: $(BIN)
	$(STE) fetch mnist

data: data/mnist.h5

# MARK: - Theory experiments (Yin 2019, Long 2021, Gongyo 2021) ---------------------------------
THEORY_EXPERIMENTS := yin-fig1 yin-cgd yin-spurious long-synthetic long-mnist gongyo-scale gongyo-misspecified
THEORY_H5 := $(THEORY_EXPERIMENTS:%=results/theory/%.h5)
THEORY_MD := results/theory/REPORT-theory.md

theory: $(THEORY_MD)

# Each experiment writes results/theory/<name>.h5 plus <name>.md and <name>*.svg next to it.
results/theory/%.h5: experiments/theory/%.yaml | $(BIN)
	@mkdir -p $(@D)
	$(STE) theory $* --config $< --out $@ --threads $(THREADS)

results/theory/long-mnist.h5: data/mnist.h5

$(THEORY_MD): $(THEORY_H5) | $(BIN)
	$(STE) theory report --out $@

# MARK: - Schoenbauer et al. 2024 (custom weight-gradient estimators vs the mapped STE) ----------
# Each writes results/schoenbauer/<config>.h5 plus <config>.md and <config>-*.svg next to it.
# `make schoenbauer`: the simulation and the MNIST experiment on its ten-minute budget; `make schoenbauer-full`:
# the same MNIST experiment at an epoch per run (about an hour on 2 cores), reported beside it once it exists.
SCHOENBAUER_MNIST := results/schoenbauer/mnist.h5 results/schoenbauer/mnist-full.h5
SCHOENBAUER_H5    = $(SCHOENBAUER_BUDGET) $(wildcard results/schoenbauer/mnist-full.h5 results/schoenbauer/mnist-small-steps.h5)

SCHOENBAUER_BUDGET := results/schoenbauer/simulation.h5 results/schoenbauer/mnist.h5
schoenbauer: $(SCHOENBAUER_BUDGET)
schoenbauer-full: results/schoenbauer/mnist-full.h5

results/schoenbauer/simulation.h5: experiments/schoenbauer/simulation.yaml | $(BIN)
	@mkdir -p $(@D)
	$(STE) schoenbauer simulation --config $< --out $@ --threads 1

$(SCHOENBAUER_MNIST): results/schoenbauer/%.h5: experiments/schoenbauer/%.yaml data/mnist.h5 | $(BIN)
	@mkdir -p $(@D)
	$(STE) schoenbauer mnist --config $< --out $@ --threads $(THREADS)

# `make -j3 schoenbauer-small-steps`: the small-step SGD test (81 min on the 2-core VM, 3 processes), one process per seed on one
# thread each (results/schoenbauer/parts/), merged by --rescore into results/schoenbauer/mnist-small-steps.h5.
SMALL_STEPS        := experiments/schoenbauer/mnist-small-steps.yaml
SMALL_STEPS_SEEDS  := $(shell sed -n 's/^seeds: *\[\([0-9, ]*\)\].*/\1/p' $(SMALL_STEPS) | tr ',' ' ')
SMALL_STEPS_PARTS  := $(SMALL_STEPS_SEEDS:%=results/schoenbauer/parts/mnist-small-steps-s%.h5)
schoenbauer-small-steps: results/schoenbauer/mnist-small-steps.h5

results/schoenbauer/parts/mnist-small-steps-s%.h5: $(SMALL_STEPS) data/mnist.h5 | $(BIN)
	@mkdir -p $(@D)
	$(STE) schoenbauer mnist --config $< --out $@ --seeds $* --threads 1

results/schoenbauer/mnist-small-steps.h5: $(SMALL_STEPS_PARTS) | $(BIN)
	$(STE) schoenbauer mnist --config $(SMALL_STEPS) --out $@ $(addprefix --rescore ,$^) --threads 1

# MARK: - Pipeline (Yin et al. 2019 Table 1, Fig. 2 and Appendix C) ----------------------------------------

# The results folder and the paper's table come from the plan (the config's `results:` and `reference:`).
ROOT       = $(or $(PLAN_ROOT),$(if $(filter paper,$(PROFILE)),results,results/$(PROFILE)))
# SET="key.path=value …": overrides of the config (`ste --set`), e.g. SET="nets.lenet5.train.lr=0.05"; the runs
# then live in <root>/set-<overrides>/ with their own plan. `make sweep SWEEP=key.path=v1,v2,…` reproduces once per
# value (each a SET of its own, beside any SET given).
SET       ?=
SET_ID    := $(if $(strip $(SET)),-set-$(shell printf '%s' '$(strip $(SET))' | sha256sum | cut -c1-12))
PLAN      := .plan/$(notdir $(basename $(EXPERIMENT)))-$(PROFILE)$(SET_ID).mk
REFERENCE  = $(PLAN_REFERENCE)
DIFF       = $(if $(REFERENCE),$(STE) diff $(ROOT)/table1.csv $(REFERENCE),@echo "no paper table to diff against ($(EXPERIMENT))")
# The theory and Schoenbauer reports, appended to the paper profile's report.
# The main job (Table 1 at the paper protocol) also runs the theory and Schoenbauer experiments.
MAIN_JOB := $(and $(filter paper,$(PROFILE)),$(filter experiments/table1.yaml,$(EXPERIMENT)),$(if $(strip $(SET)),,yes))
REPORT_SECTIONS := $(if $(MAIN_JOB),--section $(THEORY_MD) $(foreach f,$(SCHOENBAUER_H5:.h5=.md),--section $(f)) \
  $(foreach f,$(THEORY_H5) $(SCHOENBAUER_H5),--claims $(f)))
GRID      := --config $(EXPERIMENT) --profile $(PROFILE) $(foreach s,$(SET),--set '$(s)')

# The plan (one rule per run, and config stamps) is generated from the grid by `ste plan`; it is
# only needed, and only built, for pipeline goals.
NON_PIPELINE_GOALS := help deps build test cuda-libs clean data fetch peer-found theory schoenbauer schoenbauer-full schoenbauer-small-steps sweep sweep-runs bench peer smoke-check data/mnist.h5 data/cifar10.h5 \
  data/fashion-mnist.h5 gpu-bundle gpu-check gpu-rehearsal
# `make -n …` is a dry run: make would still remake a missing or stale plan (and so build the binary and
# install packages), so a dry run reads the plan only if it exists and never remakes it.
DRY_RUN_MAKE := $(findstring n,$(firstword -$(MAKEFLAGS)))
ifneq ($(filter-out $(NON_PIPELINE_GOALS) results/theory/% results/schoenbauer/% data/raw/%,$(or $(MAKECMDGOALS),help)),)
ifneq ($(DRY_RUN_MAKE),)
ifneq ($(wildcard $(PLAN)),)
include $(PLAN)
else
$(info dry run: no plan yet: $(PLAN) is written by `ste plan` once the binary is built; `make build` and then `make -n reproduce` lists every run)
endif
else
include $(PLAN)
endif
endif

ifeq ($(DRY_RUN_MAKE),)
# A plan whose stamps are gone (a results folder deleted to start over) is written again, stamps included.
PLAN_STAMP_FILES := $(or $(PLAN_STAMPS),$(if $(PLAN_ROOT),$(patsubst %,$(PLAN_ROOT)/stamps/%.json,$(PLAN_PRETRAINS) $(PLAN_CELLS) $(PLAN_REPEL))))
PLAN_MISSING_STAMPS := $(filter-out $(wildcard $(PLAN_STAMP_FILES)),$(PLAN_STAMP_FILES))
$(PLAN): $(EXPERIMENT) $(BIN) $(wildcard data/raw/cifar-10-binary.tar.gz) $(if $(PLAN_MISSING_STAMPS),plan-stamps-missing)
	@mkdir -p $(@D)
	$(STE) plan $(GRID) --make $@
.PHONY: plan-stamps-missing
plan-stamps-missing:
	@echo "$(PLAN) names $(words $(PLAN_MISSING_STAMPS)) stamps that are gone: writing the plan again"
endif

# Cells are independent runs: on 2 cores, two 1-thread cells at once train faster than one 2-thread
# cell (LeNet-5's layers are too small to thread well; README "Performance"). JOBS cells run at once,
# each with REPRODUCE_THREADS threads; results are bit-identical for a given thread count.
JOBS              ?= $(shell nproc 2>/dev/null || echo 1)
REPRODUCE_THREADS ?= 1

# reproduce-started.txt (Unix time, code version): the report records how long the reproduction took.
# A reproduction recomputes what it reports: the main job deletes the committed theory and (budget) Schoenbauer
# results first, since a fresh clone's copies would count as up to date. The full-budget Schoenbauer result (an hour)
# is reused when present; the terminal says so and its report section names the code version that made it.
reproduce:
	@mkdir -p $(ROOT) && echo "$$(date +%s) $(STE_CODE_VERSION)" > $(ROOT)/reproduce-started.txt
	$(if $(MAIN_JOB),rm -f $(THEORY_H5) $(THEORY_MD) $(SCHOENBAUER_BUDGET))
	$(if $(and $(MAIN_JOB),$(wildcard results/schoenbauer/mnist-full.h5)),@echo "reusing results/schoenbauer/mnist-full.h5 (make schoenbauer-full reruns it, about an hour)")
	$(MAKE) --no-print-directory -j$(JOBS) THREADS=$(REPRODUCE_THREADS) reproduce-all

# The budget Schoenbauer experiment (about 10 min on one core) first, so that it runs beside the Table 1 cells instead
# of alone at the end; the short theory experiments last, to fill the other core.
reproduce-all: $(if $(MAIN_JOB),schoenbauer) $(PLAN_EVALS) $(if $(MAIN_JOB),theory)
	@$(if $(PLAN_SKIPPED),echo "not run ($(PLAN_ABSENT) absent; the report says how to get it): $(words $(PLAN_SKIPPED)) runs")
	$(STE) report $(GRID) $(REPORT_SECTIONS) $(if $(wildcard $(ROOT)/reproduce-started.txt),--reproduce-started $$(cut -d' ' -f1 $(ROOT)/reproduce-started.txt))
	$(DIFF)
	$(STE) verify $(ROOT)

# Every result file's checksums, every recorded input's content digest, every table against its runs
# (VERIFY=path … to check other folders); exit 1 when anything is broken, stale or missing.
VERIFY ?= results
verify: $(BIN)
	$(STE) verify $(VERIFY)

comma := ,
empty :=
space := $(empty) $(empty)
SWEEP_KEY    = $(firstword $(subst =, ,$(SWEEP)))
SWEEP_VALUES = $(subst $(comma), ,$(patsubst $(SWEEP_KEY)=%,%,$(SWEEP)))
SWEEP_ID     = $(shell printf '%s' '$(EXPERIMENT) $(PROFILE) $(strip $(SET)) $(SWEEP)' | sha256sum | cut -c1-12)
SWEEP_PLAN  ?=
# A sweep: every value's plan, then one make over the runs of all values (JOBS at once across values; a run that
# values share, such as a pretrain the swept key does not change, trained once: scripts/merge-plans.awk), then each
# value's report (its runs are done by then), and the sweep's table and figure.
sweep:
	@test -n "$(SWEEP_VALUES)" || { echo "usage: make sweep SWEEP=key.path=v1,v2,… [SET=…] [PROFILE=…] (e.g. SWEEP=nets.lenet5.train.lr=0.01,0.05)"; exit 2; }
	@mkdir -p .plan && rm -f .plan/sweep-$(SWEEP_ID).list
	$(foreach v,$(SWEEP_VALUES),$(MAKE) --no-print-directory plan-listed SET="$(strip $(SET) $(SWEEP_KEY)=$(v))" PLAN_LIST=.plan/sweep-$(SWEEP_ID).list && ) true
	awk -f scripts/merge-plans.awk $$(cat .plan/sweep-$(SWEEP_ID).list) > .plan/sweep-$(SWEEP_ID).mk
	$(MAKE) --no-print-directory -j$(JOBS) THREADS=$(REPRODUCE_THREADS) SWEEP_PLAN=.plan/sweep-$(SWEEP_ID).mk sweep-runs
	$(foreach v,$(SWEEP_VALUES),$(MAKE) --no-print-directory reproduce SET="$(strip $(SET) $(SWEEP_KEY)=$(v))" && ) true
	$(STE) sweep --config $(EXPERIMENT) --profile $(PROFILE) $(foreach s,$(SET),--set '$(s)') --key $(SWEEP_KEY) --values $(subst $(space),$(comma),$(strip $(SWEEP_VALUES)))

# Helpers of `make sweep`: a value's plan written (including it remakes it) and its path listed; the runs of every
# value, from the merged plans.
plan-listed:
	@echo $(PLAN) >> $(PLAN_LIST)
ifneq ($(SWEEP_PLAN),)
include $(SWEEP_PLAN)
sweep-runs: $(SWEEP_EVALS)
endif

RUN_KIND = $(if $(findstring -from-,$(RUN)),repel,$(if $(shell echo '$(RUN)' | grep -E -- '-a[0-9]+-'),runs,pretrain))
# One cell is rerun at the reproduction's thread count, so that it gives the committed number bit for bit (results
# depend on the thread count: the order of floating-point sums); THREADS=n on the command line asks for another, said.
RUN_THREADS = $(if $(filter command line environment,$(origin THREADS)),$(THREADS),$(REPRODUCE_THREADS))
run:
	@test -n "$(RUN)" || { echo "usage: make run RUN=<run id>, e.g. RUN=lenet5-a2-clipped-s0"; exit 2; }
	@$(if $(filter $(RUN),$(PLAN_PRETRAINS) $(PLAN_CELLS) $(PLAN_REPEL)),true,\
	  { echo "error: $(RUN) is not a run of $(EXPERIMENT) (profile $(PROFILE))$(if $(filter $(RUN),$(PLAN_SKIPPED)),: it needs a data set that is absent here ($(PLAN_ABSENT)),). Its runs: $(wordlist 1,4,$(PLAN_CELLS)) … (make -n reproduce lists them)"; exit 2; })
	@$(if $(filter-out $(REPRODUCE_THREADS),$(RUN_THREADS)),echo "note: $(RUN) at THREADS=$(RUN_THREADS) and not at the reproduction's $(REPRODUCE_THREADS): its numbers will differ from the committed ones in the last digits or more (the thread count is recorded in its files)",true)
	$(MAKE) --no-print-directory THREADS=$(RUN_THREADS) $(ROOT)/$(RUN_KIND)/$(RUN)/eval.h5

# Reads the eval/history files as they are: no prerequisites on the runs, so a clone with the committed
# results (but no checkpoints) rebuilds the report without retraining anything.
report: | $(BIN)
	$(STE) report $(GRID) $(REPORT_SECTIONS)

diff: | $(BIN)
	$(DIFF)

# Every run of the plan (SEED=n: of that seed only) without the report: a campaign's runs (scripts/campaign.sh).
runs: $(if $(SEED),$(filter %-s$(SEED)/eval.h5,$(PLAN_EVALS)),$(PLAN_EVALS))

# The repel runs (Fig. 2, Appendix C) and what they start from, then the report.
repel: $(filter $(ROOT)/repel/%,$(PLAN_EVALS))
	$(STE) report $(GRID) $(REPORT_SECTIONS)

# End-to-end check run by `make test`: the whole pipeline on the smoke profiles, from scratch: Table 1 (LeNet-5,
# MNIST) and the Fashion-MNIST transfer (VGG-11 and ResNet-20 with their repel runs, real data, tiny subsets).
smoke-check: | $(BIN)
	rm -rf results/smoke .plan/table1-smoke*.mk
	$(MAKE) --no-print-directory reproduce PROFILE=smoke
	@for f in results/smoke/REPORT.md results/smoke/table1.csv results/smoke/figures/table1-lenet5.svg results/smoke/figures/repel-fig2.svg results/smoke/figures/repel-appendix-c.svg; do \
	  test -s $$f || { echo "smoke-check: $$f missing"; exit 1; }; done
	# One cell rerun on its own gives the number the reproduction reported (verify compares runs.csv with its eval.h5).
	rm -rf results/smoke/runs/lenet5-a2-identity-s0
	$(MAKE) --no-print-directory run PROFILE=smoke RUN=lenet5-a2-identity-s0
	$(STE) verify results/smoke >/dev/null || { $(STE) verify results/smoke | grep -v '^intact'; echo "smoke-check: the rerun cell differs from the reproduction's"; exit 1; }
	# The machine-readable views: status, plan and inspect as JSON that parses, with what they must hold.
	$(STE) status --profile smoke --no-queue --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert all(r["state"] == "done" for r in d), d'
	$(STE) plan --profile smoke --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0]["configuration"]["net"] == "lenet5", d[0]'
	$(STE) report --profile smoke --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["cells"]) == 6, d["cells"]'
	$(STE) inspect results/smoke/runs/lenet5-a2-clipped-s0/eval.h5 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["checksums"]["verified"] > 0 and d["attributes"]["stage"] == "eval", d["checksums"]'
	@echo "smoke-check: 2 passed, 0 failed (the pipeline; one cell rerun on its own reproduces the report's number; status, plan, report and inspect as JSON)"
	# A new STE (beyond the paper's three) through overrides, in a folder of its own: every table, figure and diff
	# shows it, and the paper runs above are untouched. Then a sweep of one key writes one folder per value.
	$(MAKE) --no-print-directory reproduce PROFILE=smoke SET="stes=[identity,relu,clipped,log-tailed]" JOBS=2
	@r=results/smoke/set-stes-identityreluclippedlog-tailed; \
	  grep -q '^mnist,lenet5,2,log-tailed,' $$r/table1.csv && grep -q '| log-tailed |.*not in the paper' $$r/REPORT.md \
	  && grep -q 'log-tailed STE' $$r/figures/table1-lenet5.svg && grep -q ',train,mnist,lenet5,4,log-tailed,' $$r/runs.csv \
	  && $(STE) diff $$r/table1.csv experiments/reference/yin2019-table1.csv | grep -q 'log-tailed.*not in the paper' \
	  && $(STE) diff results/smoke/table1.csv $$r/table1.csv | grep -q 'log-tailed.*only in B' \
	  && ! grep -q log-tailed results/smoke/table1.csv \
	  || { echo "smoke-check: the log-tailed STE added by SET is missing from a table, figure or diff of $$r"; exit 1; }
	$(MAKE) --no-print-directory sweep PROFILE=smoke SWEEP=nets.lenet5.train.lr=0.02,0.2 JOBS=2
	@for v in 0.02 0.2; do grep -q "\"lr\":$$v" results/smoke/set-nets.lenet5.train.lr-$$v/stamps/lenet5-a2-clipped-s0.json \
	  && test -s results/smoke/set-nets.lenet5.train.lr-$$v/REPORT.md || { echo "smoke-check: sweep value $$v missing"; exit 1; }; done
	@plan=$$(ls -t .plan/sweep-*.mk | head -1); test $$(grep -c '^results/smoke/pretrain/lenet5-s0/checkpoint.h5:' $$plan) = 1 \
	  && test $$(grep '^SWEEP_EVALS += ' $$plan | wc -l) = 2 || { echo "smoke-check: $$plan does not hold both values' runs with the shared pretrain once"; exit 1; }
	@test $$(grep -c '^nets.lenet5.train.lr,0.\(02\|2\),mnist,lenet5,' results/smoke/sweep-nets.lenet5.train.lr.csv) = 12 \
	  && test -s results/smoke/sweep-nets.lenet5.train.lr.svg || { echo "smoke-check: the sweep's table or figure is missing or incomplete"; exit 1; }
	@echo "smoke-check: overrides and sweeps passed (a new STE in every table, figure and diff; one folder per swept value, their runs from one merged plan, one table and figure for the sweep)"
	rm -rf results/fashion/smoke .plan/fashion-smoke.mk
	$(MAKE) --no-print-directory reproduce EXPERIMENT=experiments/fashion.yaml PROFILE=smoke
	@for f in results/fashion/smoke/REPORT.md results/fashion/smoke/table1.csv results/fashion/smoke/figures/repel-fig2.svg results/fashion/smoke/figures/repel-appendix-c.svg; do \
	  test -s $$f || { echo "smoke-check: $$f missing"; exit 1; }; done
	@# Each repel run's start is a dotted line in the run's own colour, without a text label to cover the curves.
	@python3 -c 'import re,sys; s=open(sys.argv[1]).read(); d=set(re.findall(r"stroke=\"(#[0-9a-f]+)\" stroke-width=\"1\" stroke-dasharray=\"2,3\"", s)); \
	  c=set(re.findall(r"<polyline [^>]*stroke=\"(#[0-9a-f]+)\"", s)); assert d and d <= c and ">start: " not in s, (sys.argv[1], d, c)' \
	  results/fashion/smoke/figures/repel-fig2.svg || { echo "smoke-check: the repel figure does not draw each start in its run's colour"; exit 1; }
	@test $$(grep -c '^fashion-mnist,\(vgg11\|resnet20\),' results/fashion/smoke/table1.csv) = 12 || { echo "smoke-check: results/fashion/smoke/table1.csv lacks the 12 deep-net cells"; exit 1; }
	@echo "smoke-check: 2 passed, 0 failed (Table 1 on MNIST; VGG-11 and ResNet-20 on Fashion-MNIST)"

# MARK: - Benchmark ------------------------------------------------------------------------------
# Our train/eval throughput next to the PyTorch peer kept in the repository (tools/peer/ste_torch.py),
# eager and under torch.compile, in the same run, interleaved per net and batch size (the VM drifts by
# 10-20 %): LeNet-5 at batch 64 (the paper's Table 2) and 128, the CIFAR nets at 128. Without PyTorch the
# recorded eager baseline of tools/peer/README.md stands in (batch 128 only).
PEER        ?= tools/peer/ste_torch.py
PEER_PYTHON ?= $(HOME)/.venv-peer/bin/python
# The peer's Python: a path or a command on PATH (python3), runnable.
PEER_FOUND   = $(shell command -v '$(PEER_PYTHON)' >/dev/null 2>&1 && echo yes)
peer-found:
	@echo $(if $(PEER_FOUND),yes,no)
# DEVICE=cuda: our CUDA engine and the peer on the same GPU (--device cuda), the peer eager and under
# torch.compile(mode="reduce-overhead", CUDA graphs), at the Table 2 batch sizes (LeNet-5 64, the others 128).
PEER_COMPILE ?= $(if $(filter cuda,$(DEVICE)),reduce-overhead,default)
BENCH_NETS  ?= lenet5 resnet20 vgg11
BENCH_ROUNDS ?= 2
BENCH_BATCHES_lenet5 = $(if $(filter cuda,$(DEVICE)),64,64 128)
BENCH_DEVICE = $(if $(filter cuda,$(DEVICE)),--device cuda)

# Rounds interleave ours, eager PyTorch and compiled PyTorch per net and batch; the summary pools every
# repetition of every round.
bench: $(BIN)
	@mkdir -p results/bench && rm -f results/bench/*.json
	@for round in $$(seq 1 $(BENCH_ROUNDS)); do for net in $(BENCH_NETS); do \
	  for batch in $$(case $$net in lenet5) echo $(BENCH_BATCHES_lenet5);; *) echo 128;; esac); do \
	  echo "== round $$round: $$net, batch $$batch"; \
	  $(STE) bench --nets $$net --batch $$batch --threads $(THREADS) $(BENCH_DEVICE) --json results/bench/ste-$$net-b$$batch-r$$round.json | grep "^| $$net" | sed 's/^/ours     /'; \
	  if [ -n "$(PEER_FOUND)" ]; then \
	    $(PEER_PYTHON) $(PEER) --threads $(THREADS) $(BENCH_DEVICE) --nets $$net --batches $$batch --reps 3 \
	      --json results/bench/torch-$$net-b$$batch-r$$round.json | grep "^| $$net" | sed 's/^/eager    /'; \
	    $(PEER_PYTHON) $(PEER) --threads $(THREADS) $(BENCH_DEVICE) --nets $$net --batches $$batch --reps 3 --compile $(PEER_COMPILE) \
	      --json results/bench/torchc-$$net-b$$batch-r$$round.json | grep "^| $$net" | sed 's/^/compiled /'; \
	  fi; done; done; done
	@[ -n "$(PEER_FOUND)" ] || echo "PyTorch peer not runnable here ($(PEER_PYTHON); \`make peer\` installs it): ratios use the recorded eager baseline of tools/peer/README.md"
	@$(STE) bench --summary results/bench --threads $(THREADS) | tee results/bench/SUMMARY.md

# The PyTorch peer's environment (torch, numpy, h5py from PyPI; the default Linux wheel pulls about 4 GB of CUDA
# libraries, which the CPU benchmark does not use).
peer: $(PEER_PYTHON)
$(PEER_PYTHON):
	python3 -m venv $(HOME)/.venv-peer
	$(HOME)/.venv-peer/bin/pip install --quiet torch numpy h5py || { rm -rf $(HOME)/.venv-peer; exit 1; }

# The GPU machine has no Swift toolchain and none of the Debian libraries: a binary with the Swift runtime linked in
# and the libraries it loads, compressed (scripts/gpu-bundle.sh; about 20 MiB). scripts/gpu-check.sh runs the
# CUDA engine's checks there with it.
gpu-bundle: gpu/bundle.tar.xz
gpu/bundle.tar.xz: $(SOURCES) | deps
	$(SWIFT) build -c release --product ste --static-swift-stdlib --scratch-path .build/static
	scripts/gpu-bundle.sh .build/static/release/ste $@

# On a GPU machine with the bundle in gpu/: the engine's checks, a smoke pipeline on the GPU, the benchmark.
gpu-check:
	scripts/gpu-check.sh

# That check rehearsed here (scripts/gpu-rehearsal.sh): the same script and bundle, in a sandbox without network,
# installers, Swift or this project's libraries, against a host stand-in for the NVIDIA libraries (tools/cuda-standin).
# About 8 minutes on 2 cores after the bundle's build; logs in gpu/rehearsal/.
gpu-rehearsal: gpu/bundle.tar.xz
	scripts/gpu-rehearsal.sh

# Deletes the build (a release build from scratch takes about 6 minutes on 2 cores), the plans, the smoke results
# and the GPU bundle; results of real runs stay.
clean:
	@echo "make clean: deleting .build (rebuilding takes about 6 min on 2 cores), .plan, results/smoke, gpu"
	rm -rf .build .plan results/smoke gpu

include mk/slurm.mk
