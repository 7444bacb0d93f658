# The README's two commands: `make demo` and `make test`. Both install first when needed.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_CONFIG := configs/m3net/m3net_nuscenes_demo.py
DEMO_DIR    := work_dirs/demo
DEMO_DATA   := data/synthetic_nuscenes
DEMO_EPOCHS := 12
PYTEST_ARGS ?=

.PHONY: install demo test lint format clean

install: $(STAMP)

$(STAMP): scripts/install.sh requirements/constraints.txt requirements/runtime.txt requirements/dev.txt setup.py
	bash scripts/install.sh

# M3Net at demo size (camera + LiDAR; detection, map segmentation, occupancy; FULLER): generate the
# synthetic nuScenes-format data once (~2.5 min), train on both cores (two single-thread processes over
# gloo), evaluate mini_val once with tools/test.py (the training run skips its own end-of-schedule
# validation) and print the headline metrics.
demo: install
	@test -f $(DEMO_DATA)/nuscenes_dbinfos_train.pkl || $(PY) tools/create_data.py synthetic --out-dir $(DEMO_DATA)
	OMP_NUM_THREADS=1 $(VENV)/bin/torchrun --nproc-per-node 2 tools/train.py $(DEMO_CONFIG) --launcher pytorch \
		--work-dir $(DEMO_DIR) --cfg-options val_dataloader=None val_cfg=None val_evaluator=None
	OMP_NUM_THREADS=2 $(PY) tools/test.py $(DEMO_CONFIG) $(DEMO_DIR)/epoch_$(DEMO_EPOCHS).pth --work-dir $(DEMO_DIR)
	@$(PY) -c "import json; m = json.load(open('$(DEMO_DIR)/test_metrics.json')); \
	print('  '.join(f'{k}: {m[k]:.4f}' for k in ('nuscenes_det/mAP', 'nuscenes_det/NDS', 'map/mIoU', 'occ/mIoU') if k in m))"
	@echo "all metrics: $(DEMO_DIR)/test_metrics.json"

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
