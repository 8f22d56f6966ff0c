"""The exported module's training against `fit` on arrays, for one and the same configuration.

In the quality benchmark (`quality.py`) autoprep's row trains its exported module (a tf.data
pipeline read from the image files), while the hand rows call `model.fit` on NumPy arrays.
When autoprep chooses exactly a hand row's configuration, the two rows differ only by that
training path: the order in which images are drawn (a seeded tf.data shuffle against Keras'
own shuffling of arrays). This script measures that difference with many training seeds:
rescaling to [0,1] and inverse-frequency class weights, the same CNN, epochs, batch size and
initial weights per seed (`quality.cnn(..., seed)`), on the quality benchmark's folders. A
third path, a plain `tf.data` shuffle of the same arrays (no autoprep), tells a difference of
autoprep's pipeline from one between Keras' array input and `tf.data` input.

Usage:
    python benchmarks/training_paths.py [--folders gray_textures color_patches]
                                        [--seeds 20] [--out results/training_paths]
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import quality  # noqa: E402
from synthetic import command, machine, save  # noqa: E402

CONFIG = dict(normalization="rescale_01", flip="none", rotation=0.0, zoom=0.0, translation=0.0,
              contrast=0.0, brightness=0.0, policy="none", imbalance="inverse_frequency")


def exported_module(train_dir, workdir):
    """The exported module of the fixed configuration (a one-trial search to fit it)."""
    import autoprep

    result = autoprep.tune(quality.model_fn, train_dir, max_trials=1, epochs=1,
                           batch_size=quality.BATCH_SIZE, test_split=0, baseline=False, seed=0,
                           verbose=0, directory=workdir, project_name="fixed", reevaluate=0,
                           space=autoprep.SearchSpace(**CONFIG))
    return result.export(os.path.join(workdir, "pipeline.py"))


def measure(name, seeds, epochs, workdir) -> dict:
    import tensorflow as tf

    _, build = quality.folder_specs(False)[name]
    train_dir, data, _ = quality.prepare(name, build, workdir)
    x_train, y_train, x_test, y_test, classes = data
    path = exported_module(train_dir, os.path.join(workdir, name))
    weights = quality.class_weights(y_train, classes)
    arrays, plain, exported = [], [], []
    for seed in range(seeds):
        model = quality.compile_model(quality.cnn(x_train.shape[1:], classes, seed))
        model.fit(x_train / 255, y_train, batch_size=quality.BATCH_SIZE, epochs=epochs,
                  verbose=0, class_weight=weights)
        arrays.append(quality.scores(y_test, quality.predict(model, x_test / 255)))
        model = quality.compile_model(quality.cnn(x_train.shape[1:], classes, seed))
        dataset = tf.data.Dataset.from_tensor_slices((x_train / 255, y_train)).shuffle(
            len(y_train), seed=seed).batch(quality.BATCH_SIZE)
        model.fit(dataset, epochs=epochs, verbose=0, class_weight=weights)
        plain.append(quality.scores(y_test, quality.predict(model, x_test / 255)))
        module = quality.load_module(path, f"training_paths_{name}_{seed}")
        paths, labels = module.list_files(train_dir)
        dataset = module.make_train_dataset(paths, labels, batch_size=quality.BATCH_SIZE,
                                            seed=seed)
        model = quality.compile_model(quality.cnn(x_train.shape[1:], classes, seed))
        model.fit(dataset, epochs=epochs, verbose=0, **module.FIT_KWARGS)
        images = module.preprocess(x_test.astype(np.uint8))
        exported.append(quality.scores(y_test, quality.predict(model, images)))
        del sys.modules[module.__name__]
    out = {"arrays": quality.summary(arrays), "tf_data": quality.summary(plain),
           "exported": quality.summary(exported)}
    for name, runs in (("tf_data", plain), ("exported", exported)):
        diff = np.array([r["balanced_accuracy"] - a["balanced_accuracy"]
                         for a, r in zip(arrays, runs)])
        out[f"{name}_minus_arrays"] = {"per_seed": diff.round(4).tolist(),
                                       "mean": float(diff.mean()),
                                       "standard_error": float(diff.std(ddof=1)
                                                               / np.sqrt(len(diff)))}
    return out


def render(result) -> str:
    lines = [
        "# Training paths: the exported module against `fit` on arrays, same configuration",
        "",
        f"Configuration: [0,1] + inverse-frequency class weights, no augmentation; the quality "
        f"benchmark's CNN, {result['epochs']} epochs, batch {quality.BATCH_SIZE}, training seeds "
        f"0-{result['seeds'] - 1} (each seed: the same initial weights on every path). Test "
        "balanced accuracy, mean ± std over the seeds; the differences from `fit` on arrays are "
        "taken seed by seed (mean ± standard error).",
        "",
        "| folder | `fit` on arrays | `tf.data` shuffle of the arrays | exported module | "
        "`tf.data` - arrays | exported - arrays |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in result["folders"].items():
        cells = [f"{row[k]['balanced_accuracy']['mean']:.3f} ± "
                 f"{row[k]['balanced_accuracy']['std']:.3f}"
                 for k in ("arrays", "tf_data", "exported")]
        cells += [f"{row[k]['mean']:+.3f} ± {row[k]['standard_error']:.3f}"
                  for k in ("tf_data_minus_arrays", "exported_minus_arrays")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", nargs="*", default=["gray_textures", "color_patches"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default="results/training_paths")
    args = parser.parse_args(argv)
    result = {"command": command(), "seeds": args.seeds, "epochs": args.epochs, "folders": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.folders:
            result["folders"][name] = measure(name, args.seeds, args.epochs, workdir)
    result["machine"] = machine()
    print(save(args.out, result, render(result)), end="")


if __name__ == "__main__":
    main()
