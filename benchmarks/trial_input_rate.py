"""Trial input rate against the demo model's own step rate, at 32x32 and 128x128.

Usage:
    python benchmarks/trial_input_rate.py [--repeats 2] [--out results/trial_input_rate]

For each size, on synthetic uint8 RGB images (10 classes, batch 256, seed 0 as in
`autoprep demo`; per_channel normalization, no augmentation or the four ops flip, rotation,
zoom and contrast), in images/s of a second epoch:
- input: `Pipeline.train_dataset` iterated alone;
- model: the demo model (`autoprep.data.demo.demo_model`, compiled as autoprep compiles it)
  fitted on one cached normalized batch repeated (no input work): its own step rate;
- fit: the demo model fitted on the trial dataset (input and steps together);
- device: the same fit with the batches read, augmented and normalized inside the training
  step (`autoprep.search.device_input`): the accelerator path, here on the CPU;
- profile: the dataset's stages added one by one, all maps sequential: indices, gather from the
  array, cast to float32, normalization by broadcasting the per-channel 3-vector (as before)
  or by `standardize_channels` (now).
The machine is shared: every figure carries the load average when it was taken; compare only
ratios of one run. Figures are the best of `--repeats` runs, alternating.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from autoprep.choices.normalization import standardize_channels  # noqa: E402
from autoprep.choices.pipeline import Pipeline  # noqa: E402
from autoprep.data.demo import demo_model  # noqa: E402
from autoprep.data.subset import Subset  # noqa: E402
from autoprep.search import device_input  # noqa: E402
from autoprep.search.hypermodel import ensure_compiled  # noqa: E402

BATCH, SEED, CLASSES = 256, 0, 10
IMAGES = {32: 10240, 128: 1536}
FOUR_OPS = [{"name": "flip", "mode": "horizontal"}, {"name": "rotation", "intensity": 0.1},
            {"name": "zoom", "intensity": 0.1}, {"name": "contrast", "intensity": 0.2}]
AUGMENTATION = {"none": [], "four ops": FOUR_OPS}


NOTES = """## Reading the rows

- The machine has 2 cores: in "fit", tf.data and the model's steps share them, so a fit
  should be slower than the slower of "input" and "model on cached tensors" alone. Each row
  is its best repeat, and the load changed between rows and repeats: a fit above 1.0x the
  model is such a change (compare the load column), not a faster training.
- profile: the stages of the dataset without augmentation, one epoch each with sequential
  maps, added one at a time; "before" is the normalization as it was written until commit
  2536b6e (`(x - mean) / std` with per-channel lists), whose broadcast of a 3-vector over the
  batch was the cost of 128x128 without augmentation; `standardize_channels` tiles the
  constants to one image's shape first (the same float32 arithmetic, now exactly IEEE).
  Batches are also read in a parallel map now, and normalized in a parallel map when no
  augmentation draws random numbers.
- "x only": the four ops one at a time (seeded, so their map is sequential: a parallel map
  would draw in thread order).

## The accelerator path ("device fit" rows)

`tune(device_input=True)` / `--device-input` (`autoprep.search.device_input`): the decoded
uint8 array is placed on the device once per search; the host's tf.data pipeline samples only
indices, with the trial's own sampler, so a batch holds the same images and labels (and the
deferred re-weighting's sample weights) as the tf.data path for the same seed; a layer in
front of the user's model gathers the batch from the device tensor, casts it, applies the
trial's Keras augmentation layers (training only) and the normalization inside the compiled
training step. Class weights go to `fit` as before. Trials with MixUp or CutMix keep tf.data
(the labels are mixed with the images), with a warning; memory-mapped images and
distribution strategies are refused. The exported module keeps its tf.data pipeline.
Tested on CPU only (`tests/test_device_input.py`): same batches without augmentation, the
same mean pixel change with the four ops (within 2x), a trial with class weights, Keras
Tuner's checkpoint. On this CPU the input work runs in the step, in series with the model,
instead of on the other core: compare the "device fit" rows with the "fit" rows (the
summary's "device fit" ratio); under the shared machine's load they differ both ways. It is
opt-in because it was never run on a GPU: not measured there are the step rate with the
augmentation layers inside the compiled step (the issue measured Keras' augmentation layers
inside a model on an H100 with JAX at 1,400-1,700 images/s), XLA (Keras compiles the step
with it on a GPU when every layer supports it), mixed precision (it runs on CPU), and an
array larger than the device's memory (its size is not checked before it is placed).
"""


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def epoch_rate(dataset, n):
    """Images/s of the second pass over `dataset` (the first builds and warms it)."""
    for _ in dataset:
        pass
    start = time.perf_counter()
    for _ in dataset:
        pass
    return n / (time.perf_counter() - start)


def fit_rate(model, dataset, n):
    """Images/s of `model.fit`'s second epoch on `dataset`."""
    timer = EpochTimer()
    model.fit(dataset, epochs=2, verbose=0, callbacks=[timer])
    return n / timer.seconds


def fresh_model(shape):
    keras.utils.set_random_seed(SEED)
    return ensure_compiled(demo_model(shape, CLASSES), one_hot_labels=False)


def pipeline_for(augmentation, images, labels):
    return Pipeline(normalization="per_channel", augmentation=augmentation).fit(
        Subset(images), labels, CLASSES)


def trial_dataset(pipeline, images, labels, *, seed=SEED, indices_only=False):
    dataset, _ = pipeline.train_dataset(Subset(images), labels, num_classes=CLASSES,
                                        batch_size=BATCH, epochs=2, seed=seed,
                                        indices_only=indices_only)
    return dataset


def measures(images, labels):
    """{name: a function returning images/s}, for one size."""
    n, shape = len(images), images.shape[1:]
    pipelines = {name: pipeline_for(ops, images, labels) for name, ops in AUGMENTATION.items()}
    placed = device_input.place(images)
    found = {}
    for name, pipeline in pipelines.items():
        found[f"input, {name}"] = lambda p=pipeline: epoch_rate(trial_dataset(p, images, labels), n)
        found[f"fit, {name}"] = lambda p=pipeline: fit_rate(
            fresh_model(shape), trial_dataset(p, images, labels), n)
        found[f"device fit, {name}"] = lambda p=pipeline: fit_rate(
            device_input.Trainer(fresh_model(shape), device_input.DeviceBatches(
                placed, normalize=p.normalization, layers=p.augmentation_layers())),
            trial_dataset(p, images, labels, indices_only=True), n)
    found["input, four ops, unseeded (parallel map)"] = lambda: epoch_rate(
        trial_dataset(pipelines["four ops"], images, labels, seed=None), n)
    for op in FOUR_OPS:
        single = pipeline_for([op], images, labels)
        found[f"input, {op['name']} only"] = lambda p=single: epoch_rate(
            trial_dataset(p, images, labels), n)
    batch = next(iter(trial_dataset(pipelines["none"], images, labels)))
    steps = n // BATCH
    found["model on cached tensors"] = lambda: fit_rate(
        fresh_model(shape), tf.data.Dataset.from_tensors(batch).repeat(steps), steps * BATCH)
    found.update(profile(images, pipelines["none"].normalization))
    return found


def profile(images, normalization):
    """The stages of the trial dataset without augmentation, added one by one (sequential)."""
    n = len(images)
    mean, std = normalization.mean_, normalization.std_
    indices = tf.data.Dataset.from_tensor_slices(np.arange(n)).shuffle(n, seed=SEED).batch(BATCH)
    gathered = indices.map(Subset(images).load_batch)
    cast = gathered.map(lambda batch: tf.cast(batch, tf.float32))
    stages = {
        "profile: indices": indices,
        "profile: + gather": gathered,
        "profile: + cast": cast,
        "profile: + normalization, 3-vector broadcast (before)": cast.map(
            lambda batch: (batch - mean) / std),
        "profile: + normalization, standardize_channels (now)": cast.map(
            lambda batch: standardize_channels(batch, mean, std)),
        "profile: + gather in parallel, normalization (now)": indices.map(
            Subset(images).load_batch, num_parallel_calls=tf.data.AUTOTUNE).map(
            lambda batch: standardize_channels(batch, mean, std)),
    }
    return {name: lambda d=dataset: epoch_rate(d, n) for name, dataset in stages.items()}


def run(size, repeats):
    rng = np.random.default_rng(SEED)
    images = rng.integers(0, 256, (IMAGES[size], size, size, 3), dtype=np.uint8)
    labels = np.arange(len(images)) % CLASSES
    found = measures(images, labels)
    runs = {name: [] for name in found}
    for _ in range(repeats):
        for name, measure in found.items():
            rate = measure()
            runs[name].append({"images_per_s": rate, "load": os.getloadavg()[0]})
            print(f"{size}x{size} {name}: {rate:,.0f} images/s (load "
                  f"{runs[name][-1]['load']:.1f})", flush=True)
    return {"images": len(images), "runs": runs,
            "best": {name: max(runs[name], key=lambda r: r["images_per_s"]) for name in runs}}


def table(size, figures):
    best = figures["best"]
    model = best["model on cached tensors"]["images_per_s"]
    rows = "\n".join(
        f"| {name} | {b['images_per_s']:,.0f} | {b['images_per_s'] / model:.2f} | "
        f"{b['load']:.1f} |" for name, b in best.items())
    return f"""## {size}x{size}x3, {figures['images']:,} images

| what | images/s | / model on cached tensors | load (1 min) |
|---|---|---|---|
{rows}
"""


def verdict(size, best):
    """One line per size: is the trial input the bottleneck of the demo model?"""
    model = best["model on cached tensors"]["images_per_s"]
    parts = []
    for name in AUGMENTATION:
        rate = best[f"input, {name}"]["images_per_s"]
        fit = best[f"fit, {name}"]["images_per_s"]
        device = best[f"device fit, {name}"]["images_per_s"]
        parts.append(f"{name}: input {rate / model:.1f}x the model's step rate "
                     f"({'not ' if rate >= model else ''}the bottleneck), fit {fit / model:.2f}x, "
                     f"device fit {device / fit:.2f}x the fit")
    return f"- {size}x{size}: " + "; ".join(parts) + "."


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(IMAGES))
    parser.add_argument("--out", default="results/trial_input_rate")
    parser.add_argument("--render", metavar="JSON",
                        help="only write the page again from the figures of a former run")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render, encoding="utf-8") as handle:
            result = json.load(handle)
    else:
        commit = os.popen("git rev-parse --short HEAD 2>/dev/null").read().strip()
        figures = {str(size): run(size, args.repeats) for size in args.sizes}
        result = {"benchmark": "trial_input_rate", "batch": BATCH, "seed": SEED,
                  "augmentation": FOUR_OPS, "commit": commit, "repeats": args.repeats,
                  "sizes": figures, "machine": machine(), "command": command()}
    print(save(args.out, result, page(result)))


def page(result):
    """The results page of `result` (the figures of one run)."""
    sizes = result["sizes"]
    tables = "\n".join(table(size, figures) for size, figures in sizes.items())
    summary = "\n".join(verdict(size, figures["best"]) for size, figures in sizes.items())
    repeats = len(next(iter(next(iter(sizes.values()))["runs"].values())))
    return f"""# Trial input rate against the demo model's step rate

Batch {BATCH}, seed {SEED}, per_channel normalization; "four ops" = {FOUR_OPS}. Images/s of a
second epoch, best of {repeats} runs; the load average when each figure was taken. The
demo model is `autoprep.data.demo.demo_model` (the model of `autoprep demo`). Commit \
{result["commit"]}.

{summary}

{tables}
{NOTES}"""


if __name__ == "__main__":
    main()
