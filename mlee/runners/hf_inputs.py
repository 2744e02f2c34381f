"""Queries for the transformers backend: local text/JSONL/image/audio inputs, or seeded synthetic ones.

A query is one prompt, one image or one audio clip. Synthetic queries have stated sizes (tokens per prompt,
pixels, seconds) and are recorded as synthetic. Pure numpy and the standard library here; the tokenizer and
processors are handed in by :mod:`mlee.runners.transformers_backend`.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlee.errors import UsageError

#: Tasks of ``--backend transformers`` and the kind of query each takes.
TASK_INPUTS = {
    "text-classification": "text",
    "text-generation": "text",
    "image-classification": "image",
    "automatic-speech-recognition": "audio",
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Length of one synthetic audio clip. Units: seconds.
SYNTHETIC_AUDIO_S = 1.0
#: Sampling rate used when the model folder has no feature extractor. Units: Hz.
DEFAULT_SAMPLING_RATE_HZ = 16000


@dataclass
class Queries:
    """The queries of one run, before batching.

    ``items`` holds token-id lists (text), float32 CHW arrays (image) or float32 waveforms (audio).
    """

    kind: str
    items: list[Any]
    synthetic: bool
    source: str
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of queries."""
        return len(self.items)


def jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` of every non-blank line of a JSONL file.

    Raises:
        UsageError: a line that is not JSON.
    """
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number} is not JSON ({exc.msg})", fix="write one JSON object a line") from exc
        yield number, row


def read_texts(path: Path) -> list[str]:
    """Prompts from a ``.jsonl`` file (field ``text``, else ``prompt``), a ``.txt`` file (one a line) or a folder
    of ``.txt`` files (one prompt each).

    Raises:
        UsageError: no prompt found, or a JSONL line without a text field.
    """
    texts: list[str] = []
    if path.is_dir():
        texts = [p.read_text(encoding="utf-8").strip() for p in sorted(path.glob("*.txt"))]
    elif path.suffix == ".jsonl":
        for number, row in jsonl_rows(path):
            text = row.get("text", row.get("prompt")) if isinstance(row, dict) else None
            if not isinstance(text, str):
                raise UsageError(f"{path}:{number} has no text field", fix='give each line a "text" string')
            texts.append(text)
    else:
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [t for t in texts if t]
    if not texts:
        raise UsageError(f"no prompt found in {path}", fix="give a .jsonl (text field), a .txt or a folder of .txt")
    return texts


def read_wav(path: Path) -> tuple[Any, int]:
    """A mono float32 waveform in [-1, 1] and its rate (Hz) from a 16-bit PCM WAV file."""
    import numpy as np

    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2:
            raise UsageError(f"{path} is not 16-bit PCM", fix="convert it, e.g. ffmpeg -i IN -c:a pcm_s16le OUT.wav")
        frames = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        channels, rate = f.getnchannels(), f.getframerate()
    if channels > 1:
        frames = frames.reshape(-1, channels).mean(axis=1)
    return frames, rate


def synthetic_text(n: int, input_tokens: int, vocab_size: int, seed: int) -> Queries:
    """``n`` prompts of ``input_tokens`` random token ids each (ids 1 .. vocab_size - 1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    items = [rng.integers(1, max(2, vocab_size), size=input_tokens).tolist() for _ in range(n)]
    return Queries("text", items, True, "synthetic", {"input_tokens_per_query": input_tokens})


def local_text(path: Path, tokenizer: Any, n: int | None, input_tokens: int) -> Queries:
    """Prompts read from ``path``, tokenised and cut to ``input_tokens`` tokens; the first ``n`` (all if None)."""
    if tokenizer is None:
        raise UsageError("the model folder has no tokenizer, so text inputs cannot be tokenised",
                         fix="save the tokenizer beside the model (tokenizer.save_pretrained) or drop --data-path")
    texts = read_texts(path)[:n] if n else read_texts(path)
    items = [tokenizer(t, add_special_tokens=True)["input_ids"][:input_tokens] for t in texts]
    items = [ids if ids else [tokenizer.eos_token_id or 0] for ids in items]
    return Queries("text", items, False, str(path), {"max_input_tokens": input_tokens})


def synthetic_images(n: int, channels: int, size_px: int, seed: int) -> Queries:
    """``n`` standard-normal pixel arrays (already normalised, CHW)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    items = [rng.standard_normal((channels, size_px, size_px), dtype=np.float32) for _ in range(n)]
    return Queries("image", items, True, "synthetic", {"image_size_px": size_px, "channels": channels})


def local_images(path: Path, processor: Any, n: int | None) -> Queries:
    """Images of the folder ``path`` (sorted by name), preprocessed by the model's image processor."""
    from PIL import Image

    if processor is None:
        raise UsageError("the model folder has no image processor for real images",
                         fix="save one beside the model (AutoImageProcessor.save_pretrained) or drop --data-path")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:n or None]
    if not files:
        raise UsageError(f"no image found under {path}", fix=f"give a folder of {', '.join(IMAGE_SUFFIXES)} files")
    items = []
    for f in files:
        with Image.open(f) as img:
            items.append(processor(images=img.convert("RGB"), return_tensors="np")["pixel_values"][0])
    return Queries("image", items, False, str(path), {"files": len(files)})


def synthetic_audio(n: int, rate_hz: int, seed: int) -> Queries:
    """``n`` clips of :data:`SYNTHETIC_AUDIO_S` seconds of Gaussian noise at ``rate_hz``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    length = int(SYNTHETIC_AUDIO_S * rate_hz)
    items = [0.1 * rng.standard_normal(length, dtype=np.float32) for _ in range(n)]
    return Queries("audio", items, True, "synthetic", {"audio_s": SYNTHETIC_AUDIO_S, "sampling_rate_hz": rate_hz})


def local_audio(path: Path, extractor: Any, n: int | None, rate_hz: int) -> Queries:
    """16-bit PCM ``.wav`` clips of the folder ``path``; their rate must be the model's."""
    files = sorted(path.rglob("*.wav"))[:n or None] if path.is_dir() else [path]
    if not files:
        raise UsageError(f"no .wav file found under {path}", fix="give a folder of 16-bit PCM .wav files")
    items = []
    for f in files:
        wav, rate = read_wav(f)
        if rate != rate_hz:
            raise UsageError(f"{f} is sampled at {rate} Hz, the model expects {rate_hz} Hz",
                             fix=f"resample it, e.g. ffmpeg -i IN -ar {rate_hz} OUT.wav")
        if extractor is not None and "input_values" in getattr(extractor, "model_input_names", ()):
            # CTC models take the normalised waveform; Whisper's log-mel features are made per batch.
            wav = extractor(wav, sampling_rate=rate_hz, return_tensors="np")["input_values"][0]
        items.append(wav)
    return Queries("audio", items, False, str(path), {"files": len(files), "sampling_rate_hz": rate_hz})


def pad_text(items: list[list[int]], pad_id: int, left: bool) -> tuple[Any, Any]:
    """Token-id lists as (ids, attention mask) int64 arrays, padded on the left (generation) or right."""
    import numpy as np

    width = max(len(x) for x in items)
    ids = np.full((len(items), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(items), width), dtype=np.int64)
    for row, x in enumerate(items):
        cols = slice(width - len(x), width) if left else slice(0, len(x))
        ids[row, cols] = x
        mask[row, cols] = 1
    return ids, mask


def pad_audio(items: list[Any]) -> tuple[Any, Any]:
    """Waveforms as a zero-padded float32 array and its attention mask."""
    import numpy as np

    width = max(len(x) for x in items)
    values = np.zeros((len(items), width), dtype=np.float32)
    mask = np.zeros((len(items), width), dtype=np.int64)
    for row, x in enumerate(items):
        values[row, :len(x)] = x
        mask[row, :len(x)] = 1
    return values, mask
