"""Joey NMT 2.x recurrent models, read from the model folder as Joey writes it.

Joey's training writes into its ``model_dir``: ``config.yaml`` (a copy of the training
config), ``src_vocab.txt`` and ``trg_vocab.txt`` (the vocabularies, line number = id), a copy
of each tokenizer file under its own name (the SentencePiece model or subword-nmt codes),
``<step>.ckpt`` checkpoints, and ``best.ckpt`` / ``latest.ckpt`` as symlinks to them. The
paths inside config.yaml point at the training machine, so files are looked up in the folder
by their names only, and nothing outside the folder is read (a symlink that leads out of it
is refused).

The model (joeynmt/model.py, encoders.py, decoders.py, attention.py): a bidirectional GRU or
LSTM encoder; a RecurrentDecoder that first updates its stacked cell, input
``[e(y_{t-1}); a_{t-1}]`` with input feeding, then attends with the top layer's new state h_t
over the raw encoder states (no projection), and computes ``a_t = tanh(W [h_t; c_t] + b)``;
the logits are ``V a_t`` (no bias). In attnviz's terms that is the ``luong`` decoder order for
both of Joey's scorers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..checkpoint.config import MAX_TOKENIZER_BYTES
from ..checkpoint.files import MB, read_capped
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
    "JOEY_CONFIG_FILE",
    "JoeyArchitecture",
    "joey_tensor_table",
    "read_joey_model",
]

JOEY_CONFIG_FILE = "config.yaml"
MAX_YAML_BYTES = 1 * MB
MAX_VOCAB_BYTES = 16 * MB
# Joey's max_output_length -1: int(1.5 * source length, </s> included) (search.py).
JOEY_LENGTH_RATIO = 1.5

SUPPORTED = (
    "attnviz imports Joey NMT recurrent models: a bidirectional GRU or LSTM encoder, a "
    "recurrent decoder (any number of layers, input feeding or not) with 'bahdanau' or "
    "'luong' attention, init_hidden 'bridge', 'last' or 'zero', tanh activation, unscaled "
    "embeddings, tied or separate embeddings and output layer"
)


@dataclass(frozen=True)
class JoeyArchitecture:
    """The sizes and options of a Joey recurrent model (from config.yaml and the vocabularies)."""

    cell: str  # "gru" | "lstm"
    emb_dim: int
    enc_hidden: int  # per direction
    enc_layers: int
    dec_hidden: int
    dec_layers: int
    attention: str  # "bahdanau" | "luong"
    init_hidden: str  # "bridge" | "last" | "zero"
    input_feeding: bool
    tied_embeddings: bool
    tied_softmax: bool
    src_vocab: int
    trg_vocab: int

    @property
    def gates(self) -> int:
        return 3 if self.cell == "gru" else 4

    @property
    def key_size(self) -> int:
        """Size of the encoder states the decoder attends over (both directions)."""
        return 2 * self.enc_hidden


def joey_tensor_table(a: JoeyArchitecture) -> list[TensorRule]:
    """Every tensor of a Joey recurrent model's ``model_state`` and the engine parameter it
    becomes. THE place to edit when the engine's parameter names change."""
    E, Hd, K = a.emb_dim, a.dec_hidden, a.key_size  # noqa: N806 (sizes read like the maths)
    rules = [
        TensorRule(
            "embed.weight",
            "trg_embed.lut.weight",
            (a.trg_vocab, E),
            "target embedding e(y); with tied_embeddings also the source's",
        ),
    ]
    if not a.tied_embeddings:
        rules.append(
            TensorRule(
                "src_embed.weight",
                "src_embed.lut.weight",
                (a.src_vocab, E),
                "source embedding e(x)",
            )
        )
    for layer in range(a.enc_layers):
        for suffix in ("", "_reverse"):
            rules += rnn_layer_rules(
                f"encoder.{{}}_l{layer}{suffix}",
                f"encoder.rnn.{{}}_l{layer}{suffix}",
                a.gates,
                E if layer == 0 else K,
                a.enc_hidden,
                f"encoder layer {layer} {'backward' if suffix else 'forward'} {a.cell}",
            )
    feed = Hd if a.input_feeding else 0
    for layer in range(a.dec_layers):
        rules += rnn_layer_rules(
            f"decoder_cells.{layer}.{{}}",
            f"decoder.rnn.{{}}_l{layer}",
            a.gates,
            E + feed if layer == 0 else Hd,
            Hd,
            f"decoder layer {layer} {a.cell}; layer 0 reads [e(y_t-1); a_t-1] with input "
            "feeding, else e(y_t-1)",
        )
    if a.attention == "bahdanau":
        rules += [
            TensorRule(
                "scorer.key_proj.weight",
                "decoder.attention.key_layer.weight",
                (Hd, K),
                "additive scorer: score_j = v . tanh(W_q h_t + W_k m_j); W_k",
            ),
            TensorRule(
                "scorer.key_proj.bias",
                None,
                (Hd,),
                "Joey's key layer has no bias: the engine's key bias is zero",
            ),
            TensorRule(
                "scorer.query_proj.weight",
                "decoder.attention.query_layer.weight",
                (Hd, Hd),
                "additive scorer: W_q (no bias in either)",
            ),
            TensorRule(
                "scorer.energy.weight",
                "decoder.attention.energy_layer.weight",
                (1, Hd),
                "additive scorer: v",
            ),
        ]
    else:
        rules.append(
            TensorRule(
                "scorer.key_proj.weight",
                "decoder.attention.key_layer.weight",
                (Hd, K),
                "general scorer: score_j = h_t . (W m_j); Joey projects the keys, as the engine",
            )
        )
    rules += [
        TensorRule(
            "attn_out.weight",
            "decoder.att_vector_layer.weight",
            (Hd, Hd + K),
            "a_t = tanh(W [h_t; c_t] + b): Joey's columns are already query, then context",
        ),
        TensorRule("attn_out.bias", "decoder.att_vector_layer.bias", (Hd,), "b of a_t"),
    ]
    if a.init_hidden == "bridge":
        rules += [
            TensorRule(
                "bridge.weight",
                "decoder.bridge_layer.weight",
                (Hd, K),
                "s_0 = tanh(W [h_fwd_last; h_bwd_first] + b) of the top encoder layer, "
                "given to every decoder layer (LSTM: as h and as c)",
            ),
            TensorRule("bridge.bias", "decoder.bridge_layer.bias", (Hd,), "b of the bridge"),
        ]
    if not a.tied_softmax:
        rules.append(
            TensorRule(
                "output_weight",
                "decoder.output_layer.weight",
                (a.trg_vocab, Hd),
                "logits = V a_t, no bias",
            )
        )
    return rules


def _tied_tensors(a: JoeyArchitecture) -> dict[str, str]:
    """Toolkit keys that hold the same parameter as another (Joey's state dict has both)."""
    tied = {}
    if a.tied_embeddings:
        tied["src_embed.lut.weight"] = "trg_embed.lut.weight"
    if a.tied_softmax:
        tied["decoder.output_layer.weight"] = "trg_embed.lut.weight"
    return tied


def read_joey_model(folder: str | Path, checkpoint: str | None = None) -> ImportedModel:
    """Read a Joey NMT 2.x model folder (``config.yaml``, vocabularies, tokenizer files and a
    checkpoint) into attnviz's terms.

    ``checkpoint``: a file in the folder (default ``best.ckpt``, as Joey picks it: else
    ``latest.ckpt``, else the highest ``<step>.ckpt``). Raises :class:`CheckpointError` for a
    missing or unsafe file, an architecture attnviz does not support (the message names the
    feature) and a missing or misshapen tensor (the message names the tensor).
    """
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a folder; expected a Joey NMT model folder")
    root = root.resolve()
    hashes: dict[str, str] = {}
    cfg = _read_config(root, hashes)
    ckpt_path = _checkpoint_path(root, checkpoint)
    loaded = load_toolkit_checkpoint(ckpt_path, (), "Joey NMT")
    state = _model_state(loaded.content, ckpt_path)
    data = _section(cfg, "data", JOEY_CONFIG_FILE)
    specials = _special_symbols(data)
    src_tokens = _vocabulary(root, data, "src", specials, hashes)
    trg_tokens = _vocabulary(root, data, "trg", specials, hashes)
    arch = _architecture(cfg, len(src_tokens), len(trg_tokens))
    if arch.tied_embeddings and src_tokens != trg_tokens:
        raise CheckpointError(
            f"{root / JOEY_CONFIG_FILE}: tied_embeddings needs one vocabulary, but "
            "src_vocab.txt and trg_vocab.txt differ"
        )
    where = f"{ckpt_path} (model_state)"
    tensors = map_tensors(state, joey_tensor_table(arch), where, _tied_tensors(arch))
    tokenizer, files = _tokenizer(root, data, src_tokens, trg_tokens, hashes)
    version = cfg.get("joeynmt_version")
    return ImportedModel(
        model=_model_section(arch, specials, _testing(cfg)),
        tokenizer=tokenizer,
        decoding=_decoding(_testing(cfg)),
        tensors=tensors,
        files=files,
        provenance=imported_from(
            "joeynmt",
            None if version is None else str(version),
            loaded.name,
            loaded.sha256,
            cfg,
            hashes,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Files of the folder


def _inside(root: Path, name: str, what: str) -> Path:
    """``root / name`` after following links; it must stay inside the model folder."""
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise CheckpointError(
            f"{root / name}: the {what} leads outside the model folder (to {path}); attnviz "
            "reads only the folder's own files: copy the file into the folder"
        )
    return path


def _read_config(root: Path, hashes: dict[str, str]) -> dict[str, Any]:
    path = _inside(root, JOEY_CONFIG_FILE, "configuration")
    raw = read_capped(path, "Joey NMT configuration", MAX_YAML_BYTES)
    hashes[JOEY_CONFIG_FILE] = sha256_hex(raw)
    try:
        cfg = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CheckpointError(f"{path}: not a readable YAML file ({exc})") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a YAML mapping (Joey's training config)")
    return cfg


def _checkpoint_path(root: Path, name: str | None) -> Path:
    if name is None:
        name = _default_checkpoint(root)
    path = _inside(root, name, f"checkpoint {name!r}")
    if not path.is_file():
        found = sorted(p.name for p in root.glob("*.ckpt"))
        raise CheckpointError(
            f"{root / name}: no such checkpoint file; the folder has "
            f"{', '.join(found) if found else 'no *.ckpt files'}"
        )
    return path


def _default_checkpoint(root: Path) -> str:
    """best.ckpt, else latest.ckpt, else the highest <step>.ckpt (joeynmt helpers.py)."""
    for name in ("best.ckpt", "latest.ckpt"):
        if (root / name).exists() or (root / name).is_symlink():
            return name
    steps = [p for p in root.glob("*.ckpt") if p.stem.isdigit()]
    if not steps:
        raise CheckpointError(f"{root}: no checkpoint (best.ckpt, latest.ckpt or <step>.ckpt)")
    return max(steps, key=lambda p: int(p.stem)).name


def _model_state(content: Any, path: Path) -> dict[str, Any]:
    if not isinstance(content, dict) or not isinstance(content.get("model_state"), dict):
        raise CheckpointError(
            f"{path}: not a Joey NMT checkpoint (expected a dict with 'model_state')"
        )
    return content["model_state"]


def _file_by_name(root: Path, recorded: Any, what: str, hashes: dict[str, str]) -> bytes:
    """The file config.yaml names by a training-machine path, found in the folder by name."""
    if not isinstance(recorded, str) or not recorded.strip():
        raise CheckpointError(f"{root / JOEY_CONFIG_FILE}: the {what} is not given")
    name = Path(recorded).name
    path = _inside(root, name, what)
    if not path.is_file():
        raise CheckpointError(
            f"{root}: the {what} {name!r} (config.yaml: {recorded!r}) is not in the model "
            "folder; Joey copies it there when training: copy it into the folder"
        )
    data = read_capped(path, what, MAX_TOKENIZER_BYTES)
    hashes[name] = sha256_hex(data)
    return data


# ---------------------------------------------------------------------------------------------
# config.yaml


def _section(cfg: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = cfg.get(key, {})
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: '{key}' must be a mapping, got {value!r}")
    return value


def _option(section: dict[str, Any], key: str, default: Any, kind: type, where: str) -> Any:
    value = section.get(key, default)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise CheckpointError(f"config.yaml: {where}.{key} must be {kind.__name__}, got {value!r}")
    return value


def _size(section: dict[str, Any], key: str, default: Any, where: str) -> int:
    value = _option(section, key, default, int, where)
    if value < 1:
        raise CheckpointError(f"config.yaml: {where}.{key} must be positive, got {value}")
    return value


def _refuse(feature: str) -> CheckpointError:
    return CheckpointError(f"config.yaml: {feature} is not supported. {SUPPORTED}")


def _architecture(cfg: dict[str, Any], src_vocab: int, trg_vocab: int) -> JoeyArchitecture:
    model = _section(cfg, "model", JOEY_CONFIG_FILE)
    enc = _section(model, "encoder", "model")
    dec = _section(model, "decoder", "model")
    # Joey's defaults: a recurrent encoder and a Transformer decoder (model.build_model).
    if enc.get("type", "recurrent") != "recurrent":
        raise _refuse(f"the {enc.get('type')!r} encoder (model.encoder.type)")
    if dec.get("type", "transformer") != "recurrent":
        raise _refuse(f"the {dec.get('type', 'transformer')!r} decoder (model.decoder.type)")
    cells = {
        _option(s, "rnn_type", "gru", str, w)
        for s, w in ((enc, "model.encoder"), (dec, "model.decoder"))
    }
    if not cells <= {"gru", "lstm"} or len(cells) != 1:
        raise _refuse(f"rnn_type {sorted(cells)} (one of 'gru' or 'lstm' for both)")
    if not _option(enc, "bidirectional", True, bool, "model.encoder"):
        raise _refuse("a unidirectional encoder (model.encoder.bidirectional: false)")
    emb = {}
    for side, section in (("encoder", enc), ("decoder", dec)):
        embeddings = _section(section, "embeddings", f"model.{side}")
        if _option(embeddings, "scale", False, bool, f"model.{side}.embeddings"):
            raise _refuse(f"embedding scaling (model.{side}.embeddings.scale)")
        emb[side] = _size(embeddings, "embedding_dim", 64, f"model.{side}.embeddings")
    if emb["encoder"] != emb["decoder"]:
        raise _refuse(f"different source and target embedding sizes ({emb})")
    attention = _option(dec, "attention", "bahdanau", str, "model.decoder")
    if attention not in ("bahdanau", "luong"):
        raise _refuse(f"attention {attention!r}")
    if _option(dec, "activation", "tanh", str, "model.decoder") != "tanh":
        raise _refuse(f"activation {dec['activation']!r} (model.decoder.activation)")
    init_hidden = _option(dec, "init_hidden", "bridge", str, "model.decoder")
    # decoders.py: "bridge" and "last" are named; every other value starts from zeros.
    init_hidden = init_hidden if init_hidden in ("bridge", "last") else "zero"
    enc_hidden = _size(enc, "hidden_size", 1, "model.encoder")
    dec_hidden = _size(dec, "hidden_size", 0, "model.decoder")
    if init_hidden == "last" and dec_hidden not in (enc_hidden, 2 * enc_hidden):
        raise _refuse(f"init_hidden 'last' with encoder {enc_hidden} x 2, decoder {dec_hidden}")
    tied_softmax = _option(model, "tied_softmax", False, bool, "model")
    if tied_softmax and emb["decoder"] != dec_hidden:
        raise _refuse("tied_softmax with embedding_dim different from the decoder hidden_size")
    return JoeyArchitecture(
        cell=cells.pop(),
        emb_dim=emb["encoder"],
        enc_hidden=enc_hidden,
        enc_layers=_size(enc, "num_layers", 1, "model.encoder"),
        dec_hidden=dec_hidden,
        dec_layers=_size(dec, "num_layers", 1, "model.decoder"),
        attention=attention,
        init_hidden=init_hidden,
        input_feeding=_option(dec, "input_feeding", True, bool, "model.decoder"),
        tied_embeddings=_option(model, "tied_embeddings", False, bool, "model"),
        tied_softmax=tied_softmax,
        src_vocab=src_vocab,
        trg_vocab=trg_vocab,
    )


@dataclass(frozen=True)
class _Specials:
    """Joey's special symbols (config.py ``_check_special_symbols`` defaults)."""

    unk_token: str = "<unk>"
    pad_token: str = "<pad>"
    bos_token: str = "<s>"
    eos_token: str = "</s>"
    unk_id: int = 0
    pad_id: int = 1
    bos_id: int = 2
    eos_id: int = 3

    @property
    def tokens(self) -> list[str]:
        """In the order Joey's Vocabulary puts them first."""
        return [self.unk_token, self.pad_token, self.bos_token, self.eos_token]


def _special_symbols(data: dict[str, Any]) -> _Specials:
    given = _section(data, "special_symbols", "data")
    if given.get("sep_token") or given.get("lang_tags"):
        raise _refuse("multilingual prompts (data.special_symbols sep_token / lang_tags)")
    defaults = _Specials()
    values = {}
    for name in ("unk", "pad", "bos", "eos"):
        values[f"{name}_token"] = _option(
            given, f"{name}_token", getattr(defaults, f"{name}_token"), str, "data.special_symbols"
        )
        values[f"{name}_id"] = _option(
            given, f"{name}_id", getattr(defaults, f"{name}_id"), int, "data.special_symbols"
        )
    specials = _Specials(**values)
    if specials.tokens != defaults.tokens:
        # attnviz's vocabularies name their specials <unk>, <pad>, <s>, </s>.
        raise _refuse(f"special symbols other than {', '.join(defaults.tokens)}")
    return specials


def _vocabulary(
    root: Path, data: dict[str, Any], side: str, specials: _Specials, hashes: dict[str, str]
) -> list[str]:
    """The side's vocabulary as Joey builds it: ``<side>_vocab.txt`` (or the file config.yaml
    names, found by name), read as joeynmt/helpers.py reads it, with the special symbols put
    first and repeats dropped (vocabulary.py)."""
    own = f"{side}_vocab.txt"
    section = _section(data, side, "data")
    recorded = section.get("voc_file")
    name = own if (root / own).exists() or not recorded else Path(str(recorded)).name
    path = _inside(root, name, f"{side} vocabulary")
    raw = read_capped(path, f"{side} vocabulary", MAX_VOCAB_BYTES)
    hashes[name] = sha256_hex(raw)
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: the vocabulary is not UTF-8 text") from None
    tokens: list[str] = []
    seen: set[str] = set()
    for token in specials.tokens + lines:
        if token not in seen:
            seen.add(token)
            tokens.append(token)
    for token, index in zip(
        specials.tokens,
        (specials.unk_id, specials.pad_id, specials.bos_id, specials.eos_id),
        strict=True,
    ):
        if tokens.index(token) != index:
            raise CheckpointError(
                f"{path}: {token!r} has id {tokens.index(token)} but data.special_symbols "
                f"says {index}"
            )
    return tokens


def _tokenizer(
    root: Path,
    data: dict[str, Any],
    src_tokens: list[str],
    trg_tokens: list[str],
    hashes: dict[str, str],
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The config.json "tokenizer" section and the files it names."""
    sides = {side: _section(data, side, "data") for side in ("src", "trg")}
    kinds = {side: _tokenizer_kind(s, side) for side, s in sides.items()}
    if kinds["src"] != kinds["trg"]:
        raise _refuse(f"different source and target tokenizers ({kinds})")
    kind = kinds["src"]
    cfgs = {side: _section(s, "tokenizer_cfg", f"data.{side}") for side, s in sides.items()}
    pretok = {side: str(c.get("pretokenizer", "none")).lower() for side, c in cfgs.items()}
    if len(set(pretok.values())) != 1 or pretok["src"] not in ("none", "moses"):
        raise _refuse(f"pretokenizer {pretok} (the same, 'none' or 'moses', on both sides)")
    flags = {
        flag: {_option(s, flag, False, bool, f"data.{side}") for side, s in sides.items()}
        for flag in ("lowercase", "normalize")
    }
    for flag, values in flags.items():
        if len(values) != 1:
            raise _refuse(f"{flag} on one side only (data.src.{flag} / data.trg.{flag})")
    files: dict[str, bytes] = {}
    section: dict[str, Any] = {"kind": kind, "toolkit": "joeynmt"}
    if kind != "word":
        key, what = (
            ("model_file", "SentencePiece model")
            if kind == "sentencepiece"
            else ("codes", "subword-nmt codes file")
        )
        blobs = {
            side: _file_by_name(root, cfgs[side].get(key), f"{side} {what}", hashes)
            for side in ("src", "trg")
        }
        suffix = ".model" if kind == "sentencepiece" else ".codes"
        names = shared_file_names(
            blobs["src"] == blobs["trg"], "spm" if suffix == ".model" else "bpe", suffix
        )
        files.update({names[0]: blobs["src"], names[1]: blobs["trg"]})
        section.update(source=names[0], target=names[1])
    vocab_names = shared_file_names(src_tokens == trg_tokens, "vocab", ".txt")
    files[vocab_names[0]] = vocab_file_bytes(src_tokens, "source vocabulary")
    files[vocab_names[1]] = vocab_file_bytes(trg_tokens, "target vocabulary")
    section.update(source_vocab=vocab_names[0], target_vocab=vocab_names[1])
    section.update(
        lowercase=flags["lowercase"].pop(),
        normalize=flags["normalize"].pop(),
        pretokenizer=pretok["src"],
    )
    for side, key in (("src", "source_lang"), ("trg", "target_lang")):
        if sides[side].get("lang"):
            section[key] = str(sides[side]["lang"])
    if kind == "bpe":
        section["bpe_separator"] = str(cfgs["trg"].get("separator", "@@"))
    return section, files


def _tokenizer_kind(section: dict[str, Any], side: str) -> str:
    level = section.get("level", "word")
    if level == "word":
        return "word"
    if level != "bpe":
        raise _refuse(f"{level!r} level tokenization (data.{side}.level)")
    kind = section.get("tokenizer_type", section.get("bpe_type", "sentencepiece"))
    if kind == "sentencepiece":
        return "sentencepiece"
    if kind == "subword-nmt":
        return "bpe"
    raise _refuse(f"tokenizer_type {kind!r} (data.{side})")


# ---------------------------------------------------------------------------------------------
# Decoding


def _testing(cfg: dict[str, Any]) -> dict[str, Any]:
    testing = _section(cfg, "testing", JOEY_CONFIG_FILE)
    # Options that change what Joey prints, which attnviz does not reproduce.
    for key, default in (
        ("generate_unk", True),
        ("repetition_penalty", -1),
        ("no_repeat_ngram_size", -1),
        ("min_output_length", 1),
    ):
        if testing.get(key, default) != default:
            raise _refuse(f"testing.{key}: {testing[key]!r} (attnviz decodes with {default!r})")
    return testing


def _max_output_length(testing: dict[str, Any]) -> int:
    value = _option(testing, "max_output_length", -1, int, "testing")
    return value if value > 0 else -1


def _decoding(testing: dict[str, Any]) -> dict[str, Any]:
    """Joey's decoding (search.py): beam scores divided by the GNMT penalty
    ``((5 + len) / 6) ** alpha`` when beam_alpha > 0, else none; at most max_output_length
    tokens, or when it is -1 ``int(1.5 * source length)``, the source counting its </s>."""
    alpha = float(_option(testing, "beam_alpha", testing.get("alpha", -1), float, "testing"))
    max_len = _max_output_length(testing)
    beam_size = _size(testing, "beam_size", 1, "testing")
    return {
        "length_penalty": "gnmt" if alpha > 0 else "none",
        "alpha": alpha if alpha > 0 else 0.0,
        "max_len_a": 0.0 if max_len > 0 else JOEY_LENGTH_RATIO,
        "max_len_b": max_len if max_len > 0 else 0,
        "beam_stop": "joey",
        "beam_size": beam_size,
    }


def _model_section(
    a: JoeyArchitecture, specials: _Specials, testing: dict[str, Any]
) -> dict[str, Any]:
    """config.json "model": the ModelConfig fields (the shared design's names)."""
    max_len = _max_output_length(testing)
    return {
        "vocab_size": a.trg_vocab,
        "src_vocab_size": None if a.tied_embeddings else a.src_vocab,
        "emb_dim": a.emb_dim,
        "cell": a.cell,
        "bidirectional": True,
        "enc_hidden": a.enc_hidden,
        "enc_layers": a.enc_layers,
        "dec_hidden": a.dec_hidden,
        "dec_layers": a.dec_layers,
        "decoder_order": "luong",
        "input_feeding": a.input_feeding,
        "attn_out_bias": True,
        "attn_out_activation": "tanh",
        "memory_proj": False,
        # "last": the top encoder layer's final states [fwd; bwd]; when they are twice the
        # decoder's size Joey keeps the forward half (decoders.py _init_hidden).
        "init_state": a.init_hidden,
        "scorer": "additive" if a.attention == "bahdanau" else "general",
        "attn_dim": a.dec_hidden,
        "heads": 1,
        "dropout": 0.0,
        "tie_output": a.tied_softmax,
        "output_bias": False,
        "source_eos": True,
        "pad_id": specials.pad_id,
        "unk_id": specials.unk_id,
        "bos_id": specials.bos_id,
        "eos_id": specials.eos_id,
        "max_src_len": MAX_SOURCE_PIECES,
        "max_tgt_len": max_len if max_len > 0 else int(JOEY_LENGTH_RATIO * MAX_SOURCE_PIECES),
    }
