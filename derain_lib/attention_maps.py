"""SIAN's scale-space attention as numbers: one forward pass kept as numpy arrays
(drawn by :mod:`derain_lib.viz.attention`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .errors import DerainError
from .inference import model_device, to_tensor
from .metrics import score_pair
from .models import SIAN, check_image_size
from .precision import autocast


class NoAttentionError(DerainError):
    """A model without scale-space attention (PReNet, SIAN baseline variants)."""


@dataclass
class Attention:
    """Everything one SIAN forward pass shows, batch dimension removed, float32 numpy.

    ``masks[k][s]`` is (C, h_s, w_s), ``dog[k][s]`` (L_dog, C, h_s, w_s),
    ``octaves[k][s]`` (L_oct, C, h_s, w_s) for stage index ``k`` (0-based) and scale
    ``s``; ``rain[k]`` and ``outputs[k]`` are (H, W, 3); ``image`` is the input (H, W, 3).
    """

    image: np.ndarray
    outputs: list[np.ndarray]
    rain: list[np.ndarray]
    masks: list[dict[int, np.ndarray]]
    dog: list[dict[int, np.ndarray]]
    octaves: list[dict[int, np.ndarray]]

    @property
    def n_stages(self) -> int:
        return len(self.outputs)

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(sorted(self.masks[0]))

    @property
    def channels(self) -> int:
        return self.masks[0][1].shape[0]

    def n_layers(self, what: str) -> int:
        """How many layers ``dog`` or ``octave`` views have (1 for the others)."""
        if what == "dog":
            return self.dog[0][1].shape[0]
        if what == "octave":
            return self.octaves[0][1].shape[0]
        return 1


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).float().cpu().numpy()


@torch.inference_mode()
def compute_attention(model: nn.Module, image: np.ndarray, precision: str = "fp32") -> Attention:
    """Run ``model`` (a SIAN with attention) once on ``image`` (float HWC RGB in [0, 1]),
    in ``precision`` (fp32, bf16 or auto), on the model's device; arrays back on the CPU."""
    if not isinstance(model, SIAN):
        raise NoAttentionError(
            f"{type(model).__name__} has no scale-space attention; the explorer needs SIAN weights"
        )
    if not model.config.attention:
        raise NoAttentionError(
            f"SIAN variant {model.config.variant!r} has no attention masks; "
            "the explorer needs the full variant"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise DerainError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    check_image_size(*image.shape[:2])
    model.eval()
    device = model_device(model)
    with autocast(precision, device):
        outputs, records = model(to_tensor(image, device), return_attention=True)

    def per_scale(key: str) -> list[dict[int, np.ndarray]]:
        return [{s: v[0].float().cpu().numpy() for s, v in r[key].items()} for r in records]

    return Attention(
        image=np.asarray(image, dtype=np.float32),
        outputs=[_hwc(o) for o in outputs],
        rain=[_hwc(r["rain"]) for r in records],
        masks=per_scale("masks"),
        dog=per_scale("dog"),
        octaves=per_scale("octaves"),
    )


def stage_scores(att: Attention, clean: np.ndarray) -> list[dict]:
    """PSNR/SSIM (MATLAB Y) of each stage's output X_k against the ground truth ``clean``:
    one row per stage (the paper's Fig. 6: "improved gradually stage-by-stage")."""
    return [
        {"stage": k + 1, "psnr": p, "ssim": s}
        for k, (p, s) in enumerate(score_pair(out, clean) for out in att.outputs)
    ]
