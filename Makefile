# dsd — two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
# Developers and CI keep CIFAR-10 in ../shared/data; real users get ~/.cache/dsd (downloaded).
DSD_DATA ?= $(if $(wildcard ../shared/data/cifar10/cifar-10-batches-py),$(abspath ../shared/data),)
export DSD_DATA
DEMO := demo

.PHONY: install demo test test-all bench example-figure reproduce clean

install:
	$(PY) -m pip install -q -e '.[dev]'

demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	dsd spaces
	dsd info regnetx-400mf
	dsd sample --space anynetxc --n 8 --dataset cifar10 --flops 13MF --seed 0 --name demo-xc --store $(DEMO)/dsd.sqlite
	dsd sample --space regnetx --n 8 --dataset cifar10 --flops 13MF --seed 0 --name demo-rx --store $(DEMO)/dsd.sqlite
	dsd show --store $(DEMO)/dsd.sqlite
	dsd show demo-rx --top 5 --store $(DEMO)/dsd.sqlite

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
