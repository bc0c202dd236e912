"""Evaluating a trained run on a split: predictions, per-class scores, confusions, as text.

Precision, recall and F1 come from scikit-learn, so they match ``classification_report.txt``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Evaluation:
    split: str
    images: np.ndarray  # uint8 (N, C, H, W), as stored
    labels: np.ndarray  # int64 (N,)
    probs: np.ndarray  # float32 (N, K), softmax of the logits
    class_names: tuple[str, ...]

    @property
    def predictions(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(1)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def confusion(self) -> np.ndarray:
        """(K, K) counts: row = true class, column = predicted class."""
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.labels, self.predictions, labels=range(len(self.class_names)))


def per_class(ev: Evaluation) -> list[dict]:
    """One row per class: name, precision, recall, f1, support."""
    from sklearn.metrics import precision_recall_fscore_support

    names = ev.class_names
    p, r, f, s = precision_recall_fscore_support(
        ev.labels, ev.predictions, labels=range(len(names)), zero_division=0
    )
    return [
        {
            "class": names[k],
            "precision": float(p[k]),
            "recall": float(r[k]),
            "f1": float(f[k]),
            "support": int(s[k]),
        }
        for k in range(len(names))
    ]


def confused_pairs(confusion: np.ndarray, class_names, top: int = 5) -> list[dict]:
    """The ``top`` largest off-diagonal cells: which true class is most often taken for which."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None, kind="stable")[::-1][:top]
    pairs = []
    for flat in order:
        true, pred = divmod(int(flat), confusion.shape[1])
        if off[true, pred] == 0:
            break
        pairs.append(
            {
                "true": class_names[true],
                "predicted": class_names[pred],
                "count": int(off[true, pred]),
                "share_of_true": float(off[true, pred] / max(1, confusion[true].sum())),
            }
        )
    return pairs


def format_per_class(rows: list[dict]) -> str:
    width = max([12, *(len(row["class"]) for row in rows)])
    lines = [f"{'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for row in rows:
        lines.append(
            f"{row['class']:<{width}} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} "
            f"{row['support']:>8d}"
        )
    return "\n".join(lines)


def format_pairs(pairs: list[dict]) -> str:
    if not pairs:
        return "no confusions: every image was classified correctly"
    return "\n".join(
        f"{p['count']:>6d}  {p['true']} taken for {p['predicted']} ({p['share_of_true']:.1%} of {p['true']})"
        for p in pairs
    )


def as_json(ev: Evaluation) -> dict:
    """What ``evaluate`` saves: every number it prints, nothing that needs the images."""
    return {
        "split": ev.split,
        "images": int(len(ev.labels)),
        "accuracy": ev.accuracy,
        "per_class": per_class(ev),
        "confusion": ev.confusion.tolist(),
        "confused_pairs": confused_pairs(ev.confusion, ev.class_names),
        "class_names": list(ev.class_names),
    }


def top_classes(probs: np.ndarray, class_names, k: int = 3) -> list[list[dict]]:
    """For probabilities (N, K): the k most probable classes of each image, most probable first."""
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [
        [{"class": class_names[c], "probability": float(p[c])} for c in row] for p, row in zip(probs, best)
    ]
