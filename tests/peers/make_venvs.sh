#!/usr/bin/env bash
# Builds throwaway virtualenvs for the two peer toolkits, outside the repository:
#   JOEY_VENV (default /work/venvs/joey): joeynmt 2.3.0
#   ONMT_VENV (default /work/venvs/onmt): OpenNMT-py 3.5.1
# Both run on torch 2.13.0. The toolkits' own pins cannot be met next to attnviz's stack
# (joeynmt 2.3.0 pins protobuf<3.21, OpenNMT-py 3.5.1 pins torch<2.3), so each is installed
# with --no-deps plus the packages its training and translation actually import.
# Usage: tests/peers/make_venvs.sh [joey|onmt|all]   (an existing venv is rebuilt from scratch)
# They feed tests/fixtures/toolkits/make_fixtures.py and tests/peers/train_side_by_side.py;
# no attnviz test needs them.
set -euo pipefail

JOEY_VENV=${JOEY_VENV:-/work/venvs/joey}
ONMT_VENV=${ONMT_VENV:-/work/venvs/onmt}
PYTHON=${PYTHON:-python3}
# torch 2.13.0: a CPU build is what these peers are measured with; set TORCH_SPEC to change it.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
which=${1:-all}

fresh_venv() {
    rm -rf "$1"
    "$PYTHON" -m venv "$1"
    "$1/bin/pip" install -q --upgrade pip
}

make_joey() {
    fresh_venv "$JOEY_VENV"
    "$JOEY_VENV/bin/pip" install -q --no-deps joeynmt==2.3.0
    # What joeynmt 2.3.0 imports when it trains, tests and translates (matplotlib and plotly
    # for its attention plots, tensorboard for its SummaryWriter, sacremoses for the Moses
    # pretokenizer, subword-nmt and sentencepiece for its tokenizers).
    "$JOEY_VENV/bin/pip" install -q "$TORCH_SPEC" numpy pyyaml sacrebleu sentencepiece \
        subword-nmt sacremoses tensorboard matplotlib plotly pandas tqdm packaging \
        importlib_metadata psutil
    local site
    site=$("$JOEY_VENV/bin/python" -c 'import joeynmt, os; print(os.path.dirname(joeynmt.__file__))')
    # Fix 1: sentencepiece >= 0.2 has no SentencePieceProcessor.SetVocabulary (nor any other
    # way to restrict segmentation to a vocabulary), so the call is dropped: pieces outside
    # Joey's vocabulary (built from the segmented training data) then become <unk>.
    sed -i '/self\.spm\.SetVocabulary(/d' "$site/tokenizers.py"
    if grep -q 'SetVocabulary' "$site/tokenizers.py"; then
        echo "joeynmt tokenizers.py still calls SetVocabulary" >&2
        exit 1
    fi
    # Fix 2: torch 2.13 no longer accepts the deprecated `verbose` of ReduceLROnPlateau;
    # Joey passes verbose=False, the default it had, so the line is dropped.
    sed -i '/"verbose": False,/d' "$site/builders.py"
    if grep -q '"verbose"' "$site/builders.py"; then
        echo "joeynmt builders.py still passes verbose" >&2
        exit 1
    fi
    "$JOEY_VENV/bin/python" -c 'import joeynmt.training, joeynmt.prediction; print("joeynmt ok")'
}

make_onmt() {
    fresh_venv "$ONMT_VENV"
    "$ONMT_VENV/bin/pip" install -q --no-deps OpenNMT-py==3.5.1
    # What onmt_build_vocab, onmt_train and onmt_translate import with the sentencepiece
    # transform (onmt.transforms imports every transform module, hence rapidfuzz,
    # pyahocorasick and regex). Its checkpoints pickle argparse.Namespace, so onmt_translate
    # on torch >= 2.6 (weights_only by default) needs TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1.
    "$ONMT_VENV/bin/pip" install -q "$TORCH_SPEC" numpy pyyaml sacrebleu sentencepiece \
        configargparse six rapidfuzz pyahocorasick regex tensorboard psutil \
        "pyonmttok>=1.37,<2" spacy fasttext
    "$ONMT_VENV/bin/python" -c 'import onmt.bin.train, onmt.bin.translate, onmt.bin.build_vocab; print("onmt ok")'
}

case "$which" in
    joey) make_joey ;;
    onmt) make_onmt ;;
    all) make_joey; make_onmt ;;
    *) echo "usage: $0 [joey|onmt|all]" >&2; exit 2 ;;
esac
