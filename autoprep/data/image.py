"""Decode one image file in TensorFlow: its bytes to upright, 8-bit pixels of the folder's channels.

Every function of `IMAGE_FUNCTIONS` is copied verbatim into the exported module, so a trial and
the exported pipeline decode, orient, convert and resize every file the same way. They may use
only TensorFlow. What each kind of file gives (docs/files.md says it for users):

- The type comes from the file's first bytes, not its name: a PNG named `.jpg` is a PNG. It is
  read in Python with the rest of the header when the files are listed (`data/index.py`
  `image_header`), as is a JPEG's EXIF orientation, and passed in as `decoding`: sniffing and
  parsing in TensorFlow cost every file (about 10% more CPU time on 10,000 PNGs of 64x64,
  benchmarks/decode.py).
- JPEG: the accurate integer DCT (the pixels Pillow and libjpeg's default give); CMYK becomes
  RGB; the EXIF orientation tag is applied, so a phone photo taken upright is upright.
- PNG: 16-bit channels are scaled to 8 bits, round(x / 257); palettes are expanded.
- GIF: the first frame. WebP: lossy or lossless, the first frame of an animation.
- BMP: the fourth byte of a 32-bit BMP is ignored (padding in most files, as Pillow reads it).
- Alpha (gray + alpha, RGBA, a palette with transparency) is composited on white.
- Then the folder's channel count: color to gray by `tf.image.rgb_to_grayscale`, gray to RGB by
  copying the channel; and the image is resized (antialiased) unless it already has the size.
"""

import tensorflow as tf


def load_image(path, image_size, channels, decoding, ready=False):
    """Reads one image file as uint8 of shape `image_size + (channels,)`; `decoding` is what
    `image_header` read from its first bytes (its type; a JPEG's EXIF orientation), a tensor or,
    when every file has the same, an int. `ready`: the headers said that the file has the
    channels and size already, so it is not checked and converted per file (a file that has
    not fails in `tf.ensure_shape`, and the caller decodes it again without `ready`)."""
    image = decode_file(tf.io.read_file(path), decoding)
    if not ready:  # an image that has the channels and size already is kept as it is
        same = tf.reduce_all(tf.shape(image) == tf.constant([*image_size, channels]))
        image = tf.cond(same, lambda: image, lambda: fit(image, image_size, channels))
    return tf.ensure_shape(image, [image_size[0], image_size[1], channels])


def fit(image, image_size, channels):
    """`image` with `channels` (see `to_channels`), resized (antialiased) to `image_size`."""
    image = to_channels(image, channels)

    def resize():
        resized = tf.image.resize(image, image_size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    same_size = tf.reduce_all(tf.shape(image)[:2] == tf.constant(image_size))
    return tf.cond(same_size, lambda: image, resize)


def decode_file(contents, decoding):
    """uint8 pixels (height, width, 1 to 4 channels) of a file's bytes, 8 bits per channel,
    upright: `decoding` 0 decodes with `tf.io.decode_image` (PNG, GIF, WebP, BMP up to 24 bits),
    1 to 8 a JPEG with that EXIF orientation, 9 a 16-bit PNG, 10 a 32-bit BMP (a tensor, or an
    int when every file has the same)."""

    def jpeg(orientation):
        def decode():  # a transpose (orientations 5 to 8), then flips, as a viewer shows it
            image = tf.io.decode_jpeg(contents, dct_method="INTEGER_ACCURATE")
            if orientation >= 5:
                image = tf.transpose(image, [1, 0, 2])
            if orientation in (2, 3, 6, 7):
                image = tf.reverse(image, [1])
            if orientation in (3, 4, 7, 8):
                image = tf.reverse(image, [0])
            return image

        return decode

    def png_16_bits():  # round(x / 257); x / 257 is never a half
        pixels = tf.cast(tf.io.decode_png(contents, dtype=tf.uint16), tf.int32)
        return tf.cast((pixels + 128) // 257, tf.uint8)

    def bmp_32_bits():  # the fourth byte is padding in most files (Pillow ignores it too)
        return tf.io.decode_bmp(contents)[..., :3]

    def other():
        return tf.io.decode_image(contents, expand_animations=False)

    jpegs = [jpeg(orientation) for orientation in range(1, 9)]
    branches = [other, *jpegs, png_16_bits, bmp_32_bits]
    if isinstance(decoding, int):  # the same for every file: no switch to build and run
        return branches[decoding]()
    return tf.switch_case(tf.cast(decoding, tf.int32), branches)


def to_channels(image, channels):
    """Alpha (a second or fourth channel) composited on white, then `channels` (1 or 3)."""
    count = tf.shape(image)[-1]

    def on_white():
        color = tf.cast(image[..., :-1], tf.int32)
        alpha = tf.cast(image[..., -1:], tf.int32)
        # round((color * alpha + 255 * (255 - alpha)) / 255); the division is never a half.
        return tf.cast((color * alpha + 255 * (255 - alpha) + 127) // 255, tf.uint8)

    image = tf.cond((count == 2) | (count == 4), on_white, lambda: image)
    if channels == 1:
        return tf.cond(tf.shape(image)[-1] == 3, lambda: tf.image.rgb_to_grayscale(image),
                       lambda: image)
    return tf.cond(tf.shape(image)[-1] == 1, lambda: tf.tile(image, [1, 1, 3]), lambda: image)


# In the order they are written into the exported module.
IMAGE_FUNCTIONS = (load_image, fit, decode_file, to_channels)
