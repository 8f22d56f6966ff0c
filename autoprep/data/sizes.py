"""Image sizes as the progress lines propose them: half the size per side for large images,
written as the library and the command line take it (no TensorFlow: the CLI's `--help` path
imports this)."""

# From this short side on, the progress lines propose half the size per side: a quarter of
# the pixels, and about a quarter of a trial's time (results/real_photos.md, trial cost).
HALVE_FROM = 64


def half_size(image_size):
    """Half of (height, width) per side when the short side is at least `HALVE_FROM`, else None."""
    if min(image_size) < HALVE_FROM:
        return None
    return tuple(side // 2 for side in image_size)


def size_option(image_size) -> str:
    """An image size as the library and the command line take it."""
    height, width = image_size
    return f"image_size=({height}, {width}) (--image-size {height}x{width})"
