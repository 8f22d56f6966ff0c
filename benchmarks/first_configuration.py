"""The search's first configuration and its selection rule, measured (issue 15).

The selection keeps the search's first configuration unless another beats it beyond the noise,
so the first configuration must be a strong default on every kind of data. This script
measures candidates for it and candidate selection rules on two kinds of folders:

- real photos (benchmarks/real_photos.py's folders, at 64x64), and
- the small folders of benchmarks/quality.py (8x8 to 16x16, scikit-learn's images),

with the protocol of those benchmarks (outer stratified split, training part only, 5 training
seeds, test balanced accuracy). Folders are split into those the decision is made on and those
held out from it (`DECISION`, `HELD_OUT`), reported apart.

- `--part configs`: fixed configurations trained as a trial trains them (autoprep's live
  pipeline, `real_photos.pipeline_row`): [0,1] or z-score (per_channel), with or without
  light augmentation (the flip the class mean images allow, zoom and translation at their
  light level, optionally contrast), the imbalance strategy chosen from the class counts as
  the search's seeds choose it. With the data facts the search's seeds read.
- `--part searches`: autoprep's search (search seeds 0 and 1), its exported module scored as
  in real_photos.py, and every configuration its selection re-evaluated scored on the test
  part too; `--render` then replays selection rules on the recorded candidates.

    python benchmarks/first_configuration.py --part configs --photos PHOTOS
    python benchmarks/first_configuration.py --part searches --photos PHOTOS
    python benchmarks/first_configuration.py --render results/first_configuration.json
"""

import argparse
import dataclasses
import json
import os
import shlex
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quality  # noqa: E402
import real_photos  # noqa: E402

PHOTO_FOLDERS = ("ants_bees", "weather", "trashnet", "food4", "brain_mri")
SMALL_FOLDERS = ("digits_ir10", "digits_ir100", "gray_textures", "color_patches")
DECISION = ("ants_bees", "weather", "trashnet", "digits_ir10", "digits_ir100", "gray_textures")
HELD_OUT = ("food4", "brain_mri", "color_patches")
LIGHT = (("zoom", 0.05), ("translation", 0.05))  # the light level of the light-seed ops
CONFIGS = {  # name -> (normalization, light augmentation, contrast)
    "[0,1]": ("rescale_01", False, False),
    "z-score": ("per_channel", False, False),
    "[0,1] + light aug": ("rescale_01", True, False),
    "z-score + light aug": ("per_channel", True, False),
    "z-score + light aug + contrast": ("per_channel", True, True),
}


def settings_of(name):
    """Photos: real_photos.py's settings; small folders: quality.py's epochs and trials."""
    if name in SMALL_FOLDERS:
        small = quality.Settings()
        return real_photos.Settings(trials=small.trials, epochs=small.epochs,
                                    train_seeds=small.train_seeds)
    return real_photos.Settings()


def prepare_small(name, workdir) -> real_photos.Prepared:
    """A quality.py folder written as PNG class folders: its training and its test part."""
    description, build = quality.folder_specs(smoke=False)[name]
    images, labels, class_names = build()
    train, test = quality.outer_split(labels)
    train_dir = quality.write_folder(os.path.join(workdir, name, "train"), images[train],
                                     labels[train], class_names)
    test_dir = quality.write_folder(os.path.join(workdir, name, "test"), images[test],
                                    labels[test], class_names)
    facts = {"class_names": class_names, "description": description, "images": len(labels),
             "train_counts": np.bincount(labels[train]).tolist(),
             "test_counts": np.bincount(labels[test]).tolist()}
    return real_photos.Prepared(train_dir, test_dir, facts)


def facts_of(data) -> dict:
    """The data facts the search's seeds read, on the training part."""
    from autoprep.search.space import data_facts

    x_train, y_train, _, _, classes = data
    return {**data_facts(x_train, y_train, classes)._asdict(),
            "image_size": list(x_train.shape[1:3]), "train_images": len(y_train)}


def imbalance_for(ratio) -> str:
    """The imbalance strategy the search's first configuration takes from the class counts."""
    return "inverse_frequency" if ratio >= 4 else "sqrt_inverse" if ratio >= 1.5 else "none"


def config_of(name, facts) -> dict:
    normalization, light, contrast = CONFIGS[name]
    ops = []
    if light:
        if facts["flip"] != "none":
            ops.append({"name": "flip", "mode": facts["flip"]})
        ops += [{"name": op, "intensity": level} for op, level in LIGHT]
    if contrast:
        ops.append({"name": "contrast", "intensity": 0.1})
    return {"normalization": {"name": normalization}, "augmentation": ops,
            "imbalance": {"name": imbalance_for(facts["imbalance_ratio"])}}


def run_configs(name, prepared, settings, done, image_size, configs=tuple(CONFIGS)):
    data = real_photos.decoded(prepared, image_size)
    facts = facts_of(data)
    done(name, {"facts": facts})
    for config_name in configs:
        config = config_of(config_name, facts)
        started = time.monotonic()
        result = real_photos.pipeline_row(config, data, settings)
        result["config"] = config
        _say(f"{name:14s} {config_name:32s} {quality._cell(result, 'balanced_accuracy')} "
             f"({time.monotonic() - started:.0f} s)")
        done(name, {"configs": {config_name: result}})


def run_searches(name, prepared, settings, done, image_size, workdir, seeds):
    for seed in seeds:
        started = time.monotonic()
        result = real_photos.autoprep_row(prepared, image_size, settings,
                                          os.path.join(workdir, name, f"search{seed}"), seed,
                                          candidates=True)
        _say(f"{name:14s} autoprep (search seed {seed}) "
             f"{quality._cell(result, 'balanced_accuracy')} ({time.monotonic() - started:.0f} s)")
        done(name, {"searches": {str(seed): result}})


# --------------------------------------------------------------------------- the rules


def rule_first_unless_beaten(pool):
    """The rule before this study: the first configuration within noise of the best mean wins,
    else the simplest within noise."""
    best = max(pool, key=lambda c: c["mean"])
    near = [c for c in pool if best["mean"] - c["mean"] <= c["noise"]]
    first = next((c for c in near if c["default"]), None)
    return first or min(near, key=lambda c: (c["complexity"], -c["mean"]))


def rule_best_mean(pool):
    return max(pool, key=lambda c: c["mean"])


def rule_simplest_within_noise(pool):
    """The one-standard-error rule with no place for the first configuration."""
    best = max(pool, key=lambda c: c["mean"])
    near = [c for c in pool if best["mean"] - c["mean"] <= c["noise"]]
    return min(near, key=lambda c: (c["complexity"], -c["mean"]))


RULES = {
    "first unless beaten beyond the noise": rule_first_unless_beaten,
    "best mean": rule_best_mean,
    "simplest within the noise": rule_simplest_within_noise,
}


def replay(search) -> dict:
    """{rule: test balanced accuracy of the configuration it picks} for one search's pool."""
    pool = search["selection"]["candidates"]
    if not all("test" in c for c in pool):
        return {}
    return {rule: choose(pool)["test"]["balanced_accuracy"]["mean"]
            for rule, choose in RULES.items()}


# --------------------------------------------------------------------------- the page


def render(report) -> str:
    folders = report["folders"]
    lines = []
    for group, names in (("decision folders", DECISION), ("held-out folders", HELD_OUT)):
        names = [n for n in names if n in folders and "configs" in folders[n]]
        if not names:
            continue
        lines += [f"**Fixed configurations, {group}**: test balanced accuracy (mean ± std over "
                  "training seeds)", "", "| configuration | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for config in CONFIGS:
            cells = [quality._cell(folders[n]["configs"][config], "balanced_accuracy")
                     if config in folders[n]["configs"] else "-" for n in names]
            lines.append(f"| {config} | " + " | ".join(cells) + " |")
        lines.append("| image size, training images | " + " | ".join(
            f"{'x'.join(map(str, folders[n]['facts']['image_size']))}, "
            f"{folders[n]['facts']['train_images']}" for n in names) + " |")
        lines.append("| flip the mean images allow | " + " | ".join(
            folders[n]["facts"]["flip"] for n in names) + " |")
        lines.append("")
    replays = [(n, seed, search, replay(search)) for n, folder in folders.items()
               for seed, search in folder.get("searches", {}).items()]
    if replays:
        lines += ["**Selection rules replayed** on each search's re-evaluated candidates "
                  "(test balanced accuracy of the configuration each rule picks; the search's "
                  "own pick is the exported row):", "",
                  "| folder | search seed | exported (autoprep) | " + " | ".join(RULES) + " |",
                  "|---|---|---|" + "---|" * len(RULES)]
        for name, seed, search, picked in replays:
            cells = [f"{picked[r]:.3f}" if picked else "-" for r in RULES]
            lines.append(f"| {name} | {seed} | "
                         f"{quality._cell(search, 'balanced_accuracy')} | " + " | ".join(cells)
                         + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("configs", "searches"))
    parser.add_argument("--photos", metavar="DIR", help="as real_photos.py's --photos")
    parser.add_argument("--folders", nargs="*", default=list(PHOTO_FOLDERS + SMALL_FOLDERS))
    parser.add_argument("--configs", nargs="*", choices=list(CONFIGS), default=list(CONFIGS),
                        help="with --part configs: only these configurations")
    parser.add_argument("--search-seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--out", default="results/first_configuration.json")
    parser.add_argument("--render", metavar="JSON")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render) as handle:
            print(render(json.load(handle)), end="")
        return None
    root = args.photos or os.environ.get(real_photos.ENVIRONMENT)
    report = {"folders": {}}
    if os.path.exists(args.out):
        with open(args.out) as handle:
            report = json.load(handle)
    report.setdefault("runs", []).append({
        "command": "python benchmarks/first_configuration.py " + shlex.join(
            sys.argv[1:] if argv is None else argv),
        "autoprep_commit": quality._commit(), "load_average": list(os.getloadavg()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})

    def done(name, unit):
        real_photos._merge(report["folders"].setdefault(name, {}), unit)
        real_photos._write_json(args.out, report)

    with tempfile.TemporaryDirectory() as workdir:
        for name in args.folders:
            settings = settings_of(name)
            if name in SMALL_FOLDERS:
                prepared, image_size = prepare_small(name, workdir), None
            else:
                prepared = real_photos.prepare(name, root, workdir, settings)
                image_size = real_photos.SMALL_SIZE
            done(name, {**prepared.facts, "settings": dataclasses.asdict(settings)})
            if args.part == "configs":
                run_configs(name, prepared, settings, done, image_size, args.configs)
            else:
                run_searches(name, prepared, settings, done, image_size, workdir,
                             args.search_seeds)
    print(render(report), end="")
    return report


def _say(text):
    print(f"{time.strftime('%H:%M:%S')} {text}  [load {os.getloadavg()[0]:.1f}]", flush=True)


if __name__ == "__main__":
    main()
