"""The Gaussian process's fit in a Bayesian proposal: scikit-learn's against autoprep's.

Usage:
    python benchmarks/gp_fit.py [--problems 60] [--out results/gp_fit]

Keras Tuner's Bayesian oracle fits its `GaussianProcessRegressor` (a Matern kernel with one
length scale) before every proposal. scikit-learn maximizes the log marginal likelihood by
L-BFGS-B from the kernel's start and 20 log-uniform restarts; autoprep (`tuners._fit`)
evaluates the likelihood on a log grid of the length scale's bounds, then runs L-BFGS-B once
from the grid's best point. On `--problems` synthetic searches (seed 7: n trials of d
hyperparameters in the unit cube, n from 20 to 199 and d from 3 to 24; the score a peak of
random width and place, a ripple and noise of random size), each regressor comes from a
Keras Tuner oracle (its settings, its seed) and is fitted both ways. Reported per problem:
the likelihood each fit reached, whether the acquisition's best of 4,096 uniform candidates
(Keras Tuner's `mean - beta * std`) is the same point, and the seconds of each fit (BLAS on
one thread, as in a proposal).
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SAME = 1e-6  # likelihoods closer than this are the same optimum


def problem(rng) -> tuple:
    """(x, y): one synthetic search's trials and scores to minimize."""
    n, d = int(rng.integers(20, 200)), int(rng.integers(3, 25))
    noise, width = float(rng.choice([0.01, 0.1, 0.3, 1.0])), float(rng.choice([1, 5, 20, 80]))
    x = rng.uniform(size=(n, d))
    used = min(d, 4)
    centre = rng.uniform(size=used)
    y = (-np.exp(-width * ((x[:, :used] - centre) ** 2).sum(axis=1))
         + 0.3 * np.sin(6 * x[:, 0]) + noise * rng.normal(size=n))
    return x, y


def compare(number, x, y) -> dict:
    import keras_tuner as kt
    import sklearn.base
    from threadpoolctl import threadpool_limits

    from autoprep.search import tuners

    oracle = kt.oracles.BayesianOptimizationOracle(
        objective=kt.Objective("score", "min"), max_trials=1, seed=number)
    candidates = np.random.default_rng(number).uniform(size=(4096, x.shape[1]))
    fits = {}
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # length scales at their bounds
        for name, fit in (("scikit-learn", lambda gpr: gpr.fit(x, y)),
                          ("autoprep", lambda gpr: tuners._fit(gpr, x, y))):
            start = time.perf_counter()
            fitted = fit(sklearn.base.clone(oracle.gpr))
            seconds = time.perf_counter() - start
            mean, std = fitted.predict(candidates, return_std=True)
            fits[name] = {"seconds": seconds,
                          "likelihood": float(fitted.log_marginal_likelihood_value_),
                          "length_scale": float(fitted.kernel_.length_scale),
                          "best": int(np.argmin(mean - oracle.beta * std))}
    theirs, ours = fits["scikit-learn"], fits["autoprep"]
    return {"problem": number, "trials": len(x), "dimensions": x.shape[1], "fits": fits,
            "gain": ours["likelihood"] - theirs["likelihood"],
            "same_best": theirs["best"] == ours["best"]}


def summary(rows) -> dict:
    gains = np.array([r["gain"] for r in rows])
    late = [r for r in rows if r["trials"] >= 150]
    return {
        "problems": len(rows),
        "same_optimum": int((np.abs(gains) <= SAME).sum()),
        "higher": int((gains > SAME).sum()), "lower": int((gains < -SAME).sum()),
        "same_best_candidate": sum(r["same_best"] for r in rows),
        "different_best_and_same_optimum": sum(
            not r["same_best"] and abs(r["gain"]) <= SAME for r in rows),
        "seconds": {name: float(np.mean([r["fits"][name]["seconds"] for r in rows]))
                    for name in ("scikit-learn", "autoprep")},
        "seconds_150_trials_or_more": {
            name: float(np.mean([r["fits"][name]["seconds"] for r in late])) if late else None
            for name in ("scikit-learn", "autoprep")},
    }


def page(result) -> str:
    s = result["summary"]
    rows = "\n".join(
        f"| {r['problem']} | {r['trials']} | {r['dimensions']} | "
        f"{r['fits']['scikit-learn']['likelihood']:.4f} | "
        f"{r['fits']['autoprep']['likelihood']:.4f} | "
        f"{r['fits']['scikit-learn']['length_scale']:.3g} | "
        f"{r['fits']['autoprep']['length_scale']:.3g} | {'yes' if r['same_best'] else 'no'} | "
        f"{r['fits']['scikit-learn']['seconds']:.3f} | {r['fits']['autoprep']['seconds']:.3f} |"
        for r in result["rows"])
    late = s["seconds_150_trials_or_more"]
    return (
        "# The Gaussian process's fit in a Bayesian proposal (issue 17, section 1)\n\n"
        + __doc__.split("\n\n", 2)[2].replace("\n", " ") + "\n\n"
        f"Of {s['problems']} problems, autoprep's fit reached the same likelihood (within "
        f"{SAME:g}) in {s['same_optimum']}, a higher one in {s['higher']} and a lower one in "
        f"{s['lower']}. The acquisition's best candidate was the same in "
        f"{s['same_best_candidate']}; where it differed, the likelihoods differed too in all "
        f"but {s['different_best_and_same_optimum']}. Seconds per fit, mean: scikit-learn "
        f"{s['seconds']['scikit-learn']:.3f}, autoprep {s['seconds']['autoprep']:.3f}"
        + (f"; with 150 trials or more: {late['scikit-learn']:.3f} and {late['autoprep']:.3f}"
           if late["autoprep"] is not None else "") + ".\n\n"
        "| problem | trials | dimensions | likelihood, scikit-learn | likelihood, autoprep | "
        "length scale, scikit-learn | length scale, autoprep | same best candidate | "
        "s, scikit-learn | s, autoprep |\n|" + "---|" * 10 + "\n" + rows + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=60)
    parser.add_argument("--out", default="results/gp_fit")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    rows = [compare(number, *problem(rng)) for number in range(args.problems)]
    result = {"benchmark": "gp_fit", "summary": summary(rows), "rows": rows,
              "machine": machine(), "command": command()}
    print(save(args.out, result, page(result)))


if __name__ == "__main__":
    main()
