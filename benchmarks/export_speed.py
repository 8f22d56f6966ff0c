"""How fast the exported module's training dataset feeds a model: part 2 of
benchmarks/search_cost.py alone, without the searches (issue 17, section 3).

Usage:
    python benchmarks/export_speed.py [--config results/search_cost.json] [--images 4000]
                                      [--repeats 3] [--epochs 6] [--dir DIR]
                                      [--out results/export_speed]
    python benchmarks/export_speed.py --render results/export_speed  # the page from its JSON

The configuration is the search's winner recorded by search_cost.py (`--config`), fitted again
on each folder; the protocol and the table are search_cost.py's (`throughput`): the exported
module's `make_datasets(..., seed=0)[0]`, batch 32, in images/s for the first epoch (listing,
decoding and caching included) and in steady state (the median of the later epochs), against
tf.data decode-only and cached uint8 tensors measured in the same run on the same files, best
of `--repeats`. The load average is recorded before and after each folder.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from search_cost import git_commit, throughput, throughput_section  # noqa: E402
from synthetic import command, machine, save, write_folder  # noqa: E402

from autoprep.data.demo import write_digits_folder  # noqa: E402


def winner(path) -> tuple:
    """(the configuration search_cost.py's first search chose, its epochs), from its JSON."""
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    config = result["throughput"][0]["config"]
    return config, result["settings"]["epochs"]


def measured(root, config, workdir, name, args, search_epochs) -> dict:
    before = list(os.getloadavg())
    figures = throughput(root, config, workdir, name, epochs=args.epochs,
                         repeats=args.repeats, search_epochs=search_epochs)
    return dict(figures, load_average_start=before)


def page(result) -> str:
    loads = "; ".join(
        f"{figures['folder']}: {figures['load_average_start'][0]:.1f} before, "
        f"{figures['load_average_end'][0]:.1f} after" for figures in result["throughput"])
    return (f"# The exported module's training dataset (issue 17, section 3)\n\n"
            f"Measured at commit {result['commit']}, with the configuration the demo's search "
            f"chose (`{result['config_from']}`), fitted on each folder. Load average "
            f"(1 minute): {loads}.\n\n"
            + throughput_section(result["throughput"]).split("\n", 2)[2].replace(
                "decoding the training images once", "decoding every image, training and "
                "validation, once")
            + result.get("notes", ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="results/search_cost.json",
                        help="search_cost.py's JSON: the configuration its search chose")
    parser.add_argument("--images", type=int, default=4000,
                        help="synthetic 64x64 PNGs (0: the digits only)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--dir", help="folder for the synthetic images (kept)")
    parser.add_argument("--out", default="results/export_speed")
    parser.add_argument("--render", metavar="OUT", help="write OUT.md again from OUT.json")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render + ".json", encoding="utf-8") as handle:
            result = json.load(handle)
        return print(save(args.render, result, page(result)))
    config, search_epochs = winner(args.config)
    with tempfile.TemporaryDirectory() as workdir:
        digits = write_digits_folder(os.path.join(workdir, "digits"))
        figures = [measured(digits, config, workdir, "the demo's digits", args, search_epochs)]
        if args.images:
            root = write_folder(args.dir or os.path.join(workdir, "synthetic"), args.images)
            figures.append(measured(root, config, workdir, "synthetic PNGs", args,
                                    search_epochs))
    result = {"benchmark": "export_speed", "commit": git_commit(), "config_from": args.config,
              "config": config, "settings": vars(args), "throughput": figures,
              "machine": machine(), "command": command()}
    print(save(args.out, result, page(result)))


if __name__ == "__main__":
    main()
