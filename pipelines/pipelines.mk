# pipelines.mk - one make target per pipeline file, for make-driven runs.
#
#   include pipelines/pipelines.mk
#   make -j4 pipelines           # every pipelines/*.yaml, concurrently
#   make pipeline-docs           # one of them
#
# Different pipelines run concurrently (each takes its own advisory lock);
# two runs of the same pipeline never interleave: the second waits.  A
# failing pipeline fails make with kbpipe's exit status (1 failure, 2 invalid
# pipeline, 3 finished with rejected inputs).  Each run writes its JSON report
# to $(KBPIPE_REPORT_DIR)/NAME.json.

KBPIPE            ?= bin/kbpipe
KBPIPE_FLAGS      ?= -q
KBPIPE_REPORT_DIR ?= build/reports
PIPELINE_FILES    ?= $(filter-out pipelines/seed-dev.yaml,$(wildcard pipelines/*.yaml))
PIPELINE_NAMES    := $(basename $(notdir $(PIPELINE_FILES)))

.PHONY: pipelines $(addprefix pipeline-,$(PIPELINE_NAMES))

pipelines: $(addprefix pipeline-,$(PIPELINE_NAMES))

$(addprefix pipeline-,$(PIPELINE_NAMES)): pipeline-%: pipelines/%.yaml
	@mkdir -p $(KBPIPE_REPORT_DIR)
	$(KBPIPE) run $< $(KBPIPE_FLAGS) --report $(KBPIPE_REPORT_DIR)/$*.json
