# The dsd commands that wrote this folder, run inside it (scripts/study_alternates.py).
# population.parquet = the baseline's rows of ../cifar10/population.parquet (sweep regnetx-cifar10-s0)
# + the rows `dsd export-population regnetx_inverted-cifar10-s0 regnetx_dwise-cifar10-s0 regnetx_swish-cifar10-s0 --store study.sqlite --recipe nds --dataset cifar10` writes, with study.runs.jsonl
# prefix.parquet = its rows of the baseline and of variant models with index < 12 (all finished)
cd "$(dirname "$0")"
rm -f compare.txt
dsd summarize prefix.parquet -o SUMMARY.md --notes NOTES.md
dsd edf regnetx-cifar10-s0 regnetx_inverted-cifar10-s0 regnetx_dwise-cifar10-s0 regnetx_swish-cifar10-s0 --population prefix.parquet -o edf.png
dsd compare regnetx-cifar10-s0 regnetx_inverted-cifar10-s0 --population prefix.parquet --normalize none,flops,params,acts --bins 3 >> compare.txt
dsd compare regnetx-cifar10-s0 regnetx_dwise-cifar10-s0 --population prefix.parquet --normalize none,flops,params,acts --bins 4 >> compare.txt
dsd compare regnetx-cifar10-s0 regnetx_swish-cifar10-s0 --population prefix.parquet --normalize none,flops,params,acts --bins 3 >> compare.txt
