import torch

from lungus.models import build_model
from lungus.models.frame_cnn import context_channels


def test_context_channels_are_frame_deviation_and_temporal_std():
    frames = torch.stack([torch.full((4, 4), float(v)) for v in (1.0, 3.0)])[None]  # (1, 2, 4, 4)
    channels = context_channels(frames)
    assert channels.shape == (1, 2, 3, 4, 4)
    assert torch.allclose(channels[0, :, 0, 0, 0], torch.tensor([1.0, 3.0]))
    assert torch.allclose(channels[0, :, 1, 0, 0], torch.tensor([-1.0, 1.0]))
    assert torch.allclose(channels[0, :, 2, 0, 0], torch.tensor([4.0, 4.0]))  # 4 x std 1


def test_padding_frames_do_not_change_the_context():
    frames = torch.rand(1, 5, 6, 6)
    mask = torch.tensor([[True, True, True, False, False]])
    padded = context_channels(frames, mask)[0, :3]
    alone = context_channels(frames[:, :3])[0]
    assert torch.allclose(padded, alone, atol=1e-6)


def test_context_plain_frame_cnn_runs_and_explains_any_length():
    model = build_model("frame_cnn", 2, backbone="plain", context=True, width=4).eval()
    for frames in (1, 5):
        x = torch.randn(2, 1, frames, 32, 32)
        out = model.explain(x)
        assert out["logits"].shape == (2, 2)
        assert out["frame_logits"].shape == (2, frames, 2)
        assert torch.allclose(model(x), out["logits"], atol=1e-5)
