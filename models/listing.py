"""``python -m models list``: every registered model with its cost and measured quality."""
from __future__ import annotations

import argparse
import json
from importlib import resources

from .registry import get_spec, load_metadata, macs_per_pixel, model_names


def card(name: str) -> dict:
    """The model card shipped beside the weights (models/weights/NAME.json), or {}."""
    path = resources.files("models") / "weights" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models list", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    rows = []
    for name in model_names():
        spec = get_spec(name)
        model = spec.build()
        c = card(name)
        meta = load_metadata(name)
        rows.append({
            "name": name, "tier": spec.tier, "temporal": spec.temporal,
            "params": sum(t.numel() for t in model.parameters()),
            "gmac_per_mp": round(macs_per_pixel(name) / 1000, 2),  # MAC/px -> GMAC/MP
            "psnr_cbsd68": c.get("cbsd68_psnr", {}),
            "trained": meta.get("status") == "trained",
            "summary": spec.summary,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<15}{'tier':<10}{'params':>10}{'GMAC/MP':>9}  {'CBSD68 PSNR sigma 15/25/50 (dB)':<34}trained")
    for r in rows:
        ps = r["psnr_cbsd68"]
        cells = " / ".join(f"{ps[s]:.2f}" if s in ps else "-" for s in ("15", "25", "50")) if ps else "not measured"
        print(f"{r['name']:<15}{r['tier']:<10}{r['params']:>10,}{r['gmac_per_mp']:>9.2f}  {cells:<34}{'yes' if r['trained'] else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
