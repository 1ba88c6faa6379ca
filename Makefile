# Every figure and number in the READMEs comes from one of these targets.
PY ?= python

.PHONY: test figures speed ablation links bench all
test:
	$(PY) -m pytest

figures:            ## docs/rewards.png, docs/agent.gif, bench/results/default_run.md
	$(PY) bench/figures.py

speed:              ## bench/results/speed.md: dqn.py vs the blog's literal code (and SB3 if installed)
	$(PY) bench/speed.py

ablation:           ## bench/results/ablation.md and the per-configuration CSVs and PNGs
	$(PY) bench/ablation.py

links:              ## point the READMEs' dqn.py#L links at the right lines
	$(PY) bench/readme_links.py

bench: figures speed ablation

all: bench links test
