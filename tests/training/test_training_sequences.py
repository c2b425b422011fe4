"""Sequence backbones (EST, the mean-pooling baseline) through the registry, trainer and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ttsctr.data.sequences import sequence_inputs, synthetic_sequences
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec, SequenceFeatureSpec
from ttsctr.flops import model_cost
from ttsctr.metrics import roc_auc
from ttsctr.models import available_models, build_model
from ttsctr.training import MemberSpec, TrainConfig, build_group, load_group, predict_logits, save_group, train


@pytest.fixture(scope="module")
def sequences():
    torch.set_num_threads(1)
    data = synthetic_sequences(n_users=200, n_items=150, events_per_user=30)
    return data, *sequence_inputs(data)


def test_sequence_inputs_are_global_ids_of_a_sequence_spec(sequences) -> None:
    data, spec, splits = sequences
    assert isinstance(spec, SequenceFeatureSpec) and spec.n_items == data.n_items
    assert spec.num_fields == len(data.fields) + data.user_seq.shape[1] + data.cand_seq.shape[1]
    x, y = splits["train"]
    offsets, sizes = np.asarray(spec.offsets), np.asarray(spec.vocab_sizes)
    assert ((x >= offsets) & (x < offsets + sizes)).all()  # every id inside its field's range
    f = spec.num_context_fields
    train_rows = data.split == 0
    np.testing.assert_array_equal(x[:, f:f + spec.user_len] - np.asarray(spec.slot_offsets[:spec.user_len]),
                                  data.user_seq[train_rows])
    assert sum(v[0].shape[0] for v in splits.values()) == len(data.label) and set(np.unique(y)) <= {0.0, 1.0}


def test_sequence_spec_is_checked() -> None:
    content = np.vstack([np.zeros(2), np.eye(3, 2)]).astype(np.float32)
    kw = dict(num_context_fields=1, user_len=1, candidate_len=1, content=content, candidate_field="a")
    with pytest.raises(ConfigError, match="3 fields but 1 context fields"):
        SequenceFeatureSpec(("a", "u0", "c0"), (4, 4, 4), **{**kw, "user_len": 2})
    with pytest.raises(ConfigError, match="same vocabulary"):
        SequenceFeatureSpec(("a", "u0", "c0"), (4, 4, 5), **kw)
    with pytest.raises(ConfigError, match="content row 0"):
        SequenceFeatureSpec(("a", "u0", "c0"), (4, 4, 4), **{**kw, "content": content + 1})
    with pytest.raises(ConfigError, match=r"content must be \(4, d_c\)"):
        SequenceFeatureSpec(("a", "u0", "c0"), (4, 4, 4), **{**kw, "content": content[:3]})
    with pytest.raises(ConfigError, match="candidate_field 'item' is not a context field"):
        SequenceFeatureSpec(("a", "u0", "c0"), (4, 4, 4), **{**kw, "candidate_field": "item"})
    with pytest.raises(ConfigError, match="candidate field 'a' has 2 codes; expected n_items"):
        SequenceFeatureSpec(("a", "u0", "c0"), (2, 4, 4), **kw)
    assert SequenceFeatureSpec(("a", "u0", "c0"), (4, 4, 4), **kw).candidate_index == 0
    with pytest.raises(ConfigError, match="needs a SequenceFeatureSpec"):
        build_model("est", FeatureSpec(("a", "b"), (3, 4)), "small")
    assert available_models("sequence") == ["din_dcnv2", "din_rankmixer", "est", "seq_mean_pool"] and "est" not in available_models()


def test_sequence_backbones_train_predict_and_reload(sequences, tmp_path) -> None:
    _, spec, splits = sequences
    config = TrainConfig.from_protocol("reference", max_epochs=6, num_threads=1, progress=False, batch_size=256)
    x, y = splits["test"]
    aucs = {}
    for name in ("est", "seq_mean_pool"):  # independently trained, each its own group
        group = build_group(spec, [MemberSpec(name, 0, "small")], weight_init=config.weight_init)
        result = train(group, splits["train"], splits["validation"], config)
        logits = predict_logits(group, x)
        aucs[name] = roc_auc(y, logits[:, 0])
        assert result.history and np.isfinite(logits).all()
    assert all(a > 0.62 for a in aucs.values()), aucs  # planted: the generator's Bayes AUC is about 0.83
    save_group(group, None, spec, tmp_path / "group.pt")
    again, members, spec_again = load_group(tmp_path / "group.pt")
    assert isinstance(spec_again, SequenceFeatureSpec) and spec_again == spec
    np.testing.assert_array_equal(spec_again.content, spec.content)
    np.testing.assert_allclose(predict_logits(again, x), logits, rtol=0, atol=1e-6)
    est = build_model("est", spec, "small")
    assert model_cost(est).flops_per_row > model_cost(group.members[0]).flops_per_row > 0  # group: the mean-pool member
