"""Tiny random Hugging Face models built offline from configs and saved with save_pretrained (no hub access)."""

from __future__ import annotations

import wave
from pathlib import Path

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "a", "cat", "dog", "sat", "on", "mat", "energy", "joule", "watt",
         "model", "token", "fast", "slow", "is", "was"]


def tiny_tokenizer():
    """A word-level tokenizer over :data:`VOCAB`, wrapped for transformers."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", eos_token="[SEP]")


def gpt2(folder: Path) -> Path:
    """A 2-layer GPT-2 with the tiny tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(VOCAB), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        pad_token_id=0, eos_token_id=3, bos_token_id=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def bert(folder: Path) -> Path:
    """A 2-layer BERT sequence classifier (3 labels) with the tiny tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=3)
    BertForSequenceClassification(config).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def vit(folder: Path) -> Path:
    """A 2-layer ViT image classifier on 32 px images with its image processor."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=5)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def wav2vec2(folder: Path) -> Path:
    """A tiny Wav2Vec2 CTC model with its feature extractor (16 kHz)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=12, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            do_stable_layer_norm=True, feat_extract_norm="layer")
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    return folder


def whisper(folder: Path) -> Path:
    """A 1+1-layer Whisper on 1-second clips (16 mel bins, 100 frames) with its feature extractor (16 kHz)."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=len(VOCAB), num_mel_bins=16, d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_source_positions=50, max_target_positions=64,
                           decoder_start_token_id=2, pad_token_id=0, eos_token_id=3, bos_token_id=2,
                           suppress_tokens=[], begin_suppress_tokens=[])
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=16, chunk_length=1, sampling_rate=16000).save_pretrained(folder)
    return folder


def write_wav(path: Path, seconds: float, rate_hz: int = 16000) -> Path:
    """A 16-bit mono WAV of a 440 Hz tone."""
    import numpy as np

    t = np.arange(int(seconds * rate_hz)) / rate_hz
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate_hz)
        f.writeframes(samples.tobytes())
    return path
