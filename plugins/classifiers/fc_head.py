"""A small fully connected network trained on cached features (the "FC head" ablation of top-tuning)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from toptune.params import Param
from toptune.progress import current

from .common import check_params, feature_scale, fit_inputs, predict_inputs, restored, standardizer, state_settings


class FCHeadClassifier(ClassifierMixin, BaseEstimator):
    """Standardised features → [Linear → ReLU → Dropout] → Linear, trained with AdamW on cross-entropy."""

    api_version = 1
    description = "MLP head trained on features (one hidden layer; hidden=0 gives a linear softmax head)"
    params = {
        "hidden": Param("int", 512, "hidden units (0 = no hidden layer)", min=0, max=65536),
        "dropout": Param("float", 0.2, "dropout before the output layer", min=0.0, max=0.95),
        "epochs": Param("int", 100, "passes over the training features", min=1, max=100000),
        "lr": Param("float", 1e-3, "AdamW learning rate", min=1e-8, max=10.0),
        "weight_decay": Param("float", 1e-4, "AdamW weight decay", min=0.0, max=1.0),
        "batch_size": Param("int", 256, "features per step", min=1),
        "standardize": Param("bool", True, "scale features to zero mean and unit variance first"),
        "device": Param("str", "auto", "where to train; auto = CUDA when available", choices=("auto", "cpu", "cuda")),
        "seed": Param("int", 0, "seed of the initialisation and batch order", min=0),
    }

    def __init__(self, hidden=512, dropout=0.2, epochs=100, lr=1e-3, weight_decay=1e-4, batch_size=256,
                 standardize=True, device="auto", seed=0):
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.standardize = standardize
        self.device = device
        self.seed = seed

    def _network(self, d: int, k: int, s: dict):
        import torch.nn as nn

        if s["hidden"] == 0:
            return nn.Linear(d, k)
        return nn.Sequential(nn.Linear(d, s["hidden"]), nn.ReLU(), nn.Dropout(s["dropout"]), nn.Linear(s["hidden"], k))

    def fit(self, X, y):
        import torch

        s = check_params(self)
        X, y = fit_inputs(self, X, y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.mean_ = X.mean(axis=0) if s["standardize"] else np.zeros(X.shape[1])
        self.scale_ = feature_scale(X) if s["standardize"] else np.ones(X.shape[1])
        self.device_ = "cuda" if s["device"] == "auto" and torch.cuda.is_available() else (
            "cpu" if s["device"] == "auto" else s["device"])
        gen = torch.Generator().manual_seed(s["seed"])
        torch.manual_seed(s["seed"])
        net = self._network(X.shape[1], len(self.classes_), s).to(self.device_)
        Xt = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=self.device_)
        yt = torch.as_tensor(codes, dtype=torch.long, device=self.device_)
        opt = torch.optim.AdamW(net.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
        net.train()
        progress = current()
        progress.set_total(s["epochs"])
        for _ in range(s["epochs"]):
            for batch in torch.randperm(len(Xt), generator=gen).split(s["batch_size"]):
                batch = batch.to(self.device_)
                loss = torch.nn.functional.cross_entropy(net(Xt[batch]), yt[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            progress.advance()
        self.net_ = net.eval()
        self.loss_ = float(loss.item())
        self.n_trained_params_ = int(sum(p.numel() for p in net.parameters()))
        return self

    def decision_function(self, X):
        import torch

        X = predict_inputs(self, X)
        with torch.inference_mode():
            Xt = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=self.device_)
            return self.net_(Xt).cpu().numpy()

    def predict(self, X):
        scores = self.decision_function(X)
        return self.classes_[scores.argmax(axis=1)]

    state_version = 1

    def save_state(self) -> tuple[dict, dict]:
        network = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        return state_settings(self, loss_=self.loss_), {"mean": self.mean_, "scale": self.scale_, **network}

    @classmethod
    def load_state(cls, settings: dict, arrays: dict):
        import torch

        estimator = restored(cls, settings, arrays, mean_=arrays["mean"], scale_=arrays["scale"],
                             loss_=settings["loss_"])
        s = check_params(estimator)
        estimator.device_ = "cuda" if s["device"] == "auto" and torch.cuda.is_available() else (
            "cpu" if s["device"] == "auto" else s["device"])
        net = estimator._network(estimator.n_features_in_, len(estimator.classes_), s)
        net.load_state_dict({k[len("net."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                             if k.startswith("net.")})
        estimator.net_ = net.to(estimator.device_).eval()
        return estimator

    def scores_module(self):
        import copy

        import torch

        return torch.nn.Sequential(standardizer(self.mean_, self.scale_), copy.deepcopy(self.net_).cpu()).eval()
