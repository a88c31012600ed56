"""Weighted k-nearest-neighbour classification on cosine similarity (the online monitor's core).

Follows the protocol of Wu et al. 2018 / DINO's ``eval_knn.py``: the k most similar train features vote
for their label with weight exp(similarity / T).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor, query_features: torch.Tensor,
                num_classes: int, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> torch.Tensor:
    """Predicted labels (Q,) for query features (Q, D) given train features (N, D) and labels (N,)."""
    train = F.normalize(train_features.float(), dim=1)
    k = min(k, train.shape[0])
    predictions = []
    for start in range(0, query_features.shape[0], chunk):
        query = F.normalize(query_features[start:start + chunk].float(), dim=1)
        similarity, index = (query @ train.T).topk(k, dim=1)  # (q, k)
        votes = torch.zeros(query.shape[0], num_classes, device=query.device)
        votes.scatter_add_(1, train_labels[index], (similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, num_classes: int, k: int = 20) -> float:
    """Fraction of test features whose k-NN vote matches their label."""
    predicted = knn_predict(train_features, train_labels, test_features, num_classes, k)
    return float((predicted == test_labels.to(predicted.device)).float().mean())
