# Every figure and number in the READMEs and docs/ comes from one of these targets.
PY ?= python

.PHONY: test fuzz lint notebooks figures speed notebook-speed references ablation why resume-cost tune extension-cost pixels links bench all
test:
	$(PY) -m pytest

fuzz:               ## a long, randomly seeded run of the shared-run-folder fuzzing (tests/test_shared_folder.py)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/test_shared_folder.py -k "any_field or any_checkpoint_field" -p no:cacheprovider

notebooks:          ## dqn.ipynb and dqn.zh-CN.ipynb from dqn.py and notebooks/*.md
	$(PY) notebooks/build.py

lint:               ## ruff: the lint rules and the formatting in pyproject.toml
	ruff check .
	ruff format --check .

figures:            ## docs/rewards.png, docs/agent.gif, docs/learning.gif, bench/results/default_run.md, docs/pixel_view.png
	$(PY) bench/figures.py
	$(PY) bench/pixel_view.py

speed:              ## bench/results/speed.md: dqn.py vs the blog's literal code (and SB3 if installed)
	$(PY) bench/speed.py

notebook-speed:     ## bench/results/notebook_speed.md: dqn.ipynb's training cell vs python dqn.py
	$(PY) bench/notebook_speed.py

references:         ## beyond/reference_runs/*.json and docs/reference_bands.png: the runs a learner's run is placed among (resumes)
	$(PY) bench/reference_runs.py blog tuned pixels tuned-Acrobot-v1 --figure

ablation:           ## bench/results/ablation.md and ablation.png: every row judged on seeds 0-9 (resumes)
	$(PY) bench/ablation.py

why:                ## bench/results/why_dqn.md and its figures: replay/target-net ablation, value estimates (resumes)
	$(PY) bench/why_dqn.py

resume-cost:        ## prints resume.pt's size and its write and read times, each preset's memory full
	$(PY) bench/resume_cost.py

tune:               ## bench/results/tune.db, tune_trials.csv, tune_best.json: the study behind --preset tuned (resumes)
	$(PY) bench/tune.py --n-jobs 2

extension-cost:     ## bench/results/extension_cost.md: env steps/s with each extension flag
	$(PY) bench/extension_cost.py

pixels:             ## bench/results/pixel_protocol*: the screens and the protocol of docs/pixels.md (hours; resumes)
	for v in close-up track track-nstep3 track-nstep3-per track-nstep3-shaped; do \
		$(PY) bench/pixel_protocol.py --variant $$v --seeds 100-101 --budget 250000 || exit 1; done
	$(PY) bench/pixel_protocol.py --seeds 200-207
	$(PY) bench/pixel_protocol.py --table
	$(PY) bench/pixel_speed.py
	$(PY) bench/pixel_view.py

links:              ## point the dqn.py#L and beyond/*.py#L links of the READMEs and docs/ at the right lines
	$(PY) bench/readme_links.py

bench: figures speed notebook-speed extension-cost tune ablation why pixels references

all: bench links lint test
