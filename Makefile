# dsd — two commands on a fresh machine: `make demo` and `make test`.
# An active virtual environment ($$VIRTUAL_ENV) is used as it is; otherwise make creates and uses
# a project venv .venv (so a system Python that forbids pip installs, PEP 668, is never touched).
PYTHON3 ?= $(shell command -v python3.11 || command -v python3)
ifdef VIRTUAL_ENV
PY ?= $(VIRTUAL_ENV)/bin/python
else
PY ?= .venv/bin/python
endif
DSD := $(PY) -m dsd
# Developers and CI keep CIFAR-10 in ../shared/data; real users get ~/.cache/dsd (downloaded).
DSD_DATA ?= $(if $(wildcard ../shared/data/cifar10/cifar-10-batches-py),$(abspath ../shared/data),)
export DSD_DATA
DEMO := demo

.PHONY: install demo test test-all bench example-figure reproduce clean

install: $(filter .venv/bin/python,$(PY))
	$(PY) -m pip install -q -e '.[dev]'

.venv/bin/python:
	$(PYTHON3) -m venv .venv || { rm -rf .venv; echo "make: cannot create .venv with $(PYTHON3)"\
	  "(Debian/Ubuntu: apt install python3-venv), or activate a venv and rerun"; exit 1; }

# The main job end to end on CPU in a few minutes: sample two spaces at a small budget, train
# each model 1 epoch on a CIFAR-10 subset, compare the error EDFs, write a report.
demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(DSD) spaces
	$(DSD) info regnetx-400mf --dataset cifar10
	$(DSD) sample --space anynetxa --n 6 --dataset cifar10 --flops 12MF --seed 0 --name demo-xa --store $(DEMO)/dsd.sqlite
	$(DSD) sample --space regnetx --n 6 --dataset cifar10 --flops 12MF --seed 0 --name demo-rx --store $(DEMO)/dsd.sqlite
	$(DSD) train --epochs 1 --subset 4000 --test-subset 1000 --store $(DEMO)/dsd.sqlite
	$(DSD) status --store $(DEMO)/dsd.sqlite
	$(DSD) show demo-rx --top 3 --store $(DEMO)/dsd.sqlite
	$(DSD) edf --compare demo-xa demo-rx -o $(DEMO)/edf.png --store $(DEMO)/dsd.sqlite
	$(DSD) report demo-xa demo-rx -o $(DEMO)/report.html --store $(DEMO)/dsd.sqlite
	@echo "demo: figures and report in $(DEMO)/"

test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m ''

bench: install
	$(PY) scripts/bench_sample.py

example-figure: install
	$(PY) scripts/example_figure.py

# The CIFAR-10 study of issue 6 (GPUs; resumable): ARGS="--max-time 9m" runs one chunk.
reproduce: install
	$(PY) scripts/reproduce_cifar10.py $(if $(DSD_DATA),--data-dir $(DSD_DATA),) $(ARGS)

clean:
	rm -rf $(DEMO) build dist *.egg-info .pytest_cache
