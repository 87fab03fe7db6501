# Slurm scale-out (included by the Makefile). `make slurm` writes the grid's unfinished runs as job
# arrays (one task = the same `make <root>/<folder>/<id>/eval.h5` a local run makes) and submits them;
# `make slurm-status` shows every run's state; `make slurm-report` is what the last job runs.
# Settings: experiments/slurm.yaml (SLURM_YAML=...), overridden by the variables below, e.g.
#   make slurm PROFILE=paper PARTITION=gpu ACCOUNT=abc123 WALLTIME="resnet20=1-00:00:00 vgg11=2-00:00:00" \
#        CPUS_PER_TASK=8 MEM=16G GPUS_PER_TASK=0 MAX_TASKS=8 SBATCH_EXTRA="--qos=long" PREAMBLE="module load hdf5"
#   make slurm PROFILE=smoke DRY_RUN=1     (print the scripts; submit nothing)
SLURM_YAML ?= experiments/slurm.yaml

SLURM_FLAGS = --slurm-config $(SLURM_YAML) \
  $(if $(PARTITION),--partition '$(PARTITION)') \
  $(if $(ACCOUNT),--account '$(ACCOUNT)') \
  $(foreach t,$(WALLTIME),--time '$(t)') \
  $(if $(CPUS_PER_TASK),--cpus-per-task $(CPUS_PER_TASK)) \
  $(if $(MEM),--mem '$(MEM)') \
  $(if $(GPUS_PER_TASK),--gpus-per-task $(GPUS_PER_TASK)) \
  $(if $(MAX_TASKS),--max-concurrent $(MAX_TASKS)) \
  $(foreach o,$(SBATCH_EXTRA),--sbatch '$(o)') \
  $(if $(PREAMBLE),--preamble '$(PREAMBLE)') \
  $(if $(DRY_RUN),--dry-run) \
  --make-vars 'PROFILE=$(PROFILE) CONFIG=$(CONFIG) THREADS=$(THREADS) EXPERIMENT=$(EXPERIMENT)' \
  --old-files '$(BIN) $(PLAN)'

# Data is decoded here, once, before any job starts: the data files of the planned runs (CIFAR-10 only when its
# archive is present).
SLURM_DATA = $(PLAN_DATA)

.PHONY: slurm slurm-status slurm-report
slurm: $(PLAN) $(if $(DRY_RUN),,$(SLURM_DATA)) | $(BIN)
	@test -z "$(strip $(SET))" || { echo "error: make slurm does not take SET yet: put the overrides in a profile's set: list (experiments/*.yaml) and use PROFILE=<it>"; exit 2; }
	$(STE) plan $(GRID) --slurm $(SLURM_FLAGS)

slurm-status: | $(BIN)
	@$(STE) status $(GRID)

# The report job: the report and diff commands of `make reproduce`, over the runs that finished,
# then the status table (failed cells show there; the job does not fail because of them).
slurm-report: $(if $(MAIN_JOB),theory) | $(BIN)
	$(STE) report $(GRID) $(REPORT_SECTIONS)
	$(DIFF)
	@$(STE) status $(GRID)
