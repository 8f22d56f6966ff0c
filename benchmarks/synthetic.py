"""Shared by the benchmarks: synthetic image folders, the machine and its load, result files."""

import importlib.metadata
import json
import os
import platform
import shlex
import sys
import time

import numpy as np
from PIL import Image


def write_folder(root, n_images, *, size=64, classes=10, seed=0) -> str:
    """Writes `n_images` RGB PNGs of size x size into `classes` class folders (once: a folder
    that already holds them is kept). Each image is a coarse random color grid plus noise."""
    marker = os.path.join(root, f".complete-{n_images}-{size}-{classes}-{seed}")
    if os.path.exists(marker):
        return root
    rng = np.random.default_rng(seed)
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class_{c}"), exist_ok=True)
    cell = max(1, size // 8)
    for i in range(n_images):
        grid = rng.integers(0, 256, (8, 8, 3))
        pixels = np.kron(grid, np.ones((cell, cell, 1)))[:size, :size]
        pixels = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, f"class_{i % classes}", f"{i:06d}.png"))
    open(marker, "w").close()
    return root


def present_folders(folders) -> list:
    """The folders of `folders` that exist; says which are skipped (photos are not committed)."""
    found = [f for f in folders if os.path.isdir(f)]
    for missing in sorted(set(folders) - set(found)):
        print(f"skipped: no folder at {missing}")
    return found


def photos_command(folders) -> str:
    """The command, each photo folder named PHOTOS/<its last component> (no machine's path)."""
    text = command()
    for folder in folders:
        text = text.replace(folder, os.path.join("PHOTOS", os.path.basename(
            os.path.normpath(folder))))
    return text


def tiny_cnn(input_shape, num_classes):
    """Two small convolutions and a softmax: a trial's cost is the search's, not the model's."""
    import keras

    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def machine() -> dict:
    """CPU, cores, RAM and the load average (the machine is shared: figures depend on it)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(ram / 2**30, 1),
            "python": platform.python_version(), "libraries": libraries(),
            "load_average": list(os.getloadavg())}


LIBRARIES = ("tensorflow", "keras", "keras-tuner", "numpy", "scikit-learn")


def libraries() -> dict:
    """The installed versions of the libraries a figure depends on (read from their
    metadata, without importing them): pages hold runs from different days."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def command() -> str:
    return shlex.join(["python", *sys.argv])


def footer(result) -> str:
    """The machine, its load and the command, closing every results page."""
    m = result["machine"]
    load = m["load_average"]
    busy = ("the machine was running other jobs: timings taken under load" if load[0] >= 2
            else "a quiet machine")
    versions = "".join(f", {name} {version}" for name, version in m.get("libraries", {}).items())
    return (f"\nMachine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Python "
            f"{m['python']}{versions}; load average at the end "
            f"{', '.join(f'{x:.1f}' for x in load)} ({busy}).\n\nCommand: `{result['command']}`\n")


def save(path, result, markdown):
    """Writes `path`.json (the figures) and `path`.md (the table, then machine and command)."""
    markdown += footer(result)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".json", "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    with open(path + ".md", "w", encoding="utf-8") as handle:
        handle.write(markdown)
    return markdown


def add_render_arguments(parser):
    """--render OUT and --findings FILE: a page written again from its JSON (`reread`)."""
    parser.add_argument("--render", metavar="OUT",
                        help="write OUT.md again from OUT.json (with --findings: the text after "
                             "the tables, kept in OUT.json)")
    parser.add_argument("--findings", metavar="FILE")


def findings_lines(result) -> list:
    """The page's closing text (`reread`'s "findings"), as lines to add, or none."""
    return ["", result["findings"].strip()] if result.get("findings") else []


def reread(path, findings=None) -> dict:
    """`path`.json's figures, to write the page again; with `findings` (a file), its text
    under "findings"."""
    with open(path + ".json", encoding="utf-8") as handle:
        result = json.load(handle)
    if findings:
        with open(findings, encoding="utf-8") as handle:
            result["findings"] = handle.read()
    return result


def timed(function, *args):
    """(wall seconds, CPU seconds of this process, all threads) of `function(*args)`."""
    start, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - start, time.process_time() - cpu
