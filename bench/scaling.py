"""The scaling-law lab of lesson 08 as a benchmark: train a ladder of model sizes on the real
TinyStories text, fit the power law and Chinchilla's L(N, D), and write what they pick for
``cpu-quick``'s budget to docs/benchmarks.md.

    python bench/scaling.py [--profile quick|full]

The quick ladder is the lesson's (five rungs, 300 updates each: a few minutes on 2 cores; runs the
lesson trained are reused from the cache); the full one adds cpu-quick's own shape and one above it
and trains five times longer (an hour or more on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import markdown_table, write_section  # noqa: E402
from slm_course.lessons import scaling  # noqa: E402
from slm_course.model import GPT  # noqa: E402
from slm_course.presets import preset  # noqa: E402
from slm_course.runtime import shared_data_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(scaling.LADDERS), default="quick")
    args = parser.parse_args()
    if not os.environ.get("SLM_TINYSTORIES"):
        shared = shared_data_dir()
        if shared is None:
            sys.exit("bench/scaling.py needs real TinyStories: set SLM_TINYSTORIES or keep ../shared/data/")
        os.environ["SLM_TINYSTORIES"] = str(shared / "TinyStories-train.subset.txt")

    curves = scaling.train_ladder(args.profile)
    min_tokens = scaling.transient_tokens()
    front = scaling.frontier(curves, min_tokens=min_tokens)
    power = scaling.fit_power_law(front.compute, front.val_bpb)
    n, d, y = scaling.ladder_points(curves, min_tokens=min_tokens)
    law = scaling.fit_scaling_law(n, d, y)
    rms = float(np.sqrt(np.mean((y - law(n, d)) ** 2)))

    model_config, train_config = preset("cpu-quick")
    n_quick = GPT(model_config).num_params()
    d_quick = scaling.run_tokens(train_config, model_config.block_size)
    budget = scaling.training_compute(n_quick, d_quick)
    picks = [p for p in scaling.leave_one_out(curves, budget, min_tokens).values() if p is not None]
    try:
        n_star, d_star = (float(v) for v in law.optimal(budget))
        pick = (f"N* = **{n_star / 1e6:.2f}M** parameters on D* = {d_star / 1e6:.1f}M tokens "
                f"({d_star / n_star:.0f} tokens per parameter)")
    except ValueError as error:
        pick = f"no optimum: {error}"
    spread = (f"{min(picks) / 1e6:.2f}M to {max(picks) / 1e6:.2f}M with each rung left out in turn"
              if picks else "no leave-one-out fit has an optimum")

    rows = [[c.label, f"{c.n_params / 1e6:.3f}M", f"{c.tokens[-1] / 1e6:.2f}M", f"{c.compute[-1]:.2e}",
             f"{c.train_seconds[-1]:.0f} s", f"{c.val_bpb[-1]:.3f}"] for c in curves]
    body = (
        f"## Scaling-law lab (`{args.profile}` ladder, CPU)\n\n"
        f"Stories: {curves[0].source}. Every rung is a cpu-quick model trained on the same tokens at a "
        f"constant learning rate after warmup (lesson 08 explains why); compute is 6·N·D.\n\n"
        + markdown_table(["rung", "N", "D", "C (FLOPs)", "training", "final val bits/byte"], rows)
        + f"\n\n- frontier power law: L = {power.scale:.3f} · C^{power.exponent:.4f} "
        f"(ten times the compute: loss x {10 ** power.exponent:.3f})\n"
        f"- Chinchilla fit over {len(y)} evaluations: L(N, D) = {law.irreducible:.3f} + {law.a:.3g}/N^{law.alpha:.3f} "
        f"+ {law.b:.3g}/D^{law.beta:.3f} (rms error {rms:.4f} bits/byte)\n"
        f"- for cpu-quick's budget, {budget:.2e} FLOPs: {pick}; the pick ranges {spread}\n"
        f"- cpu-quick itself: N = {n_quick / 1e6:.2f}M on D = {d_quick / 1e6:.2f}M tokens "
        f"({d_quick / n_quick:.0f} tokens per parameter)\n"
    )
    print(body)
    write_section(f"scaling_{args.profile}", body)


if __name__ == "__main__":
    main()
