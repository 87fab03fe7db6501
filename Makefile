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
ifeq ($(filter $(PROFILE),paper smoke),)
  $(error PROFILE must be paper or smoke, got '$(PROFILE)')
endif

BIN := .build/$(CONFIG)/ste
STE := $(BIN)
# Recorded in every output file (Storage.codeVersion).
export STE_CODE_VERSION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- Sources Package.swift 2>/dev/null || echo -dirty)
export STE_THREADS := $(THREADS)

DEB_PACKAGES := libhdf5-dev zlib1g-dev libopenblas-dev libdnnl-dev pkg-config hdf5-tools

.PHONY: all deps build test reproduce data fetch theory bench report diff run fig2 clean help
.DEFAULT_GOAL := help

help:
	@echo "make reproduce   data -> pretrain -> train -> eval -> report -> diff (MNIST rows by default)"
	@echo "make test        build and run every test (includes the smoke pipeline)"
	@echo "make run RUN=lenet5-a2-clipped-s0   one cell;  make report;  make diff;  make theory;  make bench"
	@echo "Variables: PROFILE=paper|smoke THREADS=$(THREADS) CONFIG=$(CONFIG)"

# MARK: - Setup ---------------------------------------------------------------------------------

# Installs the Debian packages when one is missing (the machine user is root; sudo otherwise).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build -c $(CONFIG)

$(BIN): build

test: deps
	$(SWIFT) build -c $(CONFIG)
	$(SWIFT) test
	$(MAKE) --no-print-directory smoke-check

# MARK: - Data ----------------------------------------------------------------------------------

MNIST_RAW := $(addprefix data/raw/mnist/,train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

fetch: build
	$(STE) fetch mnist

data/mnist.h5: $(MNIST_RAW) | build
	$(STE) fetch mnist
	$(STE) decode mnist --raw-dir data/raw/mnist --out $@

data/raw/cifar-10-binary.tar.gz:
	@$(STE) fetch cifar10 || true

data/cifar10.h5: | build
	$(STE) fetch cifar10
	$(STE) decode cifar10 --archive data/raw/cifar-10-binary.tar.gz --out $@

data: data/mnist.h5

clean:
	rm -rf .build .plan
