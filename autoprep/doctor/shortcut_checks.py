"""Shortcut checks: can the class be told from cheap properties that are not the object?

A model that learns the camera, the file format or a watermark instead of the object scores
well on a test split cut from the same folder and fails on new images. For every image (a
stratified sample of `MAX_IMAGES` in larger folders) the check reads cheap properties, in
groups (`PROPERTIES`): header size and aspect ratio, file extension and format, PIL mode, EXIF
camera, mean brightness and color cast, and constant regions (a border, or a watermark: small
patches that recur nearly identical in other images). No image model is involved.

A scikit-learn ExtraTrees classifier is cross-validated on all the properties (stratified
k-fold, balanced accuracy). The threshold is a fixed margin over chance, widened for small
folders: chance + max(`MARGIN`, `Z` x the standard deviation of the balanced accuracy of
random guessing with these class sizes), so that labels unrelated to the properties do not
trigger it. Above it, a decision tree cross-validated on each group alone names the groups
that carry the shortcut.
"""

import dataclasses
import os

import numpy as np

from autoprep.doctor import _probe
from autoprep.doctor._checks import DATA_CHECKS, register
from autoprep.doctor._hashing import area_resize
from autoprep.doctor.data_checks import listing
from autoprep.doctor.report import Finding

MAX_IMAGES = 3000  # larger folders: a stratified sample
MARGIN = 0.10  # balanced accuracy over chance that counts as a shortcut ...
Z = 4.0  # ... or this many standard deviations of chance-level scores, whichever is larger
FOLDS = 5
TREES = 30  # the ExtraTrees classifier on all properties
TREE_DEPTH = 4  # the decision tree on each group alone
REGION_SIDE = 64  # gray images resized to this (or less, never up) to find constant regions
CELL = 4  # ... and cut into CELL x CELL patches
REFERENCES = 256  # patches are compared with the same patch of this many images
REPEATS = 3  # a patch recurs when this many of them have it within REPEAT_RMS
REPEAT_RMS = 4.0  # gray levels
TEXTURED_STD = 8.0  # a watermark patch has structure: pixel std above this (a flat one is not)
FLAT_STD = 2.0  # a frame's border strip is flat: pixel std at most this
_EXIF_MAKE, _EXIF_MODEL = 0x010F, 0x0110
_CATEGORIES = 30  # most frequent values one-hot encoded (the rest: all zeros)
_BLOCKS = ["top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom",
           "bottom-right"]
_REGION_NAMES = ["top and bottom border", "left and right border"] + [
    f"{block} watermark" for block in _BLOCKS]


@dataclasses.dataclass
class Property:
    """A group of cheap properties: its name, what to do about it, and whether it is a
    capture artifact (warning) or may be part of the object (info)."""

    title: str
    fix: str
    capture: bool = True


PROPERTIES = {
    "size": Property(
        "image size / aspect ratio",
        "Bring every class to the same sizes and aspect ratios (crop or pad before resizing, "
        "or take each class from the same sources); else the model can learn the size "
        "instead of the object, and a test split of this folder will not show it."),
    "format": Property(
        "file format / extension",
        "Re-save every image in one format (e.g. all JPEG at one quality): compression "
        "artifacts differ by format and a model can learn them."),
    "mode": Property(
        "color mode (gray, RGB, palette)",
        "Convert every image to one mode (e.g. RGB) when exporting."),
    "camera": Property(
        "EXIF camera model",
        "Take each class with several cameras (or the same ones); a model can learn a "
        "camera's color rendering and noise instead of the object."),
    "region": Property(
        "a constant border or watermark region",
        "Crop the border or watermark away (or paint it over) in every image; the model can "
        "find the class there instead of in the object."),
    "brightness": Property(
        "mean brightness / color cast",
        "If brightness or color is not what defines the classes (lighting, camera settings, "
        "time of day), take every class under the same conditions, or let autoprep search "
        "brightness and contrast augmentation; if it is (ripe or unripe fruit), nothing to "
        "do.", capture=False),
}


def threshold(labels, num_classes) -> tuple:
    """(chance, threshold, sd): the balanced accuracy above which properties predict the
    class, and the standard deviation of random guessing's balanced accuracy."""
    chance = 1.0 / num_classes
    counts = np.bincount(labels, minlength=num_classes)
    sd = float(np.sqrt(np.sum(chance * (1 - chance) / np.maximum(counts, 1))) / num_classes)
    return chance, chance + max(MARGIN, Z * sd), sd


def _one_hot(values) -> np.ndarray:
    values = np.asarray([str(v) for v in values])
    kinds, counts = np.unique(values, return_counts=True)
    kept = kinds[np.argsort(-counts, kind="stable")][:_CATEGORIES]
    return (values[:, None] == kept[None, :]).astype(np.float32)


def file_properties(root, paths) -> tuple:
    """(PIL formats, EXIF cameras) of files under `root`; "?" and "none" when unreadable."""
    from PIL import Image

    formats, cameras = [], []
    for path in paths:
        try:
            with Image.open(os.path.join(root, path)) as image:
                formats.append(image.format or "?")
                exif = image.getexif()
                camera = " ".join(str(exif.get(tag, "")).strip("\x00 ")
                                  for tag in (_EXIF_MAKE, _EXIF_MODEL)).strip()
                cameras.append(camera or "none")
        except Exception:  # the file decoded once; a header read failing now is no shortcut
            formats.append("?")
            cameras.append("none")
    return formats, cameras


def small_gray(images, side) -> np.ndarray:
    """Images (n, h, w, channels) resized to side x side by area, then averaged over channels."""
    return area_resize(images, side, side).mean(axis=-1)


def recurring(vectors, references) -> np.ndarray:
    """(n, parts) bool: part p of image i is within `REPEAT_RMS` of the same part of at least
    `REPEATS` reference images (other than itself).

    Args:
        vectors: (n, parts, d) float array, e.g. patches or border strips of every image.
        references: Indices of the images compared with.
    """
    by_part = np.ascontiguousarray(vectors.transpose(1, 0, 2), dtype=np.float32)
    reference = np.ascontiguousarray(by_part[:, references].transpose(0, 2, 1))  # (p, d, r)
    reference_norms = (reference ** 2).sum(axis=1)[:, None, :]
    norms = (by_part ** 2).sum(axis=-1)
    limit = REPEAT_RMS ** 2 * vectors.shape[-1]
    found = np.zeros(vectors.shape[:2], bool)
    chunk = max(1, 2 ** 21 // max(1, vectors.shape[1] * len(references)))  # 8 MB of float32
    for start in range(0, len(vectors), chunk):
        stop = min(start + chunk, len(vectors))
        squared = by_part[:, start:stop] @ reference  # (parts, images, references)
        squared *= -2
        squared += norms[:, start:stop, None]
        squared += reference_norms
        own = np.flatnonzero((references >= start) & (references < stop))
        squared[:, references[own] - start, own] = np.inf  # an image is not its own repeat
        found[start:stop] = (np.count_nonzero(squared <= limit, axis=-1) >= REPEATS).T
    return found


def _border_strips(gray, width) -> np.ndarray:
    """(n, 4, pixels): the top, bottom, left and right strips `width` pixels deep."""
    n = len(gray)
    return np.stack([gray[:, :width].reshape(n, -1), gray[:, -width:].reshape(n, -1),
                     gray[:, :, :width].reshape(n, -1), gray[:, :, -width:].reshape(n, -1)],
                    axis=1)


def region_features(images) -> tuple:
    """(features, names): whether the top and bottom (left and right) border strips are flat,
    of one gray level and recur nearly identical in other images (a frame, letterbox or
    padding); for each of 9 blocks, the share of its textured patches that recur (a watermark
    or logo). Plain sky recurs by chance too, but on one side only, and it is not textured."""
    n = len(images)
    side = min(REGION_SIDE, *images.shape[1:3]) // CELL * CELL  # small images: not upsampled
    references = np.sort(np.random.default_rng(0).choice(n, min(n, REFERENCES), replace=False))
    if len(references) <= REPEATS or side < 3 * CELL:
        return np.zeros((n, len(_REGION_NAMES)), np.float32), _REGION_NAMES
    gray = small_gray(images, side)
    width = max(1, side // 32)  # 2 pixels of 64: a frame or letterbox is at least that
    strips = _border_strips(gray, width)
    flat, level = strips.std(axis=-1) <= FLAT_STD, strips.mean(axis=-1)
    cells = side // CELL
    patches = gray.reshape(n, cells, CELL, cells, CELL).transpose(0, 1, 3, 2, 4)
    patches = patches.reshape(n, cells * cells, CELL * CELL)
    textured = recurring(patches, references) & (patches.std(axis=-1) > TEXTURED_STD)
    textured = textured.reshape(n, cells, cells)
    edges = np.linspace(0, cells, 4).round().astype(int)
    blocks = [textured[:, edges[r]:edges[r + 1], edges[c]:edges[c + 1]].mean(axis=(1, 2))
              for r in range(3) for c in range(3)]
    found = recurring(strips, references) & flat
    borders = [found[:, a] & found[:, b] & (np.abs(level[:, a] - level[:, b]) <= REPEAT_RMS)
               for a, b in ((0, 1), (2, 3))]  # opposite sides alike: a frame, not the sky
    features = np.column_stack([*borders, *blocks]).astype(np.float32)
    return features, _REGION_NAMES


class Properties:
    """The cheap properties of the examined images, grouped as in `PROPERTIES`.

    Args:
        ctx: The `DataContext`.
        rows: Indices of the folder's images to examine (all, or a stratified sample).

    Attributes:
        rows: The examined images' indices.
        groups: Group name -> (n, d) float array.
        raw: Per-image readable values for the evidence (widths, formats...).
    """

    def __init__(self, ctx, rows):
        folder = ctx.folder
        self.rows = rows
        paths = [folder.paths[i] for i in self.rows]
        position = {path: i for i, path in enumerate(ctx.index.paths)}
        at = [position[path] for path in paths]
        sizes = np.array([ctx.index.sizes[i] for i in at], float).reshape(-1, 2)
        modes = [ctx.index.modes[i] for i in at]
        formats, cameras = file_properties(folder.root, paths)
        extensions = [os.path.splitext(path)[1].lower() or "(none)" for path in paths]
        images = ctx.small[self.rows]
        means = images.reshape(len(images), -1, images.shape[-1]).mean(axis=1, dtype=np.float64)
        gray = means.mean(axis=1, keepdims=True)
        casts = means[:, [0, 2]] - means[:, [1]] if images.shape[-1] == 3 else means[:, :0]
        regions, self.region_names = region_features(images)
        self.groups = {
            "size": np.column_stack([sizes, sizes[:, 1] / np.maximum(sizes[:, 0], 1)]),
            "format": np.hstack([_one_hot(extensions), _one_hot(formats)]),
            "mode": _one_hot(modes),
            "camera": _one_hot(cameras),
            "region": regions,
            "brightness": np.hstack([gray, casts]),
        }
        self.raw = {"size": [f"{int(h)}x{int(w)}" for h, w in sizes],  # HxW, as mixed_sizes
                    "format": [f"{e} ({f})" for e, f in zip(extensions, formats)],
                    "mode": modes, "camera": cameras, "gray": gray[:, 0], "casts": casts,
                    "regions": regions}

    def varying(self) -> dict:
        """The groups whose values are not the same for every image."""
        return {name: x for name, x in self.groups.items()
                if len(x) and x.shape[1] and np.ptp(x, axis=0).max() > 0}


def cross_validated(features, labels, *, forest=True, seed=0) -> float:
    """Out-of-fold balanced accuracy (stratified k-fold) of an ExtraTrees classifier, or of
    one decision tree of depth `TREE_DEPTH` (`forest=False`, for a group alone: cheaper)."""
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.tree import DecisionTreeClassifier

    folds = int(min(FOLDS, np.bincount(labels).min()))
    if forest:
        model = ExtraTreesClassifier(n_estimators=TREES, min_samples_leaf=2,
                                     class_weight="balanced", random_state=seed, n_jobs=1)
    else:
        model = DecisionTreeClassifier(max_depth=TREE_DEPTH, min_samples_leaf=2,
                                       class_weight="balanced", random_state=seed)
    predicted = cross_val_predict(
        model, features, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return float(balanced_accuracy_score(labels, predicted))


def _class_summary(group, props, labels, names) -> str:
    """What the group looks like in each class, in words."""
    parts = []
    for c, name in enumerate(names):
        members = np.flatnonzero(labels == c)
        if not len(members):
            continue
        if group in ("size", "format", "mode", "camera"):
            values = [props.raw[group][i] for i in members]
            kinds, counts = np.unique(values, return_counts=True)
            order = np.argsort(-counts, kind="stable")[:3]
            text = ", ".join(f"{kinds[i]} {counts[i] / len(values):.0%}" for i in order)
        elif group == "brightness":
            text = f"mean gray {props.raw['gray'][members].mean():.0f}"
            if props.raw["casts"].shape[1]:
                red, blue = props.raw["casts"][members].mean(axis=0)
                text += f", red-green {red:+.0f}, blue-green {blue:+.0f}"
        else:  # the share of images that have each recurring region
            shares = (props.raw["regions"][members] > 0).mean(axis=0)
            best = int(np.argmax(shares))
            text = f"{props.region_names[best]} in {shares[best]:.0%} of images" \
                if shares[best] > 0 else "none"
        parts.append(f"{name!r}: {text}")
    return ("(height x width) " if group == "size" else "") + "; ".join(parts)


@register(DATA_CHECKS, "shortcut", priority=13)
def check_shortcut(ctx):
    """The class predicted from cheap properties (size, format, camera, brightness, border...)
    by a cross-validated classifier with no image model."""
    labels = ctx.folder.labels
    rows = _probe.training_sample(labels, limit=MAX_IMAGES, seed=ctx.seed)
    sample = labels[rows]
    chance, bar, sd = threshold(sample, len(ctx.class_names))
    if np.bincount(sample, minlength=len(ctx.class_names)).min() < 2 or bar >= 1:
        return  # too few images to tell a shortcut from chance
    props = Properties(ctx, rows)
    varying = props.varying()
    if not varying:
        return
    everything = cross_validated(np.hstack(list(varying.values())), sample, seed=ctx.seed)
    if everything < bar:
        return
    scores = {name: cross_validated(x, sample, forest=False, seed=ctx.seed)
              for name, x in varying.items()}
    carriers = sorted((n for n, s in scores.items() if s >= bar), key=lambda n: -scores[n])
    capture = [n for n in carriers if PROPERTIES[n].capture]
    best = (capture or carriers or [max(scores, key=scores.get)])[0]
    alone = " alone" if scores[best] >= bar else " (with the other properties)"
    rule = (f"chance {chance:.2f} + max({MARGIN}, {Z:g} x {sd:.3f}, the spread of random "
            f"guessing's balanced accuracy with these class sizes)")
    scored = listing((f"{PROPERTIES[n].title} {scores[n]:.2f}"
                      for n in sorted(scores, key=lambda n: -scores[n])), 10)
    sampled = "" if len(props.rows) == len(labels) else \
        f" on a stratified sample of {len(props.rows)} of {len(labels)} images"
    yield Finding(
        "shortcut", "warning" if capture else "info",
        f"The class can be told from {PROPERTIES[best].title}{alone} (balanced accuracy "
        f"{max(scores[best], everything):.2f}, chance {chance:.2f})",
        f"Cross-validated ({FOLDS}-fold) on cheap properties, no image model{sampled}: an "
        f"ExtraTrees classifier on all of them scores {everything:.2f}; a decision tree on each "
        f"alone: {scored}. Threshold {bar:.2f} = {rule}. Per class, {PROPERTIES[best].title}: "
        f"{_class_summary(best, props, sample, ctx.class_names)}.",
        PROPERTIES[best].fix,
        dimension=None if PROPERTIES[best].capture else "augmentation",
        data={"balanced_accuracy": round(everything, 4), "chance": round(chance, 4),
              "threshold": round(bar, 4), "threshold_rule": "fixed margin over chance",
              "properties": {n: round(s, 4) for n, s in scores.items()},
              "carriers": carriers, "images": int(len(props.rows))},
    )
