"""Tests for the scikit-learn-style estimators: LinearProbe, KNNProbe, RawPixelProbe and SupervisedBaseline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sslcore.data import load_dataset, stratified_subset
from sslcore.evaluation import KNNProbe, LinearProbe, RawPixelProbe, SupervisedBaseline


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def blobs(n_per_class: int, seed: int, dim: int = 32, classes: int = 4, noise_seed: int | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Linearly separable features (n_per_class * classes, dim): well-apart Gaussian blobs whose centres
    depend on ``seed`` and whose samples on ``noise_seed`` (default: ``seed``)."""
    centres = np.random.default_rng(seed).normal(0.0, 4.0, size=(classes, dim))
    noise = np.random.default_rng(seed if noise_seed is None else noise_seed)
    y = np.repeat(np.arange(classes), n_per_class)
    return (centres[y] + noise.normal(0.0, 1.0, size=(len(y), dim))).astype(np.float32), y


def learned_attributes(estimator) -> set[str]:
    return {k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")}


# ------------------------------------------------------------------------------ scikit-learn rules


@pytest.mark.parametrize("make", [LinearProbe, KNNProbe, RawPixelProbe])
def test_probes_follow_estimator_rules(make) -> None:
    X, y = blobs(10, seed=0, dim=16)
    estimator = make(random_state=3)
    assert learned_attributes(estimator) == set()  # __init__ only stores parameters
    params = estimator.get_params()
    assert params["random_state"] == 3
    assert estimator.fit(X, y) is estimator
    assert {"classes_", "n_features_in_"} <= learned_attributes(estimator)
    assert estimator.predict(X).shape == (len(y),)
    assert 0.0 <= estimator.score(X, y) <= 1.0
    assert clone(estimator).get_params() == params


def test_supervised_baseline_follows_estimator_rules(digits) -> None:
    model = SupervisedBaseline("mlp", 4, digits.image_shape, max_steps=2, eval_every=1, random_state=5)
    assert learned_attributes(model) == set()
    assert clone(model).get_params() == model.get_params()
    idx = stratified_subset(digits.train.labels, 3, seed=0)
    assert model.fit(digits.train.images[idx], digits.train.labels[idx]) is model
    expected = {"classes_", "model_", "train_indices_", "holdout_indices_", "early_stopping_", "n_steps_",
                "best_step_", "holdout_accuracy_", "history_", "fit_seconds_", "image_shape_", "device_"}
    assert expected <= learned_attributes(model)
    assert model.predict(digits.test.images[:7]).shape == (7,)


# ------------------------------------------------------------------------------ linear probe


def test_linear_probe_separates_separable_features() -> None:
    X, y = blobs(50, seed=1)
    X_test, y_test = blobs(50, seed=1, noise_seed=99)  # same classes, unseen samples
    probe = LinearProbe().fit(X, y)
    assert probe.score(X_test, y_test) > 0.95 and probe.C_ == 1.0 and probe.cv_scores_ == {}
    tuned = LinearProbe(C=None).fit(X, y)  # C chosen by cross-validation on the training data
    assert tuned.C_ in tuned.Cs and set(tuned.cv_scores_) == {float(c) for c in tuned.Cs}
    assert tuned.score(X_test, y_test) > 0.95
    assert probe.predict_proba(X_test).shape == (len(y), 4)


def test_linear_probe_without_room_for_cv_uses_the_fallback_c() -> None:
    X, y = blobs(1, seed=2)  # one sample per class: nothing to cross-validate
    probe = LinearProbe(C=None, fallback_C=0.5).fit(X, y)
    assert probe.C_ == 0.5 and probe.cv_scores_ == {}
    assert LinearProbe(C=2.0).fit(*blobs(5, seed=2)).C_ == 2.0


def test_linear_probe_accepts_torch_inputs_and_keeps_label_values() -> None:
    X, y = blobs(10, seed=4, classes=3)
    labels = np.array([3, 7, 9])[y]
    probe = LinearProbe(C=1.0).fit(torch.from_numpy(X), torch.from_numpy(labels))
    assert set(probe.predict(X)) <= {3, 7, 9}
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        probe.fit(np.zeros((4, 2, 2)), [0, 1, 0, 1])


# ------------------------------------------------------------------------------ k-NN


def test_knn_votes_by_cosine_similarity() -> None:
    # Class 0 points right, class 1 points up; length must not matter (cosine), only direction.
    train = np.array([[1.0, 0.0], [5.0, 0.5], [0.0, 1.0], [0.3, 4.0]], dtype=np.float32)
    labels = np.array([10, 10, 20, 20])
    query = np.array([[100.0, 1.0], [0.01, 0.02], [-0.1, 1.0], [2.0, 2.1]], dtype=np.float32)
    probe = KNNProbe(n_neighbors=1).fit(train, labels)
    np.testing.assert_array_equal(probe.predict(query), [10, 20, 20, 20])
    assert probe.k_ == 1


def test_knn_caps_k_at_the_number_of_labelled_samples() -> None:
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    probe = KNNProbe(n_neighbors=20).fit(train, [0, 0, 1])
    assert probe.k_ == 3
    # All three vote with weight exp(similarity / T): the one very similar class-1 neighbour outweighs
    # two dissimilar class-0 ones.
    np.testing.assert_array_equal(probe.predict(np.array([[1.0, 0.05], [0.0, 1.0]], dtype=np.float32)), [0, 1])


# ------------------------------------------------------------------------------ raw pixels


def test_raw_pixel_probe_beats_chance_on_digits(digits) -> None:
    idx = stratified_subset(digits.train.labels, 10, seed=0)
    probe = RawPixelProbe().fit(digits.train.images[idx].numpy(), digits.train.labels[idx].numpy())
    assert probe.n_features_in_ == 64 and probe.standardize is False
    assert probe.score(digits.test.images.numpy(), digits.test.labels.numpy()) > 0.6  # chance is 0.1


# ------------------------------------------------------------------------------ supervised baseline


def test_supervised_baseline_learns_from_the_train_subset_only(digits) -> None:
    idx = stratified_subset(digits.train.labels, 20, seed=0)
    images, labels = digits.train.images[idx], digits.train.labels[idx]
    model = SupervisedBaseline("convnet", 8, digits.image_shape, max_steps=40, batch_size=64, eval_every=10,
                               random_state=0).fit(images, labels)
    # Early stopping held out a stratified part of the 200 given images, never anything else.
    held, kept = set(model.holdout_indices_.tolist()), set(model.train_indices_.tolist())
    assert model.early_stopping_ and held and not held & kept and held | kept == set(range(len(idx)))
    assert set(labels[model.holdout_indices_].tolist()) == set(range(10))
    assert 1 <= model.best_step_ <= model.n_steps_ <= 40
    assert model.score(digits.test.images, digits.test.labels) > 0.3  # chance is 0.1


def test_supervised_baseline_with_one_label_per_class_trains_fixed_steps(digits) -> None:
    idx = stratified_subset(digits.train.labels, 1, seed=0)
    model = SupervisedBaseline("mlp", 4, augment=False, steps_without_holdout=7, random_state=0)
    model.fit(digits.train.images[idx].numpy(), digits.train.labels[idx].numpy())
    assert not model.early_stopping_ and len(model.holdout_indices_) == 0
    assert model.n_steps_ == model.best_step_ == 7 and model.holdout_accuracy_ is None and model.history_ == []


def test_supervised_baseline_is_seeded(digits) -> None:
    idx = stratified_subset(digits.train.labels, 2, seed=1)
    fit = lambda seed: SupervisedBaseline("mlp", 4, max_steps=5, eval_every=5, random_state=seed).fit(  # noqa: E731
        digits.train.images[idx], digits.train.labels[idx]).decision_function(digits.test.images[:50])
    np.testing.assert_allclose(fit(0), fit(0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(fit(0), fit(1))


def test_supervised_baseline_refuses_mismatched_shapes(digits) -> None:
    with pytest.raises(ValueError, match="image_shape"):
        SupervisedBaseline("mlp", 4, (1, 28, 28)).fit(digits.train.images[:20], digits.train.labels[:20])
    with pytest.raises(ValueError, match="uint8"):
        SupervisedBaseline("mlp", 4).fit(digits.train.images[:20].float(), digits.train.labels[:20])


def test_supervised_conv_net_trained_channels_last_predicts_like_a_contiguous_copy(digits) -> None:
    idx = stratified_subset(digits.train.labels, 5, seed=0)
    model = SupervisedBaseline("convnet", 4, max_steps=6, eval_every=3, random_state=0).fit(
        digits.train.images[idx], digits.train.labels[idx])
    scores = model.decision_function(digits.test.images[:40])
    model.model_.to(memory_format=torch.contiguous_format)
    np.testing.assert_allclose(model.decision_function(digits.test.images[:40]), scores, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_the_supervised_networks_train_in_bf16_exactly_where_the_ssl_trainer_does(digits, monkeypatch,
                                                                                  fast_bf16: bool) -> None:
    from sslcore.engine import device as device_module
    from sslcore.evaluation import supervised

    monkeypatch.setattr(device_module, "cpu_has_fast_bf16", lambda: fast_bf16)  # as on avx512_bf16 / AMX CPUs, or not
    cpu = torch.device("cpu")
    conv_net, mlp = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), torch.nn.Sequential(torch.nn.Linear(4, 2))
    for model in (conv_net, mlp):
        assert supervised.trains_in_bf16(cpu, model) == device_module.use_bf16(cpu, "auto", model)
    assert supervised.trains_in_bf16(cpu, conv_net) == fast_bf16 and not supervised.trains_in_bf16(cpu, mlp)
    assert supervised.trains_in_bf16(cpu, mlp, "bf16") and not supervised.trains_in_bf16(cpu, conv_net, "fp32")
    autocasts: list[bool] = []
    step = supervised._optimizer_step
    monkeypatch.setattr(supervised, "_optimizer_step", lambda *a: autocasts.append(a[-1]) or step(*a))
    idx = stratified_subset(digits.train.labels, 4, seed=0)
    for name, precision, expected in (("convnet", "auto", fast_bf16), ("mlp", "auto", False),
                                      ("convnet", "fp32", False)):
        autocasts.clear()
        model = SupervisedBaseline(name, 4, max_steps=3, eval_every=3, precision=precision, device="cpu").fit(
            digits.train.images[idx], digits.train.labels[idx])
        assert autocasts == [expected] * 3 and model.bf16_ == expected


def test_a_wrong_network_precision_is_refused_with_the_choices(digits) -> None:
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32, got 'fp16'"):
        SupervisedBaseline("mlp", 4, max_steps=3, precision="fp16", device="cpu").fit(
            digits.train.images[:40], digits.train.labels[:40])
