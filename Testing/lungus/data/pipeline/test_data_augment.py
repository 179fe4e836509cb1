import numpy as np

from lungus.data.pipeline.augment import AugmentConfig, augment_clip


def _clip():
    frames = np.zeros((4, 48, 48), np.uint8)
    frames[:, 10:40, 22:26] = 200  # a vertical bright line: a "B-line"
    frames[:, 10:40, 8:40] += 40
    masks = np.zeros_like(frames)
    masks[:, 10:40, 22:26] = 3
    fan = np.zeros((48, 48), bool)
    fan[8:44, 4:44] = True
    return frames, masks, fan


def test_geometry_moves_image_and_mask_together():
    frames, masks, fan = _clip()
    for seed in range(20):
        out, out_masks = augment_clip(frames, masks, fan, np.random.default_rng(seed),
                                      AugmentConfig(zoom=0.1, lateral_shift=0.1))
        line = out_masks == 3
        # Where the mask says B-line the image is much brighter than the rest of the content,
        # whatever the intensity changes: image and mask moved together.
        assert line.sum() > 0
        rest = (out > 0) & ~line
        assert out[line].mean() > out[rest].mean() + 60, seed


def test_same_parameters_for_every_frame():
    frames, _, fan = _clip()
    out, _ = augment_clip(frames, None, fan, np.random.default_rng(1), AugmentConfig(speckle=0.0, time_reversal=0))
    assert all(np.array_equal(out[0], out[t]) for t in range(1, 4))


def test_outside_the_fan_stays_black_and_draws_differ():
    frames, _, fan = _clip()
    a, _ = augment_clip(frames, None, fan, np.random.default_rng(1), AugmentConfig(rotation_deg=0, depth_shift=0))
    b, _ = augment_clip(frames, None, fan, np.random.default_rng(2), AugmentConfig(rotation_deg=0, depth_shift=0))
    assert (a[:, ~fan] == 0).all()
    assert not np.array_equal(a, b)


def test_time_reversal_reverses_frame_order():
    frames = np.stack([np.full((16, 16), 10 * t, np.uint8) for t in range(5)])
    fan = np.ones((16, 16), bool)
    config = AugmentConfig(gain=(1, 1), contrast=(1, 1), log_gamma=0, speckle=0, rotation_deg=0, flip=0,
                           depth_shift=0, time_reversal=1.0)
    out, _ = augment_clip(frames, None, fan, np.random.default_rng(0), config)
    assert [int(f.mean()) for f in out] == [40, 30, 20, 10, 0]
