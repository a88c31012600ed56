"""The README.md of an exported run: what each file is and code that loads the encoder.

The code blocks are executed by the tests (tests/runs/test_archive.py) from a real export, so they stay true.
"""
from __future__ import annotations

import time
from typing import Any

from sslcore.config import RunConfig

_TEMPLATE = '''# {name}

An sslcore run, exported {exported}: the `{task}` pretext task on `{dataset}` with a `{encoder}` encoder
(width {width}), {epochs_done} of {epochs} epochs trained; it ended `{state}`.
Original run id: `{run_id}`.

| File | What it holds |
|---|---|
| `config.json` | the full run config; `python -m sslcore train --config config.json` trains it again |
| `encoder.safetensors` | the final encoder weights, its input normalisation (mean/std buffers) included |
| `metrics.csv` | every logged record, one row each (`kind` is `step` or `epoch`) |
| `metrics.jsonl` | the same records as JSON lines, as the run folder keeps them |
| `status.json` | how the run ended |
| `eval.json` | label-efficiency results, if the run was evaluated |
| `snapshots/` | what the model made of a few test images, per epoch (`numpy.load`) |

## Load the encoder

The encoder takes {input_text} (it normalises them
itself) and returns features of shape (B, {feature_dim}). Run either snippet in the folder where you
unzipped this file; both need PyTorch, `safetensors` and `sslcore` (which defines the architecture).

With sslcore's helper, which reads the architecture from `config.json`:

```python
from sslcore.runs.archive import load_encoder

encoder = load_encoder("encoder.safetensors", "config.json")  # eval mode, on the CPU
```

In plain PyTorch, building the architecture by hand:

```python
import torch
from safetensors.torch import load_file
from sslcore.models import build_encoder

encoder = build_encoder("{encoder}", {shape}, width={width}, depth={depth}, norm="{norm}", patch_size={patch_size})
encoder.load_state_dict(load_file("encoder.safetensors"))
encoder.eval()

images = torch.rand(16, {batch_shape})  # {example}
with torch.no_grad():
    features = encoder(images)
print(features.shape)  # torch.Size([16, {feature_dim}])
```

## Import it back as a run

```bash
python -m sslcore import this-file.zip --runs-dir runs
```

An imported run has its final weights but not the training state, so it can be inspected and evaluated,
or trained again from its config, but not resumed.
'''


def _input_words(shape: tuple[int, ...]) -> dict[str, str]:
    """How the README describes the encoder's input, for images (C, H, W) or table rows (F,)."""
    dims = ", ".join(str(int(v)) for v in shape)
    if len(shape) == 1:
        return {"input_text": f"float32 table rows of shape (B, {dims}), the columns as the dataset holds them "
                              "(missing cells imputed, categories one-hot, then missing-indicators)",
                "shape": f"({dims},)", "batch_shape": dims, "example": "a batch of rows (random values here)"}
    return {"input_text": f"float images of shape (B, {dims}) with values in [0, 1]", "shape": f"({dims})",
            "batch_shape": dims, "example": "a batch of images, float in [0, 1]"}


def readme_text(run_id: str, config: RunConfig, status: dict[str, Any], image_shape: tuple[int, ...],
                feature_dim: int, epochs_done: int) -> str:
    """The README of an export of run ``run_id``; ``status`` is the exported status.json; ``image_shape`` is
    the sample shape, (C, H, W) or (F,) for a table."""
    e = config.encoder
    return _TEMPLATE.format(
        name=status.get("name") or run_id, run_id=run_id, task=config.task.name, dataset=config.data.dataset,
        encoder=e.name, width=e.width, depth=e.depth, norm=e.norm, patch_size=e.patch_size,
        epochs=config.train.epochs, epochs_done=epochs_done,
        state=status.get("state", "?"), exported=time.strftime("%Y-%m-%d %H:%M"), feature_dim=feature_dim,
        **_input_words(image_shape))
