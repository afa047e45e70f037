# dsd — two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
# Developers and CI keep CIFAR-10 in ../shared/data; real users get ~/.cache/dsd (downloaded).
DSD_DATA ?= $(if $(wildcard ../shared/data/cifar10/cifar-10-batches-py),$(abspath ../shared/data),)
export DSD_DATA
DEMO := demo

.PHONY: install demo test test-all bench example-figure reproduce clean

install:
	$(PY) -m pip install -q -e '.[dev]'

# The main job end to end on CPU in a few minutes: sample two spaces at a small budget, train
# each model 1 epoch on a CIFAR-10 subset, compare the error EDFs, write a report.
demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	dsd spaces
	dsd info regnetx-400mf --dataset cifar10
	dsd sample --space anynetxa --n 6 --dataset cifar10 --flops 12MF --seed 0 --name demo-xa --store $(DEMO)/dsd.sqlite
	dsd sample --space regnetx --n 6 --dataset cifar10 --flops 12MF --seed 0 --name demo-rx --store $(DEMO)/dsd.sqlite
	dsd train --epochs 1 --subset 4000 --test-subset 1000 --store $(DEMO)/dsd.sqlite
	dsd status --store $(DEMO)/dsd.sqlite
	dsd show demo-rx --top 3 --store $(DEMO)/dsd.sqlite
	dsd edf --compare demo-xa demo-rx -o $(DEMO)/edf.png --store $(DEMO)/dsd.sqlite
	dsd report demo-xa demo-rx -o $(DEMO)/report.html --store $(DEMO)/dsd.sqlite
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
