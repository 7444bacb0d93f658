# The README's two commands: `make demo` and `make test`. Both install first when needed.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_CONFIG := configs/toy_bev_seg_demo.py
DEMO_DIR    := work_dirs/demo
PYTEST_ARGS ?=

.PHONY: install demo test lint format clean

install: $(STAMP)

$(STAMP): scripts/install.sh requirements/constraints.txt requirements/runtime.txt requirements/dev.txt setup.py
	bash scripts/install.sh

demo: install
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)
	$(PY) tools/test.py $(DEMO_CONFIG) $(DEMO_DIR)/epoch_8.pth --work-dir $(DEMO_DIR)
	@echo "metrics: $(DEMO_DIR)/test_metrics.json" && cat $(DEMO_DIR)/test_metrics.json

# pytest exits 5 when it collected nothing; say so instead of a bare make error.
test: install
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$rc

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) work_dirs
