"""Real-world files (autoprep/data/image.py): one tiny file of each kind, decoded by the library,
by `tune` and by the exported module, pixel for pixel against Pillow's reading of the same file.

Tolerances, measured with TensorFlow 2.21 and Pillow 13 on these files: JPEGs decode to Pillow's
exact pixels (both libjpeg-turbo with the accurate integer DCT; TensorFlow's default fast DCT is
off by up to 8 levels on noise), CMYK JPEGs within 1 (TensorFlow truncates the CMYK to RGB
division where Pillow rounds): `JPEG_TOLERANCE` is 2, one level for other builds of the
decoders. Color to gray differs by at most 1 (`tf.image.rgb_to_grayscale`'s float weights
against Pillow's integer ones). Everything else is exact. A wrong orientation, or alpha dropped
instead of composited, moves some pixel by more than `WRONG` (40) levels, 16-bit values clipped
by more still: the tests check that too, so these tolerances cannot hide such a mistake.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_model
from PIL import Image, ImageOps, features

import autoprep
from autoprep.choices.pipeline import Pipeline
from autoprep.data.decode import decode_files, read_image_folder, ready_files
from autoprep.data.image import decode_file, load_image
from autoprep.data.index import image_header, index_directory
from autoprep.export import runtime
from autoprep.search import loop

SIZE = (12, 9)  # (height, width) every file shows, after its EXIF orientation
COUNT = 26  # files written by `_write_kinds`
JPEG_TOLERANCE = 2
GRAY_TOLERANCE = 1  # color to gray: TensorFlow's float luma weights against Pillow's integers
WRONG = 40  # a wrong orientation or channel handling moves some pixel by more than this
# Pillow's methods for EXIF orientations 2 to 8 (ImageOps.exif_transpose's table).
TRANSPOSES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}

pytestmark = pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")


def _noise(rng, shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _exif(orientation, endian="<"):
    exif = Image.Exif()
    exif.endian = endian
    exif[0x0112] = orientation
    exif[0x010F] = "autoprep test"  # another tag before it, as cameras write
    return exif.tobytes()


def _write_kinds(root):
    """One tiny file of each kind in two class folders (`find` says which), each showing SIZE."""
    rng = np.random.default_rng(0)
    height, width = SIZE
    rgb = Image.fromarray(_noise(rng, (height, width, 3)))
    rgba = Image.fromarray(np.dstack([_noise(rng, (height, width, 3)), _noise(rng, SIZE)]))
    files = {}
    for orientation in range(1, 9):  # stored turned when the tag turns it a quarter
        stored = (width, height) if orientation >= 5 else SIZE
        files[f"exif_{orientation}.jpg"] = (Image.fromarray(_noise(rng, (*stored, 3))), "JPEG",
                                            {"exif": _exif(orientation), "quality": 90})
    files["exif_6_big_endian.jpg"] = (Image.fromarray(_noise(rng, (width, height, 3))), "JPEG",
                                      {"exif": _exif(6, ">")})
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    frames = [Image.fromarray(_noise(rng, (height, width, 3))).convert("P") for _ in range(2)]
    animated = [rgba, Image.fromarray(_noise(rng, (height, width, 4)))]
    files.update({
        "png_named.jpg": (rgb, "PNG", {}),
        "lossless.webp": (rgb, "WEBP", {"lossless": True}),
        "lossy.webp": (rgb, "WEBP", {"quality": 80}),
        "alpha.webp": (rgba, "WEBP", {"lossless": True}),
        "animated.webp": (animated[0], "WEBP", {"lossless": True, "save_all": True,
                                                "append_images": animated[1:]}),
        "animated.gif": (frames[0], "GIF", {"save_all": True, "append_images": frames[1:]}),
        "palette.png": (palette, "PNG", {}),
        "palette_transparent.png": (palette, "PNG", {"transparency": 3}),
        "gray_alpha.png": (Image.fromarray(_noise(rng, (height, width, 2)), "LA"), "PNG", {}),
        "rgba.png": (rgba, "PNG", {}),
        "cmyk.jpg": (Image.fromarray(_noise(rng, (height, width, 4)), "CMYK"), "JPEG", {}),
        "gray.jpg": (Image.fromarray(_noise(rng, SIZE)), "JPEG", {}),
        "gray_16_bits.png": (Image.fromarray(rng.integers(0, 65536, SIZE, dtype=np.uint16)),
                             "PNG", {}),
        "rgb.bmp": (rgb, "BMP", {}),
        "rgba_32_bits.bmp": (rgba, "BMP", {}),  # the fourth byte is not alpha in a BMP
        "gray.png": (Image.fromarray(_noise(rng, SIZE)), "PNG", {}),
    })
    for index, (name, (image, fmt, options)) in enumerate(sorted(files.items())):
        folder = os.path.join(root, f"class_{index % 2}")
        os.makedirs(folder, exist_ok=True)
        image.save(os.path.join(folder, name), fmt, **options)
    # Pillow writes no 16-bit RGB PNG: TensorFlow's encoder does.
    pixels = rng.integers(0, 65536, (height, width, 3), dtype=np.uint16)
    with open(os.path.join(root, "class_1", "rgb_16_bits.png"), "wb") as handle:
        handle.write(tf.io.encode_png(pixels).numpy())
    np.save(os.path.join(root, "rgb_16_bits.npy"), pixels)  # not an image: not listed
    return str(root)


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    return _write_kinds(tmp_path_factory.mktemp("kinds") / "data")


def find(root, name):
    """The path, relative to `root`, of the file `name` written by `_write_kinds`."""
    (relative,) = [f"{c}/{name}" for c in ("class_0", "class_1")
                   if os.path.exists(os.path.join(root, c, name))]
    return relative


def _composited(image):
    """Alpha composited on white, as autoprep does (Pillow's rounding is exact here)."""
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)


def pillow_pixels(root, relative, channels, *, alpha=True):
    """What Pillow shows of a file: EXIF orientation applied, the first frame, 16 bits scaled
    to 8 (round(x / 257)), alpha composited on white (or dropped), then L or RGB."""
    if relative.endswith("rgb_16_bits.png"):  # Pillow reads only its high bytes: the source
        pixels = np.load(os.path.join(root, "rgb_16_bits.npy")).astype(np.int64)
        image = Image.fromarray(((pixels + 128) // 257).astype(np.uint8))
    else:
        with Image.open(os.path.join(root, relative)) as opened:
            image = ImageOps.exif_transpose(opened)
    if image.mode.startswith("I;16"):
        image = Image.fromarray(((np.asarray(image, np.int64) + 128) // 257).astype(np.uint8))
    if alpha and (image.mode in ("LA", "RGBA", "PA") or "transparency" in image.info):
        image = _composited(image)
    pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    return pixels[..., None] if channels == 1 else pixels


def tolerance(root, relative, channels):
    with Image.open(os.path.join(root, relative)) as image:
        jpeg, gray = image.format == "JPEG", image.mode in ("L", "LA", "I;16")
    return (JPEG_TOLERANCE if jpeg else 0) + (GRAY_TOLERANCE if channels == 1 and not gray else 0)


def _difference(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def assert_as_pillow_shows(root, paths, images, channels):
    """Each decoded image within its tolerance of Pillow's pixels, and far from mistakes."""
    assert len(paths) == len(images) == COUNT
    for relative, image in zip(paths, images):
        expected = pillow_pixels(root, relative, channels)
        allowed = tolerance(root, relative, channels)
        assert image.shape == expected.shape == (*SIZE, channels), relative
        assert _difference(image, expected) <= allowed, relative
        if "alpha" in relative or "rgba" in relative or "transparent" in relative:
            dropped = pillow_pixels(root, relative, channels, alpha=False)
            if "bmp" in relative:  # a BMP's fourth byte is ignored: dropped, as Pillow does
                assert _difference(image, dropped) <= allowed, relative
            else:
                assert _difference(image, dropped) > WRONG, relative


def test_the_index_lists_every_kind_at_the_size_it_shows(kinds):
    index = index_directory(kinds)
    assert len(index.paths) == COUNT and not index.skipped
    assert find(kinds, "exif_8.jpg") in index.paths and find(kinds, "png_named.jpg") in index.paths
    assert set(index.sizes) == {SIZE}  # orientations 5-8 are stored 9x12, shown 12x9
    decodings = {path.split("/")[1]: decoding for path, decoding in zip(index.paths,
                                                                        index.decodings)}
    special = {f"exif_{k}.jpg": k for k in range(1, 9)}  # JPEG: its orientation
    special.update({"exif_6_big_endian.jpg": 6, "cmyk.jpg": 1, "gray.jpg": 1,
                    "gray_16_bits.png": 9, "rgb_16_bits.png": 9, "rgba_32_bits.bmp": 10})
    assert decodings == {name: special.get(name, 0) for name in decodings}


@pytest.mark.parametrize("channels", [3, 1])
def test_read_image_folder_decodes_each_kind_as_pillow_shows_it(kinds, channels):
    folder = read_image_folder(kinds, image_size=SIZE, channels=channels)
    assert_as_pillow_shows(kinds, folder.paths, folder.images, channels)


@pytest.mark.parametrize("channels", [3, 1])
def test_the_files_said_ready_decode_to_the_size_and_channels_as_they_are(kinds, channels):
    index = index_directory(kinds)
    ready = ready_files(index, SIZE, channels)
    said = {path.split("/")[1] for path, yes in zip(index.paths, ready) if yes}
    common = {3: {"png_named.jpg", "exif_1.jpg", "rgb.bmp"}, 1: {"gray.jpg", "gray.png"}}
    assert common[channels] <= said and not {"rgba.png", "palette.png"} & said
    for path, decoding, yes in zip(index.paths, index.decodings, ready):
        if yes:  # decoded as it is, without the per-file check and conversion
            image = load_image(os.path.join(kinds, path), SIZE, channels, decoding, True)
            assert image.shape == (*SIZE, channels), path


@pytest.mark.parametrize("channels", [3, 1])
def test_files_wrongly_said_ready_are_decoded_again_as_they_need(kinds, channels):
    index = index_directory(kinds)
    files = [os.fsencode(os.path.join(kinds, path)) for path in index.paths]
    images = {}
    for name, ready in (("checked", None), ("all said ready", [True] * len(files))):
        images[name] = np.zeros((len(files), *SIZE, channels), np.uint8)
        decoded = decode_files(files, index.decodings, images[name], SIZE, channels, ready)
        assert decoded.all(), name
    np.testing.assert_array_equal(images["all said ready"], images["checked"])
    assert_as_pillow_shows(kinds, index.paths, images["checked"], channels)


def test_the_header_gives_the_channels_decoded_or_says_it_does_not_know(kinds):
    index = index_directory(kinds)
    said = {}
    for path, decoding in zip(index.paths, index.decodings):
        contents = tf.io.read_file(os.path.join(kinds, path))
        channels = image_header(os.path.join(kinds, path))[3]
        said[path.split("/")[1]] = channels
        assert channels in (0, decode_file(contents, decoding).shape[-1]), path
    unknown = {name for name, channels in said.items() if not channels}
    assert unknown == {"palette.png", "palette_transparent.png", "cmyk.jpg", "animated.webp"}


@pytest.mark.parametrize("channels", [3, 1])
def test_the_exported_decoding_decodes_files_wrongly_said_ready_again(kinds, channels,
                                                                      monkeypatch):
    monkeypatch.setattr(runtime, "CLASS_NAMES", ["class_0", "class_1"])
    monkeypatch.setattr(runtime, "IMAGE_SIZE", SIZE)
    monkeypatch.setattr(runtime, "CHANNELS", channels)
    paths, _, headers = runtime._list_files(kinds, runtime.MAX_PIXELS)
    for said in (headers, [(*SIZE, decoding, channels) for _, _, decoding, _ in headers]):
        images, rows = runtime._decoded(paths, said)  # the second: every file said ready
        relative = [os.path.relpath(path, kinds).replace(os.sep, "/") for path in paths]
        in_order = images.numpy()[[rows[i] for i in range(len(paths))]]
        assert_as_pillow_shows(kinds, relative, in_order, channels)


def test_each_exif_orientation_is_applied_and_no_other(kinds):
    for orientation in range(1, 9):
        relative = find(kinds, f"exif_{orientation}.jpg")
        path = os.path.join(kinds, relative)
        assert image_header(path)[2] == orientation  # a JPEG's decoding: its orientation
        image = load_image(path, SIZE, 3, orientation).numpy()
        assert _difference(image, pillow_pixels(kinds, relative, 3)) <= JPEG_TOLERANCE
        with Image.open(path) as stored:
            for other, method in TRANSPOSES.items():
                turned = np.asarray(stored.transpose(method).convert("RGB"))
                if other != orientation and turned.shape == image.shape:
                    assert _difference(image, turned) > WRONG, (orientation, other)
    assert image_header(os.path.join(kinds, find(kinds, "gray.jpg")))[2] == 1


def test_16_bit_pngs_are_scaled_to_8_bits_rounded_not_clipped(kinds):
    path = os.path.join(kinds, find(kinds, "gray_16_bits.png"))
    with Image.open(path) as image:
        wide = np.asarray(image, np.int64)
    assert image_header(path)[2] == 9
    decoded = load_image(path, SIZE, 1, 9).numpy()[..., 0].astype(np.int64)
    np.testing.assert_array_equal(decoded, np.round(wide / 257))
    assert _difference(decoded, np.clip(wide, 0, 255)) > WRONG
    assert (decoded != wide >> 8).any()  # truncated to the high byte: off by one here and there


def test_the_type_comes_from_the_bytes_and_an_unknown_type_is_skipped(kinds, tmp_path):
    root = tmp_path / "data"
    for name in ("class_0", "class_1"):
        os.makedirs(root / name)
    sources = {"a.png": "exif_6.jpg", "b.gif": "lossless.webp", "c.webp": "animated.gif"}
    for name, source in sources.items():
        with open(os.path.join(kinds, find(kinds, source)), "rb") as handle:
            (root / "class_0" / name).write_bytes(handle.read())
    (root / "class_1" / "d.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (root / "class_1" / "e.png").write_bytes(b"RIFF\0\0\0\0WEBPVP8Z and nothing else")
    with pytest.warns(UserWarning, match=r"skipped 2 file"):
        folder = read_image_folder(root, image_size=SIZE)
    assert folder.paths == [f"class_0/{name}" for name in sources]
    for image, source in zip(folder.images, sources.values()):
        expected = pillow_pixels(kinds, find(kinds, source), 3)
        assert _difference(image, expected) <= JPEG_TOLERANCE, source


def test_webp_headers_give_the_size(kinds):
    for name in ("lossless.webp", "lossy.webp", "alpha.webp", "animated.webp"):
        path = os.path.join(kinds, find(kinds, name))
        with Image.open(path) as image:
            width, height = image.size
        assert image_header(path)[:3] == (height, width, 0) and (height, width) == SIZE


class _Decoded(Exception):
    """Stops `tune` once its data is decoded."""


def test_tune_decodes_each_kind_as_pillow_shows_it(kinds, tmp_path, monkeypatch):
    decoded = []

    def read_and_stop(*args, **kwargs):
        decoded.append(read_image_folder(*args, **kwargs))
        raise _Decoded

    monkeypatch.setattr(loop, "read_image_folder", read_and_stop)
    with pytest.raises(_Decoded):  # memory-mapped in the run directory, as over the limit
        loop.tune(tiny_model, kinds, image_size=SIZE, memory_limit=1, max_trials=1, epochs=1,
                  directory=tmp_path / "runs", verbose=0)
    (folder,) = decoded
    assert isinstance(folder.images, np.memmap)
    assert_as_pillow_shows(kinds, folder.paths, folder.images, 3)


@pytest.mark.parametrize("channels", [3, 1])
def test_the_exported_functions_decode_each_kind_as_pillow_shows_it(kinds, channels,
                                                                   monkeypatch):
    monkeypatch.setattr(runtime, "CLASS_NAMES", ["class_0", "class_1"])
    monkeypatch.setattr(runtime, "IMAGE_SIZE", SIZE)
    monkeypatch.setattr(runtime, "CHANNELS", channels)
    paths, labels = runtime.list_files(kinds)
    images = np.concatenate([x.numpy() for x, _ in runtime.make_eval_dataset(
        paths, labels, batch_size=8, cache=False)])
    assert images.dtype == np.float32  # the stand-in normalization keeps 0-255
    relative = [os.path.relpath(path, kinds).replace(os.sep, "/") for path in paths]
    assert_as_pillow_shows(kinds, relative, images.astype(np.uint8), channels)
    batches = runtime.make_train_dataset(paths, labels, batch_size=32, seed=0, cache=True)
    trained = np.concatenate([x.numpy() for x, _ in batches])
    assert sorted(map(bytes, trained.astype(np.uint8))) == sorted(map(bytes, images.astype(
        np.uint8)))  # the in-memory training path decodes the same pixels


# Imports an exported module in a fresh process and saves its evaluation pixels.
PROBE = textwrap.dedent("""
    import importlib.util, sys
    import numpy as np
    spec = importlib.util.spec_from_file_location("pipeline", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "autoprep" not in sys.modules
    paths, labels = module.list_files(sys.argv[2])
    batches = list(module.make_eval_dataset(paths, labels, batch_size=8))
    np.save(sys.argv[3], np.concatenate([x.numpy() for x, _ in batches]))
    print("\\n".join(paths))
""")


def test_the_exported_module_decodes_each_kind_as_pillow_shows_it(kinds, tmp_path):
    """In a fresh process, as users import it (one channel count: the functions are those of
    the in-process test above, copied verbatim)."""
    channels = 3
    config = {"normalization": "none", "augmentation": [], "imbalance": "none"}
    result = autoprep.TuneResult(
        best_config=Pipeline(**config).get_config(), best_score=0.5,
        objective="balanced_accuracy", trials=[], epochs=1,
        data={"class_names": ["class_0", "class_1"], "image_size": list(SIZE),
              "channels": channels})
    module = result.export(tmp_path / "pipeline.py")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, module, kinds, str(tmp_path / "pixels.npy")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    paths = [os.path.relpath(path, kinds).replace(os.sep, "/")
             for path in completed.stdout.split()]
    images = np.load(tmp_path / "pixels.npy")
    assert images.dtype == np.float32 and (images == np.round(images)).all()
    assert_as_pillow_shows(kinds, paths, images.astype(np.uint8), channels)


def test_the_reference_composites_with_autoprep_s_rounding():
    """Pillow's `alpha_composite` on white is round((color * alpha + 255 * (255 - alpha)) / 255),
    the formula of `to_channels`: the comparisons above hold the rounding to 0 levels."""
    pixels = _noise(np.random.default_rng(1), (64, 64, 4))
    color, alpha = pixels[..., :3].astype(int), pixels[..., 3:].astype(int)
    expected = (color * alpha + 255 * (255 - alpha) + 127) // 255
    composited = np.asarray(_composited(Image.fromarray(pixels)).convert("RGB"))
    np.testing.assert_array_equal(composited, expected)
