"""CNN + spatial attention + BiLSTM + temporal attention (after Kerdegari et al. 2021).

Per frame, a 2-D CNN gives feature maps; a spatial attention map (softmax over positions)
pools them into a frame vector, so the model can look at the vertical artefacts below the
pleura and ignore the rest. A bidirectional LSTM reads the frame vectors in both time
directions, and additive temporal attention pools its outputs into the clip vector. The
linear head is shared by time steps and clip, so the clip logits are the attention-weighted
mean of the per-frame logits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lungus.models.base import VideoClassifier, check_video_input, frame_mask_or_none
from lungus.models.frame_encoder import (
    build_frame_encoder,
    encoder_torchvision_weights,
    frame_encoder_args,
    frame_encoder_check,
)
from lungus.models.layers import AdditiveAttentionPool
from lungus.models.registry import CLASSIFIER, Arg, register_model
from lungus.models.weights import TORCHVISION_WEIGHTS, TorchvisionWeights


@register_model(
    "cnn_lstm",
    kind=CLASSIFIER,
    summary="2-D CNN per frame + spatial attention + BiLSTM + temporal attention (Kerdegari 2021)",
    args=frame_encoder_args(16)
    + (
        Arg("hidden", 64, "LSTM hidden size per direction", int, minimum=1, maximum=4096),
        Arg("lstm_layers", 1, "stacked BiLSTM layers", int, minimum=1, maximum=4),
        Arg(
            "attention_hidden", 64, "hidden size of the temporal attention network", int, minimum=1, maximum=4096
        ),
        Arg("dropout", 0.2, "dropout before the classifier", float, minimum=0.0, maximum=1.0),
    ),
    recommended_input={"size": [96, 96], "frames": 16},
    pretrained_weights=lambda args: TORCHVISION_WEIGHTS.get(args["backbone"]),
    cross_check=lambda args: frame_encoder_check(args, 16),
)
class CNNLSTM(VideoClassifier):
    def __init__(
        self,
        num_classes: int,
        width: int = 16,
        blocks: int = 1,
        norm: str = "batch",
        backbone: str = "simple",
        hidden: int = 64,
        lstm_layers: int = 1,
        attention_hidden: int = 64,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = build_frame_encoder(backbone, width, blocks, norm)
        dim = self.encoder.out_channels
        self.spatial_score = nn.Conv2d(dim, 1, kernel_size=1)
        self.lstm = nn.LSTM(dim, hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True)
        self.temporal_attention = AdditiveAttentionPool(2 * hidden, attention_hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, num_classes)

    def _sequence(self, x: Tensor, frame_mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """-> LSTM outputs (B, T, 2*hidden), spatial attention (B, T, h, w), checked mask."""
        check_video_input(x)
        mask = frame_mask_or_none(frame_mask, x.shape[0], x.shape[2])
        b, t = x.shape[0], x.shape[2]
        maps = self.encoder(x.transpose(1, 2).reshape(b * t, 1, x.shape[3], x.shape[4]))
        scores = self.spatial_score(maps).flatten(1)  # (B*T, h*w)
        attention = torch.softmax(scores, dim=1)
        vectors = torch.einsum("np,ncp->nc", attention, maps.flatten(2)).reshape(b, t, -1)
        if mask is None:
            outputs = self.lstm(vectors)[0]
        else:
            # Pack so the backward direction starts at each clip's last real frame, not at padding.
            lengths = mask.sum(dim=1).cpu()
            packed = pack_padded_sequence(vectors, lengths, batch_first=True, enforce_sorted=False)
            outputs = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=t)[0]
        return outputs, attention.reshape(b, t, maps.shape[2], maps.shape[3]), mask

    def forward(self, x: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        outputs, _, mask = self._sequence(x, frame_mask)
        weights = self.temporal_attention(outputs, mask)
        return self.head(self.dropout(torch.einsum("bt,btd->bd", weights, outputs)))

    def explain(self, x: Tensor, frame_mask: Tensor | None = None) -> dict[str, Tensor]:
        outputs, spatial, mask = self._sequence(x, frame_mask)
        weights = self.temporal_attention(outputs, mask)
        return {
            "logits": self.head(self.dropout(torch.einsum("bt,btd->bd", weights, outputs))),
            "frame_logits": self.head(outputs),
            "frame_weights": weights,
            "spatial_attention": spatial,
        }

    def gradcam_layer(self) -> nn.Module:
        return self.encoder.cam_layer()

    def torchvision_weights(self) -> TorchvisionWeights | None:
        return encoder_torchvision_weights(self.encoder)
