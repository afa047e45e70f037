"""Make docs/edf_example.png: an example EDF figure drawn by dsd itself.

ILLUSTRATIVE SYNTHETIC DATA. The models are real samples of the design spaces (dsd.sample, CIFAR-10
layout, default complexity window), but their "errors" come from a formula of the spec plus
noise (dsd.analysis.synthetic.FORMULA), not from training. The store is written through the
normal API with synthetic=True, and the figure says "synthetic data (illustrative only)".

    python scripts/example_figure.py [--out docs/edf_example.png] [--n 200] [--keep STORE]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from dsd.analysis import compare, plots, synthetic
from dsd.analysis.selection import select
from dsd.store import Store

SPACES = ("anynetxa", "anynetxc", "anynetxe", "regnetx")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/edf_example.png")
    ap.add_argument("--n", type=int, default=200, help="models per space")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="write the synthetic store here instead of a temp file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "synthetic.sqlite"
        db = synthetic.demo_store(Store(path), SPACES, n=args.n, seed=args.seed)
        sel = select(db, SPACES, synthetic=True)
        print(sel.summary())
        data = compare.edf_data(sel.data, band=True, seed=args.seed)
        fig = plots.plot_edf(data, title=f"error EDFs, n = {args.n} models per space")
        out = plots.save(fig, args.out, dpi=150)
        print(data.summary.to_string(index=False))
        print(data.ks.to_string(index=False))
        print(f"wrote {out}")
        db.close()


if __name__ == "__main__":
    main()
