"""Find: list the image files of a class-per-folder directory and read their headers (no decoding).

The layout is the one `keras.utils.image_dataset_from_directory` reads: one sub-folder per
class, images anywhere below it. Hidden files and folders are ignored; every other file that is
not used is listed in `FileIndex.skipped` with the reason: not an image, a header that cannot be
read or declares more than `max_pixels` pixels, not a regular file (a FIFO, socket or device is
never opened), a folder that cannot be listed. Symbolic links are followed only when their
target lies inside the data folder; other links are skipped with that reason.

`walk_class_files`, `image_header` and the functions they call are copied verbatim into
the exported module (see `autoprep/export/`), so the library and the exported module list and
check the same files: they may use only the standard library.
"""

import dataclasses
import os
import stat
import struct

import numpy as np
from PIL import Image

from autoprep.errors import ArgumentError, DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
# The default long side at most, as keras.utils.image_dataset_from_directory (256x256).
MAX_DEFAULT_SIDE = 256
# Images whose header declares more pixels are skipped (Pillow refuses 179 Mpx, TF none).
MAX_PIXELS = 40_000_000


@dataclasses.dataclass
class FileIndex:
    """The files of an image directory before decoding: what `index_directory` returns."""

    root: str
    class_names: list
    paths: list
    labels: np.ndarray
    sizes: list  # (height, width) per file, as shown (after the EXIF orientation of a JPEG)
    modes: list  # PIL mode per file
    decodings: list  # how each file is decoded: its type, a JPEG's orientation (`image_header`)
    skipped: list
    max_pixels: int = MAX_PIXELS  # the limit the headers were checked against


def walk_class_files(data_dir, class_names):
    """Yields (path relative to `data_dir` with "/" separators, label, reason) of every visible
    file below the class folders: `reason` is None for a regular file, else why it is skipped
    (folders that cannot be listed or read are yielded as "path/")."""
    root = os.path.realpath(data_dir)
    for label, class_name in enumerate(class_names):
        for relative, reason in _walk_folder(data_dir, class_name, root, set()):
            yield relative, label, reason


def _walk_folder(data_dir, relative, root, seen):
    """Yields (relative path, reason or None) below one folder, sorted, files before folders."""
    folder = os.path.join(data_dir, relative)
    reason = _link_problem(folder, root)
    real = os.path.realpath(folder)
    if reason is None and real in seen:
        reason = "symbolic link to a folder that is already read"
    if reason is None:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            reason = f"cannot list the folder ({error.strerror or type(error).__name__})"
    if reason is not None:
        yield relative + "/", reason
        return
    seen.add(real)
    folders = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = relative + "/" + entry.name
        if entry.is_dir():
            folders.append(path)
        elif _plain_file(entry):  # no link, no special file: nothing to check
            yield path, None
        else:
            yield path, _file_problem(os.path.join(data_dir, path), root)
    for path in folders:
        yield from _walk_folder(data_dir, path, root, seen)


def _plain_file(entry):
    """Whether a directory entry is a regular file and not a link, as the listing said (most
    file systems tell it without a system call per file)."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _link_problem(path, root):
    """Why a symbolic link is not followed (its target leaves the data folder), or None."""
    if not os.path.islink(path):
        return None
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != root:
        return "symbolic link to a place outside the data folder (not followed)"
    return None


def _file_problem(path, root):
    """Why a file is not read (a link leaving the data, not a regular file), or None."""
    reason = _link_problem(path, root)
    if reason is not None:
        return reason
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"cannot read ({error.strerror or type(error).__name__})"
    if not stat.S_ISREG(mode):
        kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device",
                 stat.S_ISBLK: "a device"}
        kind = next((name for test, name in kinds.items() if test(mode)), "a special file")
        return f"not a regular file ({kind}; not opened)"
    return None


def image_header(path):
    """(height, width, decoding, channels) from the header of a BMP, GIF, JPEG, PNG or WebP
    file, without decoding it: the size as stored, how `load_image` (`data/image.py`) decodes
    the file:

    - 0: `tf.io.decode_image` (PNG, GIF, WebP, BMP of up to 24 bits per pixel);
    - 1 to 8: a JPEG, and its EXIF orientation (5 to 8 show it turned a quarter);
    - 9: a 16-bit PNG; 10: a 32-bit BMP;

    and the channels it decodes to, before any conversion (alpha counts), or 0 when the first
    bytes do not say (a palette PNG, a CMYK JPEG, a BMP of 8 bits or less, an animated WebP).

    The type comes from the first bytes, whatever the file's name.

    Raises:
        ValueError: the file is none of these (or its header is cut short).
    """
    with open(path, "rb") as handle:
        head = handle.read(30)
        decoding, channels = 0, 0
        if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 25:
            width, height = struct.unpack(">II", head[16:24])
            decoding = 9 if head[24] == 16 else 0  # IHDR's bit depth, then its color type
            channels = {b"\0": 1, b"\2": 3, b"\4": 2, b"\6": 4}.get(head[25:26], 0)
        elif head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
            width, height = struct.unpack("<HH", head[6:10])
            channels = 3
        elif head.startswith(b"BM") and len(head) >= 30:
            if struct.unpack("<I", head[14:18])[0] == 12:  # the old OS/2 header
                width, height, _, bits = struct.unpack("<HHHH", head[18:26])
            else:
                width, height, _, bits = struct.unpack("<iiHH", head[18:30])
            decoding = 10 if bits == 32 else 0
            channels = 3 if bits in (24, 32) else 0
        elif head.startswith(b"\xff\xd8"):
            handle.seek(2)
            return _jpeg_header(handle)
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
            width, height, channels = _webp_header(head)
        else:
            raise ValueError("not a BMP, GIF, JPEG, PNG or WebP file")
    return abs(height), abs(width), decoding, channels


def _webp_header(head):
    """(width, height, channels) from the first chunk of a WebP file (its first 30 bytes)."""
    chunk = head[12:16]
    if chunk == b"VP8X":  # extended: flags, then 24-bit width - 1 and height - 1
        animated, alpha = head[20] & 0x02, head[20] & 0x10
        return (1 + int.from_bytes(head[24:27], "little"),
                1 + int.from_bytes(head[27:30], "little"), 0 if animated else 3 + bool(alpha))
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF, 3
    if chunk == b"VP8L":  # lossless: 14-bit width - 1 and height - 1, then the alpha bit
        bits = struct.unpack("<I", head[21:25])[0]
        return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF), 3 + (bits >> 28 & 1)
    raise ValueError(f"WebP file with an unknown first chunk {chunk!r}")


def _jpeg_header(handle):
    """(height, width, orientation, channels) from the segments of a JPEG stream up to its
    first frame: the orientation from the first APP1 "Exif" segment (as Pillow reads it), else
    1; the channels from the frame's components (0 for CMYK)."""
    orientation = None
    while True:
        byte = handle.read(1)
        while byte == b"\xff":
            marker = handle.read(1)
            if marker != b"\xff":
                break
        else:
            raise ValueError("JPEG header without a frame size")
        if marker in (b"\x01",) or b"\xd0" <= marker <= b"\xd9":
            continue  # markers without a length
        length = handle.read(2)
        if len(length) < 2:
            raise ValueError("JPEG header without a frame size")
        if b"\xc0" <= marker <= b"\xcf" and marker not in (b"\xc4", b"\xc8", b"\xcc"):
            frame = handle.read(6)
            if len(frame) < 5:
                raise ValueError("JPEG header without a frame size")
            height, width = struct.unpack(">HH", frame[1:5])
            channels = frame[5] if frame[5:6] in (b"\1", b"\3") else 0  # CMYK: 0
            return height, width, orientation or 1, channels
        size = struct.unpack(">H", length)[0] - 2
        if marker == b"\xe1" and orientation is None and size > 0:
            segment = handle.read(size)
            if segment.startswith(b"Exif\0\0"):
                orientation = _exif_orientation(segment[6:])
        else:
            handle.seek(size, os.SEEK_CUR)


def _exif_orientation(tiff):
    """The orientation tag (1 to 8) in the first IFD of an EXIF TIFF block; 1 when absent."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[ifd:ifd + 2])[0] if len(tiff) >= ifd + 2 else 0
    for start in range(ifd + 2, ifd + 2 + 12 * count, 12):
        entry = tiff[start:start + 10]  # tag, type, count, the value's first 2 bytes
        if len(entry) < 10:
            break
        tag, _, _, value = struct.unpack(order + "HHIH", entry)
        if tag == 0x0112:
            return value if 1 <= value <= 8 else 1
    return 1


def checked_header(path, max_pixels):
    """(`image_header(path)`, None), or (None, why the image is not decoded: its header cannot
    be read or declares over `max_pixels` pixels)."""
    try:
        header = image_header(path)
    except (OSError, ValueError, struct.error) as error:
        return None, f"cannot read image header ({error})"
    reason = pixels_problem(header[0], header[1], max_pixels)
    return (None, reason) if reason else (header, None)


def pixels_problem(height, width, max_pixels):
    """Why an image of this size is not decoded (over `max_pixels`), or None."""
    if height * width > max_pixels:
        return (f"its header declares {width}x{height} = {height * width:,} pixels, over the "
                f"limit of {max_pixels:,} (max_pixels)")
    return None


def list_classes(data_dir) -> list:
    """Returns the sorted class folder names of `data_dir`, with clear errors for bad layouts."""
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        what = "is a file" if os.path.exists(data_dir) else "does not exist"
        raise DataError(
            f"`data_dir` must be a directory with one sub-folder per class. "
            f"Received: data_dir={data_dir!r}, which {what}."
        )
    class_names = sorted(
        entry.name
        for entry in os.scandir(data_dir)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if len(class_names) < 2:
        raise DataError(
            f"`data_dir` must hold at least 2 class sub-folders (one folder per class, images "
            f"inside). Received: {data_dir!r} with {len(class_names)} "
            f"({', '.join(class_names) or 'none'})."
        )
    return class_names


def _read_header(path, max_pixels):
    """Returns ((height, width) as shown, PIL mode, decoding) of an image file (see
    `image_header`), or raises ValueError."""
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        raise ValueError(f"unsupported file type (expected {', '.join(IMAGE_EXTENSIONS)})")
    try:
        height, width, decoding, _ = image_header(path)
    except (OSError, ValueError, struct.error) as error:
        raise ValueError(f"cannot read image header ({error})") from None
    reason = pixels_problem(height, width, max_pixels)
    if reason is not None:
        raise ValueError(reason)
    try:
        with Image.open(path) as image:
            mode = image.mode
    except Exception as error:  # PIL raises many types for broken files.
        raise ValueError(f"cannot read image header ({type(error).__name__}: {error})") from None
    if 5 <= decoding <= 8:  # a JPEG shown turned a quarter
        height, width = width, height
    return (height, width), mode, decoding


def index_directory(data_dir, *, max_pixels=MAX_PIXELS) -> FileIndex:
    """Lists the images of a class-per-folder directory and reads their headers (no decoding).

    Args:
        data_dir: A directory with one sub-folder per class.
        max_pixels: Files whose header declares more pixels (height x width) are skipped.

    Raises:
        DataError: if the directory is missing, has fewer than 2 classes, or holds no images.
        ArgumentError: for a bad `max_pixels`.
    """
    root = os.fspath(data_dir)
    max_pixels = check_max_pixels(max_pixels)
    class_names = list_classes(root)
    paths, labels, sizes, modes, decodings, skipped = [], [], [], [], [], []
    for relative, label, reason in walk_class_files(root, class_names):
        try:
            if reason is not None:
                raise ValueError(reason)
            size, mode, decoding = _read_header(os.path.join(root, relative), max_pixels)
        except ValueError as error:
            skipped.append((relative, str(error)))
            continue
        paths.append(relative)
        labels.append(label)
        sizes.append(size)
        modes.append(mode)
        decodings.append(decoding)
    if not paths:
        raise DataError(
            f"`data_dir` {root!r} holds no readable images ({', '.join(IMAGE_EXTENSIONS)}) in "
            f"its class folders; {len(skipped)} file(s) were skipped."
        )
    return FileIndex(root, class_names, paths, np.asarray(labels), sizes, modes, decodings,
                     skipped, max_pixels)


def check_max_pixels(max_pixels) -> int:
    """`max_pixels` as an int >= 1, or an `ArgumentError`."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) \
            or max_pixels < 1:
        raise ArgumentError(
            f"`max_pixels` must be an int >= 1 (pixels per image, height x width). "
            f"Received: max_pixels={max_pixels!r}"
        )
    return int(max_pixels)


def median_size(sizes) -> tuple:
    """The median (height, width): the common size when all images share one."""
    heights, widths = zip(*sizes)
    return int(np.median(heights)), int(np.median(widths))


def choose_image_size(sizes, *, max_side=MAX_DEFAULT_SIDE) -> tuple:
    """The images' common or median (height, width), scaled down, keeping its aspect ratio,
    so that the long side is at most `max_side` (phone photos would otherwise need GiBs)."""
    height, width = median_size(sizes)
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def choose_channels(modes) -> int:
    """1 when every image is grayscale, else 3 (grayscale images are then converted to RGB)."""
    return 1 if all(mode in GRAY_MODES for mode in modes) else 3
