"""Our Grad-CAM (head-only backward) vs captum's LayerGradCam on the same model and batch.

Usage: python perf/explain_speed.py --model cnn --batch 32 --reps 20 [--device cpu] [--threads 1]
Repetitions alternate between the two so machine load affects both alike; medians are reported.
"""

from __future__ import annotations

import torch
from captum.attr import LayerGradCam

from benchmark.explain import gradcam, normalize_maps
from benchmark.models import build_model
from benchmark.timing import prepare, report_ours_against_reference, speed_parser


def main() -> None:
    args = speed_parser(__doc__.splitlines()[0], classes=10, reps=20).parse_args()
    device, size = prepare(args)
    model = build_model(args.model, args.classes).to(device).eval()
    x = torch.rand(args.batch, 3, size, size, device=device)
    target = torch.randint(0, args.classes, (args.batch,), device=device)
    captum_cam = LayerGradCam(model, model.backbone)
    candidates = {
        "ours (gradcam)": lambda: gradcam(model, x, target),
        "captum LayerGradCam": lambda: normalize_maps(captum_cam.attribute(x, target=target)[:, 0].detach()),
    }
    torch.testing.assert_close(*(fn() for fn in candidates.values()), rtol=0, atol=1e-5)
    report_ours_against_reference(
        candidates, device, args.reps, f"model={args.model} batch={args.batch} size={size} device={device} "
        f"reps={args.reps}", "captum")


if __name__ == "__main__":
    main()
