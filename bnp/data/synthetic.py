"""A built-in classification problem with badly scaled, off-centre inputs.

The point of BN and BNP is to undo two defects of raw inputs: a mean far from
zero and features on very different scales. Both make the Hessian of the loss
ill-conditioned (THEORY.md), so plain gradient descent must take tiny steps.
This generator produces such data from a seed, with both defects on a knob:

* ``mean_shift``: every feature's mean, in units of its own standard deviation.
* ``scale_spread``: the ratio of the largest to the smallest feature standard
  deviation. The deviations are log-spaced with geometric mean 1.

How a sample is made (all from one NumPy generator seeded by ``seed``):

1. *Vectors*: a class is a mixture of ``CLUSTERS_PER_CLASS`` Gaussian clusters
   in a ``LATENT_DIM``-dimensional latent space (centres drawn with spread
   ``CLASS_SEP``); the latent point is mapped to ``n_features`` by a fixed
   random linear map and unit Gaussian noise is added. Several clusters per
   class make the classes non-convex: on standardized inputs with the default
   sizes a linear model reaches about 78 % test accuracy, a small MLP about 95 %.
   *Images*: a class is a mixture of smooth random templates; a sample is a
   template with random contrast, shifted by up to one pixel, plus smooth and
   white noise: local, translated structure for a convnet (8x8 images:
   about 67 % linear, 82 % small MLP).
2. Each feature (pixel) is standardized over the whole set (mean 0, std 1).
3. Feature ``j`` becomes ``s_j * (z_j + mean_shift)``, with ``s_j`` log-spaced
   between ``scale_spread ** -0.5`` and ``scale_spread ** 0.5``: randomly
   assigned to features for vectors, a smooth gradient from the top-left to
   the bottom-right corner for images.

Classes are balanced (sizes differ by at most one).
"""

from __future__ import annotations

import numpy  # host-side data generation

from .dataset import Dataset

LATENT_DIM = 4
CLUSTERS_PER_CLASS = 3
CLASS_SEP = 3.0
IMAGE_TEMPLATES_PER_CLASS = 2
IMAGE_NOISE = 1.0


def synthetic(
    n_train: int = 2000,
    n_test: int = 500,
    n_features: int = 20,
    n_classes: int = 4,
    mean_shift: float = 3.0,
    scale_spread: float = 100.0,
    seed: int = 0,
    image_shape: tuple[int, int] | None = None,
) -> Dataset:
    """Generate the synthetic classification set (see the module docstring).

    Args:
        n_train, n_test: numbers of samples in the two parts.
        n_features: length of each vector (ignored for images: H * W pixels).
        n_classes: number of classes, >= 2.
        mean_shift: each feature's mean divided by its standard deviation (0 = centred).
        scale_spread: largest / smallest feature standard deviation, >= 1 (1 = equal scales).
        seed: the generator's seed; the same arguments give the same data.
        image_shape: (H, W) to get images of shape (N, 1, H, W) instead of vectors.

    Returns:
        a Dataset with float64 X and int64 y; X_train (n_train, n_features) or
        (n_train, 1, H, W).
    """
    if n_train < 1 or n_test < 0:
        raise ValueError(f"synthetic: need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    if n_classes < 2:
        raise ValueError(f"synthetic: n_classes must be >= 2, got {n_classes}")
    if scale_spread < 1:
        raise ValueError(f"synthetic: scale_spread (largest / smallest std) must be >= 1, got {scale_spread}")
    rng = numpy.random.default_rng(seed)
    n = n_train + n_test
    y = rng.permutation(numpy.arange(n) % n_classes)
    if image_shape is None:
        if n_features < 1:
            raise ValueError(f"synthetic: n_features must be >= 1, got {n_features}")
        z = _vectors(rng, y, n_classes, n_features)
        t = rng.permutation(numpy.linspace(0.0, 1.0, n_features))
    else:
        H, W = _check_image_shape(image_shape)
        z = _images(rng, y, n_classes, H, W).reshape(n, H * W)
        rows, cols = numpy.meshgrid(_ramp(H), _ramp(W), indexing="ij")
        t = ((rows + cols) / 2).reshape(-1)  # 0 in the top-left corner, 1 in the bottom-right
    std = z.std(axis=0)
    z = (z - z.mean(axis=0)) / numpy.where(std > 0, std, 1.0)  # std is 0 only for a single sample
    scale = scale_spread ** (t - 0.5)
    X = scale * (z + mean_shift)
    if image_shape is not None:
        X = X.reshape(n, 1, H, W)
    name = f"synthetic(seed={seed}, mean_shift={mean_shift:g}, scale_spread={scale_spread:g})"
    return Dataset(X[:n_train], y[:n_train].astype(numpy.int64), X[n_train:], y[n_train:].astype(numpy.int64),
                   n_classes, name)


def _vectors(rng: numpy.random.Generator, y: numpy.ndarray, n_classes: int, n_features: int) -> numpy.ndarray:
    """(N, n_features): Gaussian clusters in a small latent space, mapped linearly, plus noise."""
    n = len(y)
    centres = rng.standard_normal((n_classes * CLUSTERS_PER_CLASS, LATENT_DIM)) * CLASS_SEP
    cluster = y * CLUSTERS_PER_CLASS + rng.integers(0, CLUSTERS_PER_CLASS, n)
    latent = centres[cluster] + rng.standard_normal((n, LATENT_DIM))
    mixing = rng.standard_normal((LATENT_DIM, n_features)) / numpy.sqrt(LATENT_DIM)
    return latent @ mixing + rng.standard_normal((n, n_features))


def _images(rng: numpy.random.Generator, y: numpy.ndarray, n_classes: int, H: int, W: int) -> numpy.ndarray:
    """(N, H, W): shifted smooth templates with random contrast, plus smooth and white noise."""
    n, width = len(y), max(H, W) / 8
    templates = _smooth(rng.standard_normal((n_classes * IMAGE_TEMPLATES_PER_CLASS, H, W)), width)
    which = y * IMAGE_TEMPLATES_PER_CLASS + rng.integers(0, IMAGE_TEMPLATES_PER_CLASS, n)
    x = templates[which] * rng.uniform(0.7, 1.3, (n, 1, 1))
    shifts = rng.integers(-1, 2, (n, 2))
    x = numpy.stack([numpy.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(x, shifts, strict=True)])
    noise = _smooth(rng.standard_normal((n, H, W)), width) + 0.3 * rng.standard_normal((n, H, W))
    return x + IMAGE_NOISE * noise


def _smooth(noise: numpy.ndarray, width: float) -> numpy.ndarray:
    """Gaussian blur (periodic, via the FFT) of each (H, W) field, rescaled to unit std."""
    H, W = noise.shape[-2:]
    fy, fx = numpy.fft.fftfreq(H)[:, None], numpy.fft.fftfreq(W)[None, :]
    gain = numpy.exp(-2 * (numpy.pi * width) ** 2 * (fy**2 + fx**2))
    field = numpy.real(numpy.fft.ifft2(numpy.fft.fft2(noise) * gain))
    return field / field.std(axis=(-2, -1), keepdims=True)


def _ramp(k: int) -> numpy.ndarray:
    return numpy.linspace(0.0, 1.0, k) if k > 1 else numpy.zeros(1)


def _check_image_shape(image_shape: tuple[int, int]) -> tuple[int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"synthetic: image_shape must be (H, W) with H, W >= 2, got {image_shape!r}")
    return shape  # type: ignore[return-value]
