# The dsd commands that wrote this folder from population.parquet, run inside it
# (by scripts/reproduce_cifar10.py). The Parquet file comes from the study's store:
# dsd fit anynetxa-cifar10-s0 anynetxb-cifar10-s0 anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --store STORE
# dsd export-population anynetxa-cifar10-s0 anynetxb-cifar10-s0 anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --store STORE --recipe nds --dataset cifar10 --runs RUNS -o population.parquet
cd "$(dirname "$0")"
dsd summarize population.parquet -o SUMMARY.md --notes NOTES.md
dsd report anynetxa-cifar10-s0 anynetxb-cifar10-s0 anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --population population.parquet -o report.html
dsd edf anynetxa-cifar10-s0 anynetxb-cifar10-s0 anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --population population.parquet -o edf.png
dsd edf anynetxa-cifar10-s0 anynetxb-cifar10-s0 anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --population population.parquet --normalize flops --bins 20 -o edf_flops.png
dsd search-efficiency anynetxa-cifar10-s0 anynetxb-cifar10-s0 anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --population population.parquet -o search_efficiency.png
dsd analyze anynetxb-cifar10-s0 anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --population population.parquet --param b -o params_b.png
dsd analyze anynetxc-cifar10-s0 anynetxd-cifar10-s0 anynetxe-cifar10-s0 regnetx-cifar10-s0 regnety-cifar10-s0 --population population.parquet --param g -o params_g.png
dsd analyze regnetx-cifar10-s0 regnety-cifar10-s0 --population population.parquet --param wm --param d -o params_regnet.png
