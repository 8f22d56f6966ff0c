"""Decode one image file in TensorFlow: its bytes to upright, 8-bit pixels of the folder's channels.

Every function of `IMAGE_FUNCTIONS` is copied verbatim into the exported module, so a trial and
the exported pipeline decode, orient, convert and resize every file the same way. They may use
only TensorFlow. What each kind of file gives (docs/files.md says it for users):

- The type comes from the file's first bytes, not its name: a PNG named `.jpg` is a PNG.
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


def load_image(path, image_size, channels):
    """Reads one image file as uint8 of shape `image_size + (channels,)`."""
    image = to_channels(decode_image_bytes(tf.io.read_file(path)), channels)

    def resize():
        resized = tf.image.resize(image, image_size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    # An image already at `image_size` skips the resize (the same pixels, half the time).
    same_size = tf.reduce_all(tf.shape(image)[:2] == tf.constant(image_size))
    image = tf.cond(same_size, lambda: image, resize)
    return tf.ensure_shape(image, [image_size[0], image_size[1], channels])


def decode_image_bytes(contents):
    """uint8 pixels (height, width, 1 to 4 channels) of a BMP, GIF, JPEG, PNG or WebP file's
    bytes: the type sniffed from the first bytes, upright, 8 bits per channel."""
    head = tf.strings.join([tf.strings.substr(contents, 0, 25), b"\0" * 25])
    is_jpeg = tf.strings.substr(head, 0, 3) == b"\xff\xd8\xff"
    is_png = tf.strings.substr(head, 0, 8) == b"\x89PNG\r\n\x1a\n"
    is_16_bits = is_png & (tf.strings.substr(head, 24, 1) == b"\x10")  # IHDR's bit depth
    is_bmp = tf.strings.substr(head, 0, 2) == b"BM"

    def jpeg():
        image = tf.io.decode_jpeg(contents, dct_method="INTEGER_ACCURATE")
        return orient(image, exif_orientation(contents))

    def png_16_bits():
        wide = tf.cast(tf.io.decode_png(contents, dtype=tf.uint16), tf.int32)
        return tf.cast((wide + 128) // 257, tf.uint8)  # round(x / 257); x / 257 is never a half

    def other():  # PNG, GIF, BMP, WebP: tf.io.decode_image sniffs the same first bytes
        image = tf.io.decode_image(contents, expand_animations=False)
        return tf.cond(is_bmp, lambda: image[..., :3], lambda: image)

    return tf.cond(is_jpeg, jpeg, lambda: tf.cond(is_16_bits, png_16_bits, other))


def exif_orientation(contents):
    """The EXIF orientation tag (1 to 8) of a JPEG's bytes; 1 when there is none.

    Walks the segments of the first 64 KiB to the APP1 "Exif" one, then reads the tag in the
    first IFD of its TIFF block (either byte order). Unreadable values count as 1.
    """
    data = tf.io.decode_raw(tf.strings.substr(contents, 0, 65536), tf.uint8)
    data = tf.pad(tf.cast(data, tf.int64), [[0, 16]])  # zeros past the end stop the walk
    last = tf.size(data, out_type=tf.int64) - 1

    def number(positions, size, little_endian):
        """Unsigned integers of `size` bytes starting at `positions`."""
        offsets = tf.range(size, dtype=tf.int64)
        digits = tf.gather(data, tf.clip_by_value(positions[..., None] + offsets, 0, last))
        powers = tf.where(little_endian, offsets, size - 1 - offsets)
        return tf.reduce_sum(digits * 256 ** powers, axis=-1)

    def tiff_orientation(start):
        little_endian = data[tf.minimum(start, last)] == ord("I")  # "II" or "MM"
        ifd = start + number(start + 4, 4, little_endian)
        count = tf.minimum(number(ifd, 2, little_endian), 1024)
        entries = ifd + 2 + 12 * tf.range(count)
        tags = number(entries, 2, little_endian)
        values = number(entries + 8, 2, little_endian)
        value = tf.reduce_max(tf.concat([tf.boolean_mask(values, tags == 0x0112),
                                         tf.zeros([1], tf.int64)], 0))
        return tf.where((value >= 1) & (value <= 8), value, tf.ones_like(value))

    def segment(position, orientation):
        """One marker segment: the orientation if it is EXIF, 1 if the header ends, else 0."""
        marker = number(position, 2, False)
        exif = (marker == 0xFFE1) & (number(position + 4, 4, False) == 0x45786966)  # "Exif"
        ended = (marker < 0xFF00) | (marker == 0xFFDA)  # not a marker, or start of scan
        orientation = tf.cond(exif, lambda: tiff_orientation(position + 10),
                              lambda: tf.cast(ended, tf.int64))
        return position + 2 + number(position + 2, 2, False), orientation

    _, orientation = tf.while_loop(lambda position, orientation: orientation == 0, segment,
                                   (tf.constant(2, tf.int64), tf.constant(0, tf.int64)))
    return orientation


def orient(image, orientation):
    """Applies an EXIF orientation: a transpose (5 to 8), then left-right and up-down flips."""
    image = tf.cond(orientation >= 5, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
    flip_left_right = tf.reduce_any(orientation == tf.constant([2, 3, 6, 7], tf.int64))
    image = tf.cond(flip_left_right, lambda: tf.reverse(image, [1]), lambda: image)
    flip_up_down = tf.reduce_any(orientation == tf.constant([3, 4, 7, 8], tf.int64))
    return tf.cond(flip_up_down, lambda: tf.reverse(image, [0]), lambda: image)


def to_channels(image, channels):
    """Alpha (a second or fourth channel) composited on white, then `channels` (1 or 3)."""
    count = tf.shape(image)[-1]

    def on_white():
        color = tf.cast(image[..., :-1], tf.int32)
        alpha = tf.cast(image[..., -1:], tf.int32)
        # round((color * alpha + 255 * (255 - alpha)) / 255); the division is never a half.
        return tf.cast((color * alpha + 255 * (255 - alpha) + 127) // 255, tf.uint8)

    image = tf.cond((count == 2) | (count == 4), on_white, lambda: image)
    has_color = tf.shape(image)[-1] >= 3
    if channels == 1:
        image = tf.cond(
            has_color,
            lambda: tf.image.rgb_to_grayscale(image[..., :3]),
            lambda: image[..., :1],
        )
    else:
        image = tf.cond(
            has_color,
            lambda: image[..., :3],
            lambda: tf.image.grayscale_to_rgb(image[..., :1]),
        )
    return tf.ensure_shape(image, [None, None, channels])


# In the order they are written into the exported module.
IMAGE_FUNCTIONS = (load_image, decode_image_bytes, exif_orientation, orient, to_channels)
