from __future__ import annotations

import math

import pytest
import torch

from tunelab.data import (
    Augment,
    gaussian_noise,
    hflip,
    random_affine,
    random_crop,
    random_erase,
)
from tunelab.errors import DataError

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
        ],
    ),
]

ALL_STEPS = [
    {"name": "crop", "padding": 3, "fill": 0.0},
    {"name": "flip", "p": 0.5},
    {"name": "affine", "degrees": 20.0, "translate": 0.1, "p": 0.8},
    {"name": "noise", "std": 0.1, "p": 0.5},
    {"name": "erase", "p": 0.5, "scale": [0.02, 0.2], "ratio": [0.3, 3.3], "value": 0.0},
]


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def images(n: int = 16, c: int = 3, h: int = 12, w: int = 10, device: str = "cpu") -> torch.Tensor:
    # Strictly positive so that a fill/erase value of 0 or below is recognisable.
    return torch.rand(n, c, h, w, generator=gen(123), dtype=torch.float32).to(device) + 0.1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("step", ALL_STEPS, ids=[s["name"] for s in ALL_STEPS])
def test_each_step_keeps_shape_dtype_device_and_is_reproducible(step, device):
    x = images(device=device)
    aug = Augment([step])
    out = aug(x, gen(0, device))
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert out.device == x.device
    assert torch.equal(out, aug(x, gen(0, device)))
    assert not torch.equal(out, aug(x, gen(1, device)))
    assert torch.equal(x, images(device=device)), "the input must not be modified"


def test_pipeline_applies_steps_in_order():
    x = images()
    steps = [{"name": "crop", "padding": 2, "fill": 0.0}, {"name": "flip", "p": 1.0}]
    g = gen(5)
    expected = hflip(random_crop(x, padding=2, fill=0.0, generator=g), p=1.0, generator=g)
    assert torch.equal(Augment(steps)(x, gen(5)), expected)
    assert Augment(ALL_STEPS)(x, gen(0)).shape == x.shape


def test_empty_augment_is_false_and_identity():
    assert not Augment([])
    assert Augment([{"name": "flip", "p": 0.5}])
    x = images()
    assert torch.equal(Augment([])(x, gen(0)), x)


def test_unknown_step_name_suggests_the_closest():
    with pytest.raises(DataError, match=r"unknown augmentation `crpo`.*did you mean `crop`"):
        Augment([{"name": "crpo", "padding": 2, "fill": 0.0}])


def test_check_rejects_image_steps_on_tabular_data():
    with pytest.raises(DataError) as info:
        Augment([{"name": "noise", "std": 0.1, "p": 1.0}, ALL_STEPS[0]]).check((64,))
    message = str(info.value)
    assert "`crop`" in message and "(C, H, W)" in message and "(64,)" in message
    assert "train.augment" in message and "`noise`" in message
    Augment(ALL_STEPS).check((3, 12, 10))


def test_noise_works_on_tabular_batches():
    x = torch.zeros(8, 64)
    out = Augment([{"name": "noise", "std": 0.5, "p": 1.0}])(x, gen(0))
    assert out.shape == (8, 64)
    assert out.std() > 0.3


def test_crop_with_padding_zero_is_identity():
    x = images()
    assert torch.equal(random_crop(x, padding=0, generator=gen(0)), x)


def test_crop_matches_a_per_sample_shifted_reference():
    x = images(n=64, c=2)
    padding, fill = 3, -1.0
    out = random_crop(x, padding=padding, fill=fill, generator=gen(7))
    _, _, h, w = x.shape
    shifts = set()
    for i in range(len(x)):
        # The sample must equal the input shifted by some (dy, dx) with the border filled.
        matches = []
        for dy in range(-padding, padding + 1):
            for dx in range(-padding, padding + 1):
                ref = torch.full_like(x[i], fill)
                ref[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
                    i, :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
                ]
                if torch.equal(out[i], ref):
                    matches.append((dy, dx))
        assert len(matches) == 1, f"sample {i} is not a single shifted copy of its input"
        shifts.add(matches[0])
    assert len(shifts) > 10, "each sample should get its own shift"


def test_crop_fills_the_vacated_border():
    x = images(n=200)
    out = random_crop(x, padding=2, fill=-5.0, generator=gen(0))
    assert (out == -5.0).any()
    # Corners are vacated unless the shift on that side is zero, so most samples show fill.
    corners = out[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == -5.0).any(dim=(1, 2)).float().mean() > 0.5
    assert ((out == -5.0) | (out >= 0.1)).all()


def test_hflip_always_never_and_half():
    x = images(n=1000, c=1, h=4, w=5)
    assert torch.equal(hflip(x, p=1.0, generator=gen(0)), torch.flip(x, dims=[-1]))
    assert torch.equal(hflip(x, p=0.0, generator=gen(0)), x)
    out = hflip(x, p=0.5, generator=gen(0))
    flipped = (out == torch.flip(x, dims=[-1])).flatten(1).all(dim=1)
    kept = (out == x).flatten(1).all(dim=1)
    assert bool((flipped ^ kept).all())
    assert 400 < int(flipped.sum()) < 600


def test_affine_with_nothing_to_do_is_identity():
    x = images()
    out = random_affine(x, degrees=0.0, translate=0.0, generator=gen(0))
    assert float((out - x).abs().max()) < 1e-5


def test_affine_rotation_keeps_mass_and_moves_pixels():
    # A centred disc in a wide image: rotation about the centre maps it onto itself, so its
    # mass stays and it barely changes (it would turn into an ellipse if the rotation ignored
    # the aspect ratio); a lopsided blob keeps its mass but moves.
    h, w = 24, 40
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    disc = (((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) < 81).float()
    for blob, symmetric in ((disc, True), (disc * (1 + xx / w), False)):
        x = blob.expand(8, 1, h, w).contiguous()
        out = random_affine(x, degrees=45.0, translate=0.0, generator=gen(0))
        mass = x.sum(dim=(1, 2, 3))
        assert torch.allclose(out.sum(dim=(1, 2, 3)), mass, rtol=0.03, atol=0)
        change = (out - x).abs().sum(dim=(1, 2, 3)) / mass
        if symmetric:
            assert float(change.max()) < 0.15
        else:
            assert float(change.max()) > 0.1


def test_affine_p_zero_returns_input_exactly():
    x = images()
    assert torch.equal(random_affine(x, degrees=30, translate=0.2, p=0.0, generator=gen(0)), x)


def test_affine_fill_marks_pixels_from_outside():
    x = images(n=32)
    out = random_affine(x, degrees=0.0, translate=0.3, fill=-2.0, generator=gen(0))
    assert (out == -2.0).any()
    assert out.min() >= -2.0 - 1e-5


def test_noise_statistics():
    x = torch.full((2000, 1, 8, 8), 0.5)
    out = gaussian_noise(x, std=0.2, generator=gen(0))
    diff = out - x
    assert abs(float(diff.mean())) < 0.005
    assert abs(float(diff.std()) - 0.2) < 0.005
    half = gaussian_noise(x, std=0.2, p=0.5, generator=gen(0))
    touched = (half != x).flatten(1).any(dim=1).float().mean()
    assert 0.45 < float(touched) < 0.55


def test_erase_sets_one_rectangle_of_value_within_scale():
    n, h, w = 200, 32, 32
    x = images(n=n, c=3, h=h, w=w)
    scale = (0.05, 0.3)
    out = random_erase(x, p=1.0, scale=scale, ratio=(0.5, 2.0), value=-1.0, generator=gen(0))
    erased = out == -1.0
    assert bool((erased.all(dim=1) == erased.any(dim=1)).all()), "same rectangle in every channel"
    mask = erased[:, 0]
    assert torch.equal(out[~erased], x[~erased])
    rows, cols = mask.any(dim=2), mask.any(dim=1)
    eh, ew = rows.sum(dim=1), cols.sum(dim=1)
    # The erased pixels form exactly the bounding rectangle.
    assert torch.equal(mask.sum(dim=(1, 2)), eh * ew)
    fraction = (eh * ew).float() / (h * w)
    # Rounding the sides to whole pixels moves the area a little past the bounds.
    assert float(fraction.min()) > scale[0] * 0.7
    assert float(fraction.max()) < scale[1] * 1.3
    assert fraction.std() > 0.02, "each sample gets its own rectangle"


def test_erase_probability():
    x = images(n=1000, c=1, h=16, w=16)
    out = random_erase(x, p=0.3, scale=(0.1, 0.2), ratio=(1.0, 1.0), value=0.0, generator=gen(0))
    erased = (out == 0).flatten(1).any(dim=1).float().mean()
    assert 0.25 < float(erased) < 0.35
    assert torch.equal(random_erase(x, p=0.0, scale=(0.1, 0.2), ratio=(1, 1), generator=gen(0)), x)


def test_erase_ratio_is_height_over_width():
    x = images(n=50, c=1, h=40, w=40)
    out = random_erase(x, p=1.0, scale=(0.1, 0.1), ratio=(4.0, 4.0), value=0.0, generator=gen(0))
    mask = out[:, 0] == 0
    eh, ew = mask.any(dim=2).sum(dim=1), mask.any(dim=1).sum(dim=1)
    assert bool(((eh.float() / ew) > 3).all())
    assert math.isclose(float((eh * ew).float().mean()), 160, rel_tol=0.1)
