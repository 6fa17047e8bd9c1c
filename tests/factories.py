"""Tiny random models, tokenizers and datasets for fast tests (no hub, no downloads)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import AutoModel, AutoModelForSequenceClassification, PreTrainedTokenizerFast

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = (
    "he she his her him hers mr ms dr the a an and of in at with is was has works as surgeon nurse "
    "hospital clinic patients care surgery operating room trauma heart brain team years experience "
    "residency medical school ward nursing emergency pediatric plastic orthopedic licensed registered "
    "degree university board certified specializes practice new york city"
).split()

_SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}

ARCHITECTURES: dict[str, Callable[[int], transformers.PretrainedConfig]] = {
    "bert": lambda v: transformers.BertConfig(vocab_size=v, max_position_embeddings=64, **_SMALL),
    "roberta": lambda v: transformers.RobertaConfig(
        vocab_size=v, max_position_embeddings=70, pad_token_id=0, bos_token_id=2, eos_token_id=3, **_SMALL
    ),
    "distilbert": lambda v: transformers.DistilBertConfig(
        vocab_size=v, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64
    ),
    "deberta-v2": lambda v: transformers.DebertaV2Config(vocab_size=v, max_position_embeddings=64, **_SMALL),
    "gpt2": lambda v: transformers.GPT2Config(
        vocab_size=v, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=2, eos_token_id=3,
        pad_token_id=0,
    ),
    "gpt-neox": lambda v: transformers.GPTNeoXConfig(
        vocab_size=v, max_position_embeddings=64, bos_token_id=2, eos_token_id=3, pad_token_id=0, **_SMALL
    ),
    "llama": lambda v: transformers.LlamaConfig(
        vocab_size=v, max_position_embeddings=64, num_key_value_heads=2, bos_token_id=2, eos_token_id=3,
        pad_token_id=0, **_SMALL,
    ),
}


def make_tokenizer(words: list[str] = WORDS, *, split_punctuation: bool = True) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `words`; with `split_punctuation=False` a token is anything between spaces."""
    vocab = {token: i for i, token in enumerate(SPECIALS + sorted(set(words)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if split_punctuation else pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        eos_token="[SEP]", model_max_length=64,
    )


def make_model_folder(
    root: Path, arch: str = "bert", *, sequence_classification: bool = False,
    labels: list[str] | None = None, seed: int = 0, tokenizer: PreTrainedTokenizerFast | None = None,
) -> Path:
    """Save a tiny random model of `arch` with a word-level tokenizer into `root/arch` and return it."""
    torch.manual_seed(seed)
    tokenizer = tokenizer or make_tokenizer()
    config = ARCHITECTURES[arch](len(tokenizer))
    if sequence_classification:
        labels = labels or ["nurse", "surgeon"]
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModel.from_config(config)
    folder = root / (arch + ("-seqcls" if sequence_classification else ""))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def make_bios_frame(n_per_cell: int = 12, seed: int = 0) -> pd.DataFrame:
    """A tiny Bias-in-Bios-like table: split, text, occupation, gender, with every cell filled."""
    rng = random.Random(seed)
    job_words = {
        "surgeon": ["surgery", "operating", "room", "trauma", "orthopedic", "plastic", "surgeon"],
        "nurse": ["nursing", "ward", "care", "registered", "pediatric", "nurse", "patients"],
    }
    common = ["hospital", "clinic", "years", "experience", "university", "degree", "medical", "team"]
    pronouns = {"M": ["he", "his", "him", "mr"], "F": ["she", "her", "hers", "ms"]}
    rows = []
    for split in ("train", "validate", "test"):
        for occupation in ("nurse", "surgeon"):
            for gender in ("F", "M"):
                for _ in range(n_per_cell):
                    words = rng.sample(job_words[occupation], 2) + rng.sample(common, 3)
                    words += rng.sample(pronouns[gender], 2)
                    rng.shuffle(words)
                    rows.append({"split": split, "text": " ".join(words), "occupation": occupation,
                                 "gender": gender})
    return pd.DataFrame(rows)
