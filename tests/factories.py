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

# The devices a device-parametrised test runs on: the CPU everywhere, and a GPU where there is one (the
# lent GPU machine runs those tests; CI has none).
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = (
    "he she his her him hers mr ms dr the a an and of in at with is was has works as surgeon nurse "
    "hospital clinic patients care surgery operating room trauma heart brain team years experience "
    "residency medical school ward nursing emergency pediatric plastic orthopedic licensed registered "
    "degree university board certified specializes practice new york city"
).split()

_SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}

_IDS = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}
_DECODER = {"max_position_embeddings": 64, "num_key_value_heads": 2, "head_dim": 16, **_IDS, **_SMALL}
# Encoder-decoders get one encoder and one decoder block: two layers, like every other tiny model.
_SEQ2SEQ = {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2,
            "pad_token_id": 0, "eos_token_id": 3, "decoder_start_token_id": 0}

ARCHITECTURES: dict[str, Callable[[int], transformers.PretrainedConfig]] = {
    "bert": lambda v: transformers.BertConfig(vocab_size=v, max_position_embeddings=64, **_SMALL),
    "roberta": lambda v: transformers.RobertaConfig(
        vocab_size=v, max_position_embeddings=70, pad_token_id=0, bos_token_id=2, eos_token_id=3, **_SMALL
    ),
    "distilbert": lambda v: transformers.DistilBertConfig(
        vocab_size=v, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64
    ),
    "deberta-v2": lambda v: transformers.DebertaV2Config(vocab_size=v, max_position_embeddings=64, **_SMALL),
    "albert": lambda v: transformers.AlbertConfig(
        vocab_size=v, embedding_size=16, max_position_embeddings=64, num_hidden_groups=1, **_IDS, **_SMALL
    ),
    "gpt2": lambda v: transformers.GPT2Config(
        vocab_size=v, n_embd=32, n_layer=2, n_head=2, n_positions=64, **_IDS,
    ),
    "gpt-neox": lambda v: transformers.GPTNeoXConfig(vocab_size=v, max_position_embeddings=64, **_IDS, **_SMALL),
    "llama": lambda v: transformers.LlamaConfig(vocab_size=v, **_DECODER),
    "qwen2": lambda v: transformers.Qwen2Config(vocab_size=v, **_DECODER),
    "qwen3": lambda v: transformers.Qwen3Config(vocab_size=v, **_DECODER),
    "mistral": lambda v: transformers.MistralConfig(vocab_size=v, **_DECODER),
    "phi": lambda v: transformers.PhiConfig(vocab_size=v, max_position_embeddings=64, **_IDS, **_SMALL),
    "opt": lambda v: transformers.OPTConfig(
        vocab_size=v, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64,
        word_embed_proj_dim=32, max_position_embeddings=64, **_IDS,
    ),
    "bart": lambda v: transformers.BartConfig(
        vocab_size=v, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        decoder_start_token_id=2, **_IDS,
    ),
    "t5": lambda v: transformers.T5Config(vocab_size=v, **_SEQ2SEQ),
    "mt5": lambda v: transformers.MT5Config(vocab_size=v, **_SEQ2SEQ),
}
DECODERS = ("gpt2", "gpt-neox", "llama", "qwen2", "qwen3", "mistral", "phi", "opt")
ENCODER_DECODERS = ("bart", "t5", "mt5")


def make_tokenizer(words: list[str] = WORDS, *, append_eos: bool = True, pad_is_eos: bool = False,
                   split_punctuation: bool = True) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: [CLS] text [SEP], [SEP] being the EOS token (not appended with
    `append_eos=False`), [PAD] the pad token unless `pad_is_eos` (the GPT-style pad = EOS); with
    `split_punctuation=False` a token is anything between spaces."""
    vocab = {token: i for i, token in enumerate(SPECIALS + sorted(set(words)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if split_punctuation else pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]" if append_eos else "[CLS] $A",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[SEP]" if pad_is_eos else "[PAD]", unk_token="[UNK]",
        cls_token="[CLS]", sep_token="[SEP]", eos_token="[SEP]", model_max_length=64,
    )


def make_model_folder(
    root: Path, arch: str = "bert", *, sequence_classification: bool = False,
    labels: list[str] | None = None, seed: int = 0, append_eos: bool = True, pad_is_eos: bool = False,
    name: str | None = None, tokenizer: PreTrainedTokenizerFast | None = None,
) -> Path:
    """Save a tiny random model of `arch` with a word-level tokenizer into `root/name` and return it
    (`name` defaults to arch, with "-seqcls" for a sequence classifier)."""
    torch.manual_seed(seed)
    tokenizer = tokenizer or make_tokenizer(append_eos=append_eos, pad_is_eos=pad_is_eos)
    config = ARCHITECTURES[arch](len(tokenizer))
    if pad_is_eos:
        config.pad_token_id = tokenizer.eos_token_id
    if sequence_classification:
        labels = labels or ["nurse", "surgeon"]
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModel.from_config(config)
    folder = root / (name or arch + ("-seqcls" if sequence_classification else ""))
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


# A dataset spec over make_bios_frame's table written as bios.csv: biased training cells, and a balanced
# oracle subset (the second form leaves the oracle out).
TINY_SPEC_WITHOUT_ORACLE = """
name: tiny_bios
source: {kind: file, path: bios.csv}
splits: {kind: column, column: split, names: [train, validate, test]}
text_column: text
label_column: occupation
labels: [nurse, surgeon]
protected:
  - {name: gender, column: gender, groups: [F, M], stereotype: {F: nurse, M: surgeon}}
subsets:
  train_biased: {split: train, cells: [[surgeon, M], [nurse, F]]}
  validate: {split: validate}
  test: {split: test}
roles: {train: train_biased, validate: validate, evaluate: test}
"""
TINY_SPEC = TINY_SPEC_WITHOUT_ORACLE.replace(
    "roles: {train: train_biased, validate: validate, evaluate: test}",
    "  train_oracle: {split: train, per_cell: 6}\n"
    "roles: {train: train_biased, validate: validate, evaluate: test, oracle: train_oracle}",
)
