"""Evaluating a trained run on a split: predictions, per-class scores, confusions, as text.

Precision, recall and F1 come from scikit-learn, so they match ``classification_report.txt``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cnnlab.data import CLASS_NAMES, NUM_CLASSES
from cnnlab.errors import ConfigError, given, option

SPLITS = ("test", "valid")


@dataclasses.dataclass
class Evaluation:
    split: str
    images: np.ndarray  # uint8 (N, 28, 28), as stored
    labels: np.ndarray  # int64 (N,)
    probs: np.ndarray  # float32 (N, 10), softmax of the logits

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
        """(10, 10) counts: row = true class, column = predicted class."""
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.labels, self.predictions, labels=range(NUM_CLASSES))


def split_images(config, split: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The raw uint8 images and labels of ``split``, chosen exactly as training chose them."""
    from cnnlab import data

    if split not in SPLITS:
        raise ConfigError(f"{option('split')} must be one of {', '.join(SPLITS)}. Received: {split!r}")
    raw = data.load_arrays(data.ensure_data(data_dir or data.recorded_or_search(config.data_dir), quiet=True))
    if split == "test":
        return raw.test_images, raw.test_labels.astype(np.int64)
    if config.valid_size == 0:
        raise ConfigError(
            f"{given('split', 'valid')}: this run was trained with {given('valid_size', 0)}, so it has no "
            "validation split"
        )
    parts = data.split_indices(
        config.resolved_train_size, config.valid_size, config.seed, total=len(raw.train_images)
    )
    return raw.train_images[parts.valid], raw.train_labels[parts.valid].astype(np.int64)


def predict_probs(
    model, x: np.ndarray, batch_size: int = 1000, tta: bool = False, tta_shift: int = 0
) -> np.ndarray:
    """Softmax probabilities (N, 10) for normalised images x (N, 1, 28, 28), with training's
    test-time augmentation (--tta, --tta-shift; ``cnnlab.models.class_probabilities``)."""
    import torch

    from cnnlab.models import class_probabilities

    with torch.inference_mode():
        batches = [
            class_probabilities(model, torch.from_numpy(x[i : i + batch_size]), tta, tta_shift)
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(batches).numpy() if batches else np.zeros((0, NUM_CLASSES), np.float32)


def evaluate_run(run, split: str = "test", data_dir=None) -> Evaluation:
    from cnnlab.data import normalize

    images, labels = split_images(run.config, split, data_dir)
    return Evaluation(
        split,
        images,
        labels,
        predict_probs(run.model, normalize(images), tta=run.config.tta, tta_shift=run.config.tta_shift),
    )


def per_class(ev: Evaluation) -> list[dict]:
    """One row per class: name, precision, recall, f1, support."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        ev.labels, ev.predictions, labels=range(NUM_CLASSES), zero_division=0
    )
    return [
        {
            "class": CLASS_NAMES[k],
            "precision": float(p[k]),
            "recall": float(r[k]),
            "f1": float(f[k]),
            "support": int(s[k]),
        }
        for k in range(NUM_CLASSES)
    ]


def confused_pairs(confusion: np.ndarray, top: int = 5) -> list[dict]:
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
                "true": CLASS_NAMES[true],
                "predicted": CLASS_NAMES[pred],
                "count": int(off[true, pred]),
                "share_of_true": float(off[true, pred] / max(1, confusion[true].sum())),
            }
        )
    return pairs


def format_per_class(rows: list[dict]) -> str:
    lines = [f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for row in rows:
        lines.append(
            f"{row['class']:<12} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} "
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
        "confused_pairs": confused_pairs(ev.confusion),
        "class_names": list(CLASS_NAMES),
    }


def top_classes(
    model, images: np.ndarray, k: int = 3, tta: bool = False, tta_shift: int = 0
) -> list[list[dict]]:
    """For uint8 images (N, 28, 28): the k most probable classes of each, most probable first."""
    from cnnlab.data import normalize

    probs = predict_probs(model, normalize(images), tta=tta, tta_shift=tta_shift)
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [
        [{"class": CLASS_NAMES[c], "probability": float(p[c])} for c in row] for p, row in zip(probs, best)
    ]
