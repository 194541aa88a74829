"""End to end: the published protocol against ``qtransfer train``, same images, same machine, one run.

(a) the published protocol (Mari et al.'s demo, written out here): the whole network —
    frozen backbone + dressed quantum head — runs on every mini-batch of every epoch
    (``model.train()`` in the training phase, as published, so BatchNorm uses batch
    statistics), the quantum circuit is a PennyLane ``default.qubit`` QNode called once
    per sample, batch 4, Adam 4e-4 on the head, StepLR(10, 0.1), cross-entropy;
(b) ``qtransfer train`` with the same hyperparameters, cold (empty feature cache) and
    warm (features cached).

Times are in-process wall seconds from building the model (after imports) to the end of
training, start-up and imports excluded on both sides (every module either side loads is
imported before the first clock starts). The published protocol is run for
``--published-epochs`` epochs (default 2); its 30-epoch time is extrapolated from the
measured per-epoch cost (every epoch does the same work) and the report says so. Use
``--published-epochs 30`` for a full run with its accuracy.

    python benchmarks/end_to_end.py --data ../shared/data/hymenoptera_train \\
        --backbone mobilenet_v2 --weights ../shared/weights/mobilenet_v2-b0353104.pth
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def published_protocol(train_items, val_items, *, backbone: str, weights: str, epochs: int, seed: int,
                       n_qubits: int = 4, depth: int = 6, q_delta: float = 0.01, lr: float = 4e-4,
                       batch_size: int = 4) -> dict:
    """The published training loop; returns per-epoch times and accuracies."""
    import pennylane as qml
    from torch.utils.data import DataLoader, Dataset

    from qtransfer.features.backbones import create_backbone, published_transform
    from qtransfer.data.images import open_image_rgb

    t_start = time.perf_counter()
    torch.manual_seed(seed)
    transform = published_transform()

    class Images(Dataset):
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            path, label = self.items[i]
            return transform(open_image_rgb(path)), label

    loaders = {"train": DataLoader(Images(train_items), batch_size=batch_size, shuffle=True),
               "val": DataLoader(Images(val_items), batch_size=batch_size, shuffle=True)}
    device = qml.device("default.qubit", wires=n_qubits)

    @qml.qnode(device, interface="torch")
    def circuit(inputs, weights):
        for wire in range(n_qubits):
            qml.Hadamard(wires=wire)
        for wire in range(n_qubits):
            qml.RY(inputs[wire], wires=wire)
        for layer in range(depth):
            for wire in range(0, n_qubits - 1, 2):
                qml.CNOT(wires=[wire, wire + 1])
            for wire in range(1, n_qubits - 1, 2):
                qml.CNOT(wires=[wire, wire + 1])
            for wire in range(n_qubits):
                qml.RY(weights[layer, wire], wires=wire)
        return [qml.expval(qml.PauliZ(wire)) for wire in range(n_qubits)]

    class DressedQuantumNet(nn.Module):
        def __init__(self, in_features: int):
            super().__init__()
            self.pre_net = nn.Linear(in_features, n_qubits)
            self.q_params = nn.Parameter(q_delta * torch.randn(depth * n_qubits))
            self.post_net = nn.Linear(n_qubits, 2)

        def forward(self, x):
            q_in = torch.tanh(self.pre_net(x)) * math.pi / 2
            weights = self.q_params.reshape(depth, n_qubits)
            q_out = torch.cat([torch.stack(list(circuit(e, weights))).float().unsqueeze(0) for e in q_in])
            return self.post_net(q_out)

    # The backbone with its classifier cut (our registry does the cutting; same torchvision model and weights).
    features = create_backbone(backbone, weights, transform="published").model
    for p in features.parameters():
        p.requires_grad = False
    in_features = create_backbone(backbone, None).num_features
    head = DressedQuantumNet(in_features)
    model = nn.Sequential(features, head)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)
    loss_fn = nn.CrossEntropyLoss()
    setup_s = time.perf_counter() - t_start

    epochs_log = []
    best_acc = 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        record = {}
        for phase in ("train", "val"):
            model.train(phase == "train")
            correct, total = 0, 0
            for images, labels in loaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    logits = model(images)
                    loss = loss_fn(logits, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                correct += int((logits.argmax(1) == labels).sum())
                total += labels.shape[0]
            if phase == "train":
                scheduler.step()
            record[f"{phase}_acc"] = correct / total
        best_acc = max(best_acc, record["val_acc"])
        record["seconds"] = time.perf_counter() - t0
        epochs_log.append(record)
        print(f"  published epoch {epoch + 1}: {record['seconds']:.1f} s, val acc {record['val_acc']:.3f}", file=sys.stderr)
    return {"setup_s": setup_s, "epochs": epochs_log, "best_val_acc": best_acc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/hymenoptera_train")
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--weights", default="../shared/weights/mobilenet_v2-b0353104.pth")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--published-epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    # Imports are excluded on both sides: load here, before any clock starts, what either
    # pipeline imports lazily (torchvision.models alone imports torch._dynamo: ~1.7 s on 2 cores).
    import pennylane  # noqa: F401
    import torchvision.models  # noqa: F401

    import qtransfer.features.extract
    import qtransfer.training.loop  # noqa: F401
    from qtransfer.config import TrainConfig
    from qtransfer.pipeline import prepare_features, train_run

    weights = str(Path(args.weights).resolve()) if Path(args.weights).is_file() else args.weights
    config = TrainConfig(data=str(Path(args.data).resolve()), backbone=args.backbone, weights=weights,
                         transform="published", epochs=args.epochs, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # (b) qtransfer, cold then warm (same cache directory).
        cold = train_run(config, tmp / "cold", cache_dir=tmp / "cache", progress=False, report=False, log=lambda m: None)
        warm = train_run(config, tmp / "warm", cache_dir=tmp / "cache", progress=False, report=False, log=lambda m: None)
        # The same train/val files for the published protocol.
        fs = prepare_features(config, cache_dir=tmp / "cache", progress=False)
    train_items = [(p, int(y)) for p, y in zip(fs.splits["train"].paths, fs.splits["train"].y.tolist())]
    val_items = [(p, int(y)) for p, y in zip(fs.splits["val"].paths, fs.splits["val"].y.tolist())]
    # (a) the published protocol.
    pub = published_protocol(train_items, val_items, backbone=args.backbone, weights=weights,
                             epochs=args.published_epochs, seed=args.seed)
    per_epoch = sum(e["seconds"] for e in pub["epochs"]) / len(pub["epochs"])
    pub_total = pub["setup_s"] + per_epoch * args.epochs
    extrapolated = args.published_epochs < args.epochs

    rows = [
        ("published protocol" + (f" ({args.published_epochs} epochs measured, {args.epochs} extrapolated)" if extrapolated else ""),
         pub_total, None, pub["best_val_acc"] if not extrapolated else None),
        ("qtransfer train, cold cache", cold["timing"]["total_s"], cold["timing"]["extract_s"], cold["final"]["val"]["accuracy"]),
        ("qtransfer train, warm cache", warm["timing"]["total_s"], warm["timing"]["extract_s"], warm["final"]["val"]["accuracy"]),
    ]
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"{args.backbone}, {len(train_items)} train / {len(val_items)} val images, {args.epochs} epochs, batch 4\n")
    print("| pipeline | total s | feature extraction s | speed-up | best val accuracy |")
    print("|---|---:|---:|---:|---:|")
    for name, total, extract, acc in rows:
        speedup = pub_total / total
        print(f"| {name} | {total:.2f} | {'-' if extract is None else f'{extract:.2f}'} | {speedup:.0f}x | "
              f"{'-' if acc is None else f'{acc:.3f}'} |")
    print(f"\npublished protocol: {per_epoch:.2f} s per epoch (mean of {len(pub['epochs'])}), set-up {pub['setup_s']:.2f} s; "
          f"val accuracy after {args.published_epochs} epoch(s): {pub['best_val_acc']:.3f}")
    print(f"qtransfer: training {cold['timing']['train_s']:.2f} s cold, {warm['timing']['train_s']:.2f} s warm")
    if args.json:
        Path(args.json).write_text(json.dumps({"published": pub, "published_total_s": pub_total, "cold": cold["timing"],
                                               "warm": warm["timing"], "cold_acc": cold["final"]["val"]["accuracy"],
                                               "warm_acc": warm["final"]["val"]["accuracy"]}, indent=2))


if __name__ == "__main__":
    main()
