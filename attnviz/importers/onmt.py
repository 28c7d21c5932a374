"""OpenNMT-py 3.x recurrent models, read from the ``.pt`` checkpoint the toolkit saves.

The checkpoint (onmt/models/model_saver.py) holds ``model`` (the state dict without the
generator), ``generator`` (the output layer), ``vocab`` (token lists), ``opt`` (the training
options, an ``argparse.Namespace``) and ``optim``. Missing options take OpenNMT-py 3.5's
defaults (onmt/opts.py), as the toolkit does when it loads a checkpoint.

The model (onmt/encoders/rnn_encoder.py, onmt/decoders/decoder.py,
onmt/modules/global_attention.py): an RNN or bidirectional RNN encoder (``-encoder_type
rnn|brnn``), whose final states per layer, directions concatenated, start the decoder
(``-bridge``'s ReLU layers are not supported); a decoder that first updates its stacked cell (input
``[e(y_{t-1}); a_{t-1}]`` with ``-input_feed 1``), then attends with the top layer's h_t over
the raw encoder states and computes ``a_t = linear_out([c_t; h_t])`` (with tanh for ``general``
and ``dot``, with a bias and no tanh for ``mlp``); the generator gives ``logits = W a_t + b``.
In attnviz's terms: the ``luong`` decoder order, ``memory_proj`` off, no </s> on the source.

OpenNMT-py records only the paths of its tokenizer files, so the SentencePiece model or BPE
codes are given by the user.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..checkpoint.config import MAX_TOKENIZER_BYTES
from ..checkpoint.files import read_capped
from ..errors import CheckpointError
from .imported import (
    MAX_SOURCE_PIECES,
    ImportedModel,
    TensorRule,
    map_tensors,
    rnn_layer_rules,
    shared_file_names,
    vocab_file_bytes,
)
from .provenance import imported_from, sha256_hex
from .safe_load import load_toolkit_checkpoint

__all__ = [
    "ONMT_ALLOWED_CLASSES",
    "ONMT_MODEL_DEFAULTS",
    "OnmtArchitecture",
    "onmt_tensor_table",
    "read_onmt_checkpoint",
]

# The one class an OpenNMT-py checkpoint holds beyond tensors and plain values: its options.
ONMT_ALLOWED_CLASSES: tuple[type, ...] = (argparse.Namespace,)

# onmt/opts.py (3.5.1) model_opts defaults of every option read here.
ONMT_MODEL_DEFAULTS: dict[str, Any] = {
    "model_task": "seq2seq",
    "model_type": "text",
    "encoder_type": "rnn",
    "decoder_type": "rnn",
    "rnn_type": "LSTM",
    "layers": -1,
    "enc_layers": 2,
    "dec_layers": 2,
    "hidden_size": -1,
    "enc_hid_size": 500,
    "dec_hid_size": 500,
    "word_vec_size": -1,
    "src_word_vec_size": 500,
    "tgt_word_vec_size": 500,
    "share_embeddings": False,
    "share_decoder_embeddings": False,
    "global_attention": "general",
    "global_attention_function": "softmax",
    "generator_function": "softmax",
    "input_feed": 1,
    "bridge": False,
    "context_gate": None,
    "copy_attn": False,
    "reuse_copy_attn": False,
    "coverage_attn": False,
    "position_encoding": False,
    "n_src_feats": 0,
    "lora_layers": [],
    "lora_embedding": False,
    "quant_layers": [],
}
# onmt/opts.py (3.5.1) translate defaults: what `onmt_translate` does unless told otherwise
# (the checkpoint does not record them).
ONMT_TRANSLATE_DEFAULTS = {
    "beam_size": 5,
    "length_penalty": "avg",  # score / len ** alpha
    "alpha": 1.0,
    "max_length": 250,
    "max_length_ratio": 1.25,  # translator.py: int(min(max_length, src_len * ratio + 5))
}
# onmt/constants.py DefaultTokens
UNK, PAD, BOS, EOS = "<unk>", "<blank>", "<s>", "</s>"
# Transforms that act only on training data; the others change the text the model sees.
TRAINING_ONLY_TRANSFORMS = {"filtertoolong", "tokendrop", "tokenmask", "switchout", "clean"}
# The tokenizer transforms; each is also the name of attnviz's tokenizer kind.
TOKENIZER_TRANSFORMS = {"sentencepiece", "bpe"}

SUPPORTED = (
    "attnviz imports OpenNMT-py RNN models: encoder_type rnn or brnn, decoder_type rnn, "
    "rnn_type LSTM or GRU, global_attention general, dot or mlp with softmax, input_feed 0 or "
    "1, shared or separate embeddings and generator, the sentencepiece or bpe "
    "transform or none"
)


@dataclass(frozen=True)
class OnmtArchitecture:
    """The sizes and options of an OpenNMT-py RNN model (from its options and vocabularies)."""

    cell: str  # "gru" | "lstm"
    bidirectional: bool
    emb_dim: int
    enc_hidden: int  # per direction
    layers: int  # encoder and decoder alike
    dec_hidden: int
    attention: str  # "general" | "dot" | "mlp"
    input_feed: bool
    share_embeddings: bool
    share_decoder_embeddings: bool
    src_vocab: int
    tgt_vocab: int

    @property
    def gates(self) -> int:
        return 3 if self.cell == "gru" else 4

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


ENC_EMB = "encoder.embeddings.make_embedding.emb_luts.0.weight"
DEC_EMB = "decoder.embeddings.make_embedding.emb_luts.0.weight"


def _swap_halves(weight: Tensor) -> Tensor:
    """(H, 2H) columns [c; h] -> [h; c]."""
    half = weight.shape[1] // 2
    return torch.cat([weight[:, half:], weight[:, :half]], dim=1)


def _transpose(weight: Tensor) -> Tensor:
    return weight.t()


def onmt_tensor_table(a: OnmtArchitecture) -> list[TensorRule]:
    """Every tensor of an OpenNMT-py RNN model (``model`` plus ``generator.*``) and the engine
    parameter it becomes. THE place to edit when the engine's parameter names change."""
    E, H, h = a.emb_dim, a.dec_hidden, a.enc_hidden  # noqa: N806 (sizes read like the maths)
    rules = [TensorRule("embed.weight", DEC_EMB, (a.tgt_vocab, E), "target embedding e(y)")]
    if not a.share_embeddings:
        rules.append(TensorRule("src_embed.weight", ENC_EMB, (a.src_vocab, E), "e(x)"))
    suffixes = ("", "_reverse") if a.bidirectional else ("",)
    for layer in range(a.layers):
        for suffix in suffixes:
            rules += rnn_layer_rules(
                f"encoder.{{}}_l{layer}{suffix}",
                f"encoder.rnn.{{}}_l{layer}{suffix}",
                a.gates,
                E if layer == 0 else h * a.directions,
                h,
                f"encoder layer {layer} {'backward' if suffix else 'forward'} {a.cell}",
            )
    for layer in range(a.layers):
        # -input_feed 1: StackedLSTM/StackedGRU of cells; 0: one nn.LSTM/nn.GRU.
        toolkit = (
            f"decoder.rnn.layers.{layer}.{{}}" if a.input_feed else f"decoder.rnn.{{}}_l{layer}"
        )
        rules += rnn_layer_rules(
            f"decoder_cells.{layer}.{{}}",
            toolkit,
            a.gates,
            (E + H if a.input_feed else E) if layer == 0 else H,
            H,
            f"decoder layer {layer} {a.cell}; layer 0 reads [e(y_t-1); a_t-1] with input_feed",
        )
    if a.attention == "general":
        rules.append(
            TensorRule(
                "scorer.key_proj.weight",
                "decoder.attn.linear_in.weight",
                (H, H),
                "general: OpenNMT scores (W_in h_t) . m_j = h_t . (W_in^T m_j); the engine "
                "projects the keys, so its W is W_in transposed",
                _transpose,
            )
        )
    elif a.attention == "mlp":
        rules += [
            TensorRule(
                "scorer.key_proj.weight",
                "decoder.attn.linear_context.weight",
                (H, H),
                "mlp: score_j = v . tanh(W_q h_t + b_q + U m_j); U is the engine's W_k",
            ),
            TensorRule(
                "scorer.key_proj.bias",
                "decoder.attn.linear_query.bias",
                (H,),
                "b_q: a bias added to the query inside the tanh equals one added to every key",
            ),
            TensorRule(
                "scorer.query_proj.weight", "decoder.attn.linear_query.weight", (H, H), "W_q"
            ),
            TensorRule("scorer.energy.weight", "decoder.attn.v.weight", (1, H), "v"),
        ]
    rules.append(
        TensorRule(
            "attn_out.weight",
            "decoder.attn.linear_out.weight",
            (H, 2 * H),
            "a_t = act(W [c_t; h_t] (+ b)): OpenNMT's columns are context first; swapped to "
            "the canonical [h_t; c_t]",
            _swap_halves,
        )
    )
    if a.attention == "mlp":
        rules.append(TensorRule("attn_out.bias", "decoder.attn.linear_out.bias", (H,), "b"))
    if not a.share_decoder_embeddings:
        rules.append(
            TensorRule("output_weight", "generator.weight", (a.tgt_vocab, H), "logits = W a_t + b")
        )
    rules.append(TensorRule("output_bias", "generator.bias", (a.tgt_vocab,), "b of the logits"))
    return rules


def _tied_tensors(a: OnmtArchitecture) -> dict[str, str]:
    tied = {}
    if a.share_embeddings:
        tied[ENC_EMB] = DEC_EMB
    if a.share_decoder_embeddings:
        tied["generator.weight"] = DEC_EMB
    return tied


def read_onmt_checkpoint(
    path: str | Path,
    src_tokenizer: str | Path | None = None,
    tgt_tokenizer: str | Path | None = None,
) -> ImportedModel:
    """Read an OpenNMT-py 3.x RNN checkpoint (``.pt``) into attnviz's terms.

    ``src_tokenizer`` / ``tgt_tokenizer``: the SentencePiece model or BPE codes the model was
    trained with (the checkpoint records only their paths); the target's defaults to the
    source's when the checkpoint names the same file for both. Raises
    :class:`CheckpointError` for an unsafe or damaged file, an architecture attnviz does not
    support (the message names the feature) and a missing or misshapen tensor.
    """
    path = Path(path)
    loaded = load_toolkit_checkpoint(path, ONMT_ALLOWED_CLASSES, "OpenNMT-py")
    content = loaded.content
    opt = _options(content, path)
    src_tokens, tgt_tokens, specials = _vocabularies(content, path)
    arch = _architecture(opt, len(src_tokens), len(tgt_tokens))
    if arch.share_embeddings and src_tokens != tgt_tokens:
        raise CheckpointError(f"{path}: share_embeddings with different vocabularies")
    state = _state(content, path)
    tensors = map_tensors(state, onmt_tensor_table(arch), str(path), _tied_tensors(arch))
    hashes: dict[str, str] = {}
    tokenizer, files = _tokenizer(opt, src_tokens, tgt_tokens, src_tokenizer, tgt_tokenizer, hashes)
    return ImportedModel(
        model=_model_section(arch, specials),
        tokenizer=tokenizer,
        decoding=_decoding(),
        tensors=tensors,
        files=files,
        provenance=imported_from("opennmt-py", None, loaded.name, loaded.sha256, opt, hashes),
    )


# ---------------------------------------------------------------------------------------------
# The checkpoint's parts


def _options(content: Any, path: Path) -> dict[str, Any]:
    if not isinstance(content, dict) or not isinstance(content.get("opt"), argparse.Namespace):
        raise CheckpointError(
            f"{path}: not an OpenNMT-py checkpoint (expected a dict with 'opt', 'model', "
            "'generator' and 'vocab')"
        )
    return {**ONMT_MODEL_DEFAULTS, **vars(content["opt"])}


def _state(content: dict[str, Any], path: Path) -> dict[str, Any]:
    model, generator = content.get("model"), content.get("generator")
    if model is None:
        raise CheckpointError(
            f"{path}: the weights are not in the .pt file (saved with -save_format "
            "safetensors); attnviz reads checkpoints saved with the default -save_format pytorch"
        )
    if not isinstance(model, dict) or not isinstance(generator, dict):
        raise CheckpointError(
            f"{path}: 'model' and 'generator' must be state dicts (LoRA checkpoints, which "
            "hold only the adapters, are not supported)"
        )
    return {**model, **{f"generator.{k}": v for k, v in generator.items()}}


@dataclass(frozen=True)
class _Specials:
    unk_id: int
    pad_id: int
    bos_id: int
    eos_id: int


def _vocabularies(content: dict[str, Any], path: Path) -> tuple[list[str], list[str], _Specials]:
    vocab = content.get("vocab")
    if not isinstance(vocab, dict) or not all(
        isinstance(vocab.get(side), list) and all(isinstance(t, str) for t in vocab[side])
        for side in ("src", "tgt")
    ):
        raise CheckpointError(
            f"{path}: 'vocab' must hold the token lists 'src' and 'tgt' (OpenNMT-py 3.x); "
            "checkpoints of OpenNMT-py 2.x and older are not supported"
        )
    if vocab.get("data_task", "seq2seq") != "seq2seq":
        raise _refuse(f"data_task {vocab.get('data_task')!r} (a language model)")
    start = vocab.get("decoder_start_token", BOS)
    ids = {}
    for side in ("src", "tgt"):
        tokens = vocab[side]
        if len(set(tokens)) != len(tokens):
            raise CheckpointError(f"{path}: the {side} vocabulary repeats tokens")
        wanted = (UNK, PAD) if side == "src" else (UNK, PAD, start, EOS)
        missing = [t for t in wanted if t not in tokens]
        if missing:
            raise CheckpointError(f"{path}: the {side} vocabulary lacks {', '.join(missing)}")
        ids[side] = {t: tokens.index(t) for t in wanted}
    tgt = ids["tgt"]
    if ids["src"][UNK] != tgt[UNK] or ids["src"][PAD] != tgt[PAD]:
        raise _refuse(f"source and target special ids that differ ({ids})")
    specials = _Specials(tgt[UNK], tgt[PAD], tgt[start], tgt[EOS])
    return list(vocab["src"]), list(vocab["tgt"]), specials


def _refuse(feature: str) -> CheckpointError:
    return CheckpointError(f"OpenNMT-py checkpoint: {feature} is not supported. {SUPPORTED}")


def _int(opt: dict[str, Any], key: str) -> int:
    value = opt[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise CheckpointError(
            f"OpenNMT-py checkpoint: option {key} must be an integer, got {value!r}"
        )
    return value


def _architecture(opt: dict[str, Any], src_vocab: int, tgt_vocab: int) -> OnmtArchitecture:
    # ArgumentParser.update_model_opts: the shared sizes override the per-side ones.
    layers = {k: _int(opt, k) for k in ("layers", "enc_layers", "dec_layers")}
    if layers["layers"] > 0:
        layers["enc_layers"] = layers["dec_layers"] = layers["layers"]
    hidden = {k: _int(opt, k) for k in ("hidden_size", "enc_hid_size", "dec_hid_size")}
    if hidden["hidden_size"] > 0:
        hidden["enc_hid_size"] = hidden["dec_hid_size"] = hidden["hidden_size"]
    emb = {k: _int(opt, k) for k in ("word_vec_size", "src_word_vec_size", "tgt_word_vec_size")}
    if emb["word_vec_size"] > 0:
        emb["src_word_vec_size"] = emb["tgt_word_vec_size"] = emb["word_vec_size"]
    _refuse_features(opt)
    bidirectional = opt["encoder_type"] == "brnn"
    sizes = (layers["enc_layers"], hidden["enc_hid_size"], emb["src_word_vec_size"])
    if min(sizes) < 1:
        raise CheckpointError(f"OpenNMT-py checkpoint: impossible sizes {layers} {hidden} {emb}")
    if layers["enc_layers"] != layers["dec_layers"]:
        raise _refuse(f"different encoder and decoder depths ({layers})")
    if hidden["enc_hid_size"] != hidden["dec_hid_size"]:
        raise _refuse(f"different encoder and decoder sizes ({hidden})")
    if emb["src_word_vec_size"] != emb["tgt_word_vec_size"]:
        raise _refuse(f"different source and target embedding sizes ({emb})")
    if bidirectional and hidden["enc_hid_size"] % 2:
        raise CheckpointError("OpenNMT-py checkpoint: brnn needs an even enc_hid_size")
    return OnmtArchitecture(
        cell=opt["rnn_type"].lower(),
        bidirectional=bidirectional,
        emb_dim=emb["src_word_vec_size"],
        enc_hidden=hidden["enc_hid_size"] // (2 if bidirectional else 1),
        layers=layers["enc_layers"],
        dec_hidden=hidden["dec_hid_size"],
        attention=opt["global_attention"],
        input_feed=bool(opt["input_feed"]),
        share_embeddings=bool(opt["share_embeddings"]),
        share_decoder_embeddings=bool(opt["share_decoder_embeddings"]),
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
    )


def _refuse_features(opt: dict[str, Any]) -> None:
    """Every option that builds something attnviz's engine does not have."""
    if opt["model_task"] != "seq2seq" or opt["model_type"] != "text":
        raise _refuse(f"model_task {opt['model_task']!r} / model_type {opt['model_type']!r}")
    if opt["encoder_type"] not in ("rnn", "brnn"):
        raise _refuse(f"the {opt['encoder_type']!r} encoder (-encoder_type)")
    if opt["decoder_type"] != "rnn":
        raise _refuse(f"the {opt['decoder_type']!r} decoder (-decoder_type)")
    if opt["rnn_type"] not in ("LSTM", "GRU"):
        raise _refuse(f"rnn_type {opt['rnn_type']!r}")
    if opt["global_attention"] not in ("general", "dot", "mlp"):
        raise _refuse(f"global_attention {opt['global_attention']!r}")
    flags = {
        "copy_attn": "copy attention (-copy_attn)",
        "reuse_copy_attn": "copy attention (-reuse_copy_attn)",
        "coverage_attn": "coverage attention (-coverage_attn)",
        "bridge": "the ReLU bridge between encoder and decoder states (-bridge)",
        "context_gate": "the context gate (-context_gate)",
        "position_encoding": "position encoding (-position_encoding)",
        "n_src_feats": "source features (-n_src_feats)",
        "lora_layers": "LoRA adapters (-lora_layers)",
        "lora_embedding": "LoRA adapters (-lora_embedding)",
        "quant_layers": "quantized layers (-quant_layers)",
    }
    for key, feature in flags.items():
        if opt.get(key):
            raise _refuse(feature)
    for key in ("global_attention_function", "generator_function"):
        if opt[key] != "softmax":
            raise _refuse(f"{key} {opt[key]!r}")


# ---------------------------------------------------------------------------------------------
# Tokenizer and decoding


def _tokenizer(
    opt: dict[str, Any],
    src_tokens: list[str],
    tgt_tokens: list[str],
    src_file: str | Path | None,
    tgt_file: str | Path | None,
    hashes: dict[str, str],
) -> tuple[dict[str, Any], dict[str, bytes]]:
    transforms = opt.get("_all_transform") or opt.get("transforms") or []
    if isinstance(transforms, str):
        transforms = [transforms]
    transforms = {str(t) for t in transforms}
    others = sorted(transforms - TRAINING_ONLY_TRANSFORMS - TOKENIZER_TRANSFORMS)
    if others:
        raise _refuse(f"the transforms {', '.join(others)}")
    kinds = sorted(transforms & TOKENIZER_TRANSFORMS)
    if len(kinds) > 1:
        raise _refuse(f"two tokenizer transforms ({', '.join(kinds)})")
    kind = kinds[0] if kinds else "word"
    files: dict[str, bytes] = {}
    section: dict[str, Any] = {"kind": kind, "toolkit": "opennmt-py"}
    if kind == "word":
        if src_file or tgt_file:
            raise CheckpointError(
                "the OpenNMT-py model was trained on text split at spaces (no sentencepiece "
                "or bpe transform): it has no tokenizer file to give"
            )
    else:
        for key in ("src_subword_vocab", "tgt_subword_vocab"):
            if opt.get(key):
                raise _refuse(f"a subword vocabulary restriction (-{key})")
        blobs = _tokenizer_files(opt, kind, src_file, tgt_file, hashes)
        suffix = ".model" if kind == "sentencepiece" else ".codes"
        names = shared_file_names(
            blobs[0] == blobs[1], "spm" if kind == "sentencepiece" else "bpe", suffix
        )
        files.update({names[0]: blobs[0], names[1]: blobs[1]})
        section.update(source=names[0], target=names[1])
        if kind == "bpe":
            section["bpe_separator"] = "@@"  # transforms/tokenize.py BPETransform
    vocab_names = shared_file_names(src_tokens == tgt_tokens, "vocab", ".txt")
    files[vocab_names[0]] = vocab_file_bytes(src_tokens, "source vocabulary")
    files[vocab_names[1]] = vocab_file_bytes(tgt_tokens, "target vocabulary")
    section.update(
        source_vocab=vocab_names[0],
        target_vocab=vocab_names[1],
        lowercase=False,
        pretokenizer="none",
    )
    return section, files


def _tokenizer_files(
    opt: dict[str, Any],
    kind: str,
    src_file: str | Path | None,
    tgt_file: str | Path | None,
    hashes: dict[str, str],
) -> tuple[bytes, bytes]:
    recorded = (opt.get("src_subword_model"), opt.get("tgt_subword_model"))
    what = "SentencePiece model" if kind == "sentencepiece" else "BPE codes file"
    if src_file is None:
        raise CheckpointError(
            f"the OpenNMT-py model was trained with the {kind} transform and the {what} "
            f"{recorded[0]!r}; give that file (attnviz import: --src-tokenizer, and "
            f"--tgt-tokenizer for {recorded[1]!r}; the app: the tokenizer uploads)"
        )
    if tgt_file is None:
        if recorded[1] not in (None, recorded[0]):
            raise CheckpointError(
                f"the OpenNMT-py model names a different target {what} {recorded[1]!r}; give "
                "it with --tgt-tokenizer"
            )
        tgt_file = src_file
    blobs = []
    for side, file in (("source", src_file), ("target", tgt_file)):
        data = read_capped(Path(file), f"{side} {what}", MAX_TOKENIZER_BYTES)
        hashes[Path(file).name] = sha256_hex(data)
        blobs.append(data)
    return blobs[0], blobs[1]


def _decoding() -> dict[str, Any]:
    """onmt_translate's defaults: beam 5, score / len ** 1.0, at most
    int(min(250, 1.25 * source length + 5)) tokens, the source without </s>."""
    d = ONMT_TRANSLATE_DEFAULTS
    return {
        "length_penalty": "length_norm",
        "alpha": d["alpha"],
        "max_len_a": d["max_length_ratio"],
        "max_len_b": 5,
        "beam_stop": "onmt",
        "beam_size": d["beam_size"],
    }


def _model_section(a: OnmtArchitecture, specials: _Specials) -> dict[str, Any]:
    """config.json "model": the ModelConfig fields (the shared design's names)."""
    mlp = a.attention == "mlp"
    return {
        "vocab_size": a.tgt_vocab,
        "src_vocab_size": None if a.share_embeddings else a.src_vocab,
        "emb_dim": a.emb_dim,
        "cell": a.cell,
        "bidirectional": a.bidirectional,
        "enc_hidden": a.enc_hidden,
        "enc_layers": a.layers,
        "dec_hidden": a.dec_hidden,
        "dec_layers": a.layers,
        "decoder_order": "luong",
        "input_feeding": a.input_feed,
        "attn_out_bias": mlp,
        "attn_out_activation": "none" if mlp else "tanh",
        "memory_proj": False,
        "init_state": "encoder_final",
        "scorer": {"general": "general", "dot": "dot", "mlp": "additive"}[a.attention],
        "attn_dim": a.dec_hidden,
        "heads": 1,
        "dropout": 0.0,
        "tie_output": a.share_decoder_embeddings,
        "output_bias": True,
        "source_eos": False,
        "pad_id": specials.pad_id,
        "unk_id": specials.unk_id,
        "bos_id": specials.bos_id,
        "eos_id": specials.eos_id,
        "max_src_len": MAX_SOURCE_PIECES,
        "max_tgt_len": ONMT_TRANSLATE_DEFAULTS["max_length"],
    }
