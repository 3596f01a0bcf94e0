# pipelines.mk - one make target per pipeline file, for make-driven runs.
#
#   include pipelines/pipelines.mk
#   make -j4 pipelines           # every pipeline of PIPELINE_FILES, concurrently
#   make pipeline-docs           # one of them
#   make -j4 shard-1 shard-2 shard-3 shard-4    # SHARD_PIPELINE in SHARDS parts
#
# Different pipelines run concurrently (each takes its own advisory lock);
# two runs of the same pipeline never interleave: the second waits.  A
# failing pipeline fails make: GNU make prints
#   make: *** [pipelines/pipelines.mk:NN: pipeline-NAME] Error S
# with S kbpipe's exit status (1 failure, 2 invalid pipeline, 3 finished
# with rejected inputs), and make itself exits 2 (make's status for a failed
# target, whatever S was).  Each run writes its JSON report to
# $(KBPIPE_REPORT_DIR)/NAME.json (shards: NAME.shard-K.json).
#
# Settings (make VAR=value): KBPIPE (the binary), KBPIPE_FLAGS, KBPIPE_REPORT_DIR,
# PIPELINE_FILES (any paths; the target is pipeline-<file name without .yaml>),
# SHARD_PIPELINE and SHARDS.

KBPIPE            ?= bin/kbpipe
KBPIPE_FLAGS      ?= -q
KBPIPE_REPORT_DIR ?= build/reports
PIPELINE_FILES    ?= $(filter-out pipelines/seed-dev.yaml,$(wildcard pipelines/*.yaml))
PIPELINE_NAMES    := $(basename $(notdir $(PIPELINE_FILES)))
SHARD_PIPELINE    ?= pipelines/docs.yaml
SHARDS            ?= 4
SHARD_TARGETS     := $(addprefix shard-,$(shell seq 1 $(SHARDS)))

.PHONY: pipelines $(addprefix pipeline-,$(PIPELINE_NAMES)) $(SHARD_TARGETS)

pipelines: $(addprefix pipeline-,$(PIPELINE_NAMES))

# pipeline-NAME depends on its file, wherever PIPELINE_FILES says it is
$(foreach f,$(PIPELINE_FILES),$(eval pipeline-$(basename $(notdir $(f))): $(f)))

$(addprefix pipeline-,$(PIPELINE_NAMES)):
	@mkdir -p $(KBPIPE_REPORT_DIR)
	$(KBPIPE) run $(firstword $(filter %.yaml %.yml,$^)) $(KBPIPE_FLAGS) --report $(KBPIPE_REPORT_DIR)/$(@:pipeline-%=%).json

$(SHARD_TARGETS): $(SHARD_PIPELINE)
	@mkdir -p $(KBPIPE_REPORT_DIR)
	$(KBPIPE) run $(SHARD_PIPELINE) --shard $(@:shard-%=%)/$(SHARDS) $(KBPIPE_FLAGS) --report $(KBPIPE_REPORT_DIR)/$(basename $(notdir $(SHARD_PIPELINE))).$@.json
