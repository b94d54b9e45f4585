"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout augmentation.

Applied to real and fake images in both the discriminator and the generator updates, so the
discriminator never sees un-augmented images and gradients flow through the augmentation to G.
Images are NHWC in [-1, 1].

The ops are written once in ``keras.ops`` and run unchanged on every backend. Their randomness
comes in as an argument: ``uniforms`` of shape (batch, ``uniforms_needed(ops)``), values in
[0, 1), drawn by the caller's backend RNG (TensorFlow: the checkpointed ``tf.random.Generator``;
JAX: a key derived from (seed, step)). Pinning those draws pins the output, which is how the two
backends are tested against each other. Per image:

    color        brightness ~ U[-0.5, 0.5), saturation ~ U[0, 2), contrast ~ U[0.5, 1.5)
    translation  shift ~ uniform integer in [-r, r] per axis, r = round(side / 8), zero fill
    cutout       a zero square of half the side, centre ~ uniform integer position

Adaptive augmentation (``augment_p: ada``, after Karras et al. 2020, StyleGAN2-ADA): each op is
applied to each image with probability p, one more uniform per op deciding it (``gates``). p is
training state: every ``ADA_INTERVAL`` steps it moves by ``ADA_INTERVAL * batch / ada_speed``
towards keeping r_t = E[sign(D(real))] at ``ada_target`` (up when D is over-confident on the
reals it sees, which is how over-fitting shows, down otherwise), clipped to [0, 1].
"""

from __future__ import annotations

from keras import ops

TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the side, zero-filled
CUTOUT_RATIO = 0.5  # erase a square of half the side


def _uniform_int(u, count: int):
    """U[0, 1) -> an integer uniform on 0..count-1."""
    return ops.cast(ops.minimum(ops.floor(u * count), count - 1), "int32")


def _color(x, u):
    brightness = ops.reshape(u[:, 0], (-1, 1, 1, 1)) - 0.5
    saturation = ops.reshape(u[:, 1], (-1, 1, 1, 1)) * 2.0
    contrast = ops.reshape(u[:, 2], (-1, 1, 1, 1)) + 0.5
    x = x + brightness
    grey = ops.mean(x, axis=3, keepdims=True)
    x = grey + (x - grey) * saturation
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    return mean + (x - mean) * contrast


def _translation(x, u):
    height, width = x.shape[1], x.shape[2]
    pad_h = int(height * TRANSLATION_RATIO + 0.5)
    pad_w = int(width * TRANSLATION_RATIO + 0.5)
    shift_y = _uniform_int(u[:, 0], 2 * pad_h + 1) - pad_h  # in [-pad_h, pad_h]
    shift_x = _uniform_int(u[:, 1], 2 * pad_w + 1) - pad_w
    padded = ops.pad(x, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
    rows = ops.arange(height, dtype="int32")[None, :] + pad_h + shift_y[:, None]  # (batch, H)
    cols = ops.arange(width, dtype="int32")[None, :] + pad_w + shift_x[:, None]  # (batch, W)
    x = ops.take_along_axis(padded, rows[:, :, None, None], axis=1)
    return ops.take_along_axis(x, cols[:, None, :, None], axis=2)


def _cutout(x, u):
    height, width = x.shape[1], x.shape[2]
    cut_h = int(height * CUTOUT_RATIO + 0.5)
    cut_w = int(width * CUTOUT_RATIO + 0.5)
    # Centres may sit near the border, so the erased square can be partly outside the image.
    centre_y = _uniform_int(u[:, 0], height + (1 - cut_h % 2))[:, None, None]
    centre_x = _uniform_int(u[:, 1], width + (1 - cut_w % 2))[:, None, None]
    ys = ops.arange(height, dtype="int32")[None, :, None]
    xs = ops.arange(width, dtype="int32")[None, None, :]
    inside = ops.logical_and(
        ops.abs(ys - centre_y) < (cut_h + 1) // 2, ops.abs(xs - centre_x) < (cut_w + 1) // 2
    )
    keep = ops.cast(ops.logical_not(inside), x.dtype)[..., None]
    return x * keep


# name -> (op, how many U[0, 1) numbers it uses per image)
OPS = {"color": (_color, 3), "translation": (_translation, 2), "cutout": (_cutout, 2)}


ADA_INTERVAL = 4  # steps between two adjustments of p (StyleGAN2-ADA's ada_interval)


def uniforms_needed(ops_names: tuple[str, ...], gated: bool = False) -> int:
    """Columns of the ``uniforms`` array that ``diff_augment`` reads for these ops (one more per
    op when each is applied with a probability: ``gated``)."""
    return sum(OPS[name][1] for name in ops_names) + (len(ops_names) if gated else 0)


def diff_augment(x, ops_names: tuple[str, ...], uniforms, p=None):
    """Apply ``ops_names`` (keys of ``OPS``, in order) to a batch; identity when empty.

    Args:
        x: images (batch, H, W, C) in [-1, 1].
        ops_names: e.g. ("color", "translation", "cutout").
        uniforms: (batch, uniforms_needed(ops_names, gated=p is not None)) values in [0, 1):
            every random draw; with ``p`` an op's gate column follows its own columns.
        p: None: every op on every image; a scalar: each op on each image with probability p.
    """
    column = 0
    for name in ops_names:
        op, count = OPS[name]
        out = op(x, uniforms[:, column : column + count])
        column += count
        if p is not None:
            applied = ops.reshape(uniforms[:, column] < p, (-1, 1, 1, 1))
            out = ops.where(applied, out, x)
            column += 1
        x = out
    return x


def ada_adjust(p, sign_sum, images: int, target: float, speed: float):
    """StyleGAN2-ADA's update of p after ``images`` real images whose D logits' signs sum to
    ``sign_sum``: up by images/speed when r_t = sign_sum/images is above ``target``, down by as
    much when below, clipped to [0, 1]."""
    r_t = sign_sum / images
    return ops.clip(p + ops.sign(r_t - target) * (images / speed), 0.0, 1.0)
