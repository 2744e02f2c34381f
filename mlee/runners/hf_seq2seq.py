"""Sequence-to-sequence speech recognition (Whisper) under ``--backend transformers``.

The audio goes through the model's feature extractor (log-mel ``input_features``); the prefill window runs the
encoder and the decoder's first step from the decoder start token, the decode window the other greedy steps from
the KV cache, so a speech model's two phases have their own energy, time and tokens as text generation's do.
EOS does not stop a query: every query makes ``max_new_tokens`` tokens. torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any


def is_seq2seq(config: Any) -> bool:
    """Whether a model config is an encoder-decoder (Whisper): decoded token by token, not one forward pass."""
    return bool(getattr(config, "is_encoder_decoder", False))


def features(extractor: Any, items: list[Any]) -> Any:
    """Log-mel ``input_features`` of the waveforms ``items`` (float32, at the extractor's rate), one row each.

    Raises:
        MleeError: the model folder has no feature extractor to compute them.
    """
    from mlee.errors import MleeError

    if extractor is None:
        raise MleeError("the speech model's folder has no feature extractor (preprocessor_config.json)",
                        fix="save the model's processor beside it (processor.save_pretrained(folder))")
    rate = int(getattr(extractor, "sampling_rate", 16000))
    return extractor(items, sampling_rate=rate, return_tensors="np")["input_features"]


def _start(model: Any, rows: int) -> Any:
    import torch

    config = model.generation_config if getattr(model, "generation_config", None) is not None else model.config
    start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        start = model.config.decoder_start_token_id
    return torch.full((rows, 1), int(start), dtype=torch.long, device=model.device)


def prefill(model: Any, input_features: Any) -> tuple[Any, Any, Any]:
    """The encoder over the audio and the decoder's first step: (first new tokens, cache, encoder outputs)."""
    import torch

    with torch.inference_mode():
        encoded = model.get_encoder()(input_features)
        out = model(encoder_outputs=encoded, decoder_input_ids=_start(model, input_features.shape[0]),
                    use_cache=True)
        token = out.logits[:, -1, :].argmax(-1, keepdim=True)
    return token, _cache_of(out), encoded


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def decode(model: Any, state: tuple[Any, Any, Any], steps: int, cache_arg: str) -> Any:
    """``steps`` greedy decoder steps from the KV cache; the tokens made, the prefill's first one included."""
    import torch

    token, cache, encoded = state
    tokens = [token]
    with torch.inference_mode():
        for _ in range(steps):
            out = model(encoder_outputs=encoded, decoder_input_ids=token, use_cache=True, **{cache_arg: cache})
            cache = _cache_of(out)
            token = out.logits[:, -1, :].argmax(-1, keepdim=True)
            tokens.append(token)
    return torch.cat(tokens, dim=-1)
