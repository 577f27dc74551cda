"""Merging shards: the happy path and every refusal, each naming the shard at fault."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from knowledge_map.embed import l2_normalise, write_shard
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.merge import contiguous_runs, merge_shards

N, DIM = 10, 8
IDS = [f"id{i}" for i in range(N)]
TITLES = [f"Title {i}" for i in range(N)]
CORPUS_SHA = "c" * 64
#: What every test shard was made with (see knowledge_map.identity).
IDENTITY = {"model": "m", "model_sha256": "5076c6" + "0" * 58, "prompt": "", "max_seq_length": 256,
            "dtype": "float32", "backend": "openvino", "precision": "bfloat16", "quantization": "",
            "corpus_sha256": CORPUS_SHA,
            "n_rows": N, "n_shards": 3}


def shard_attrs(**changes):
    return {**IDENTITY, **changes}


def matrix(n=N, dim=DIM, seed=0):
    return l2_normalise(np.random.default_rng(seed).normal(size=(n, dim)))


def make_shards(tmp_path, bounds=((0, 4), (4, 7), (7, 10)), data=None, model="m", dim=DIM):
    data = matrix(dim=dim) if data is None else data
    paths = []
    for index, (start, stop) in enumerate(bounds):
        path = tmp_path / f"shard-{index:04d}.h5"
        write_shard(str(path), data[start:stop], np.arange(start, stop), shard_attrs(model=model, elapsed_seconds=1.0))
        paths.append(str(path))
    return paths, data


def merge(tmp_path, paths, model="m"):
    out = tmp_path / "embeddings.h5"
    merge_shards(paths, str(out), IDS, TITLES, model=model, corpus_sha256=CORPUS_SHA)
    return out


def test_merge_puts_rows_in_corpus_order(tmp_path):
    data = matrix()
    paths = []
    # Shards listed out of order and with shuffled rows inside: the output is still in row order.
    for index, rows in enumerate([np.array([9, 7, 8]), np.array([3, 0, 1, 2]), np.array([6, 4, 5])]):
        path = tmp_path / f"s{index}.h5"
        write_shard(str(path), data[rows], rows, shard_attrs())
        paths.append(str(path))
    out = merge(tmp_path, paths)
    with h5py.File(out) as h5:
        np.testing.assert_array_equal(h5["embeddings"][()], data)
        assert h5["ids"].asstr()[()].tolist() == IDS
        assert h5["titles"].asstr()[()].tolist() == TITLES
        assert h5.attrs["n_shards"] == 3


def test_gap_is_refused(tmp_path):
    paths, _ = make_shards(tmp_path, bounds=((0, 4), (5, 10)))
    with pytest.raises(KnowledgeMapError, match=r"1 corpus rows are in no shard \(first: row 4\)"):
        merge(tmp_path, paths)
    assert not (tmp_path / "embeddings.h5").exists()


def test_overlap_names_both_shards(tmp_path):
    paths, _ = make_shards(tmp_path, bounds=((0, 5), (4, 10)))
    with pytest.raises(KnowledgeMapError, match=r"shard-0001.h5: row 4 is also in .*shard-0000.h5") as info:
        merge(tmp_path, paths)
    assert "--forcerun" in str(info.value)


def test_duplicate_rows_inside_a_shard_are_refused(tmp_path):
    path = tmp_path / "shard-0000.h5"
    write_shard(str(path), matrix(n=2), np.array([3, 3]), shard_attrs())
    with pytest.raises(KnowledgeMapError, match="shard-0000.h5: duplicate row indices"):
        merge(tmp_path, [str(path)])


def test_dimension_mismatch_is_refused(tmp_path):
    paths, _ = make_shards(tmp_path, bounds=((0, 5),))
    other = tmp_path / "shard-0001.h5"
    write_shard(str(other), matrix(n=5, dim=DIM + 1), np.arange(5, 10), shard_attrs())
    with pytest.raises(KnowledgeMapError, match=r"shard-0001.h5: dimension 9 differs"):
        merge(tmp_path, [*paths, str(other)])


def test_model_mismatch_is_refused(tmp_path):
    paths, _ = make_shards(tmp_path, model="other-model")
    with pytest.raises(KnowledgeMapError, match="made with model 'other-model', not the configured 'm'"):
        merge(tmp_path, paths)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_is_refused(tmp_path, value):
    data = matrix()
    data[5, 2] = value
    paths, _ = make_shards(tmp_path, data=data)
    with pytest.raises(KnowledgeMapError, match=r"shard-0001.h5: row 5 has NaN or Inf"):
        merge(tmp_path, paths)


def test_truncated_shard_is_refused(tmp_path):
    paths, _ = make_shards(tmp_path)
    raw = open(paths[2], "rb").read()
    open(paths[2], "wb").write(raw[: len(raw) // 2])
    with pytest.raises(KnowledgeMapError, match=r"shard-0002.h5: unreadable or truncated shard file.*--forcerun"):
        merge(tmp_path, paths)


def test_rows_outside_the_corpus_are_refused(tmp_path):
    paths, _ = make_shards(tmp_path)
    extra = tmp_path / "shard-0003.h5"
    write_shard(str(extra), matrix(n=1), np.array([10]), shard_attrs())
    with pytest.raises(KnowledgeMapError, match="shard-0003.h5: row indices outside the corpus"):
        merge(tmp_path, [*paths, str(extra)])


def test_missing_dataset_is_refused(tmp_path):
    path = tmp_path / "shard-0000.h5"
    with h5py.File(path, "w") as h5:
        h5["rows"] = np.arange(N)
    with pytest.raises(KnowledgeMapError, match="missing dataset 'embeddings' or 'rows'"):
        merge(tmp_path, [str(path)])


@pytest.mark.parametrize(("field", "value"), [
    ("model_sha256", "fa4ebe" + "0" * 58), ("prompt", "query: "), ("max_seq_length", 128), ("dtype", "bfloat16"),
    ("backend", "torch"), ("precision", "float32"), ("n_shards", 4)])
def test_shards_made_differently_are_not_merged(tmp_path, field, value):
    """Shards from other weights, prompt, length, dtype or engine: one line naming both shards and the field."""
    paths, data = make_shards(tmp_path)
    write_shard(paths[1], data[4:7], np.arange(4, 7), shard_attrs(**{field: value}))
    with pytest.raises(KnowledgeMapError) as info:
        merge(tmp_path, paths)
    message = str(info.value)
    assert message.startswith(f"merge: {paths[1]} and {paths[0]} were made differently ({field} ")
    assert "--forcerun" in message and "\n" not in message
    assert not (tmp_path / "embeddings.h5").exists()


def test_shards_from_another_corpus_are_not_merged(tmp_path):
    """A shard made from an older corpus file is refused even when its rows still fit."""
    paths, data = make_shards(tmp_path)
    write_shard(paths[2], data[7:], np.arange(7, 10), shard_attrs(corpus_sha256="d" * 64))
    with pytest.raises(KnowledgeMapError, match=r"shard-0002.h5: made from another corpus \(corpus_sha256 'dddd"):
        merge(tmp_path, paths)


def test_shards_that_do_not_know_their_model_files_are_not_merged(tmp_path):
    """Every shard of a hub model made before its files were on disk recorded '' and would have merged unbound."""
    paths, data = make_shards(tmp_path)
    for path, rows in zip(paths, (slice(0, 4), slice(4, 7), slice(7, 10))):
        write_shard(path, data[rows], np.arange(N)[rows], shard_attrs(model_sha256=""))
    with pytest.raises(KnowledgeMapError, match=r"shard-0000.h5: no digest of the model's files .*--forcerun"):
        merge(tmp_path, paths)


def test_shard_without_identity_record_is_refused(tmp_path):
    """A shard from before identity records cannot prove what made it."""
    paths, data = make_shards(tmp_path)
    write_shard(paths[0], data[:4], np.arange(4), {"model": "m"})
    with pytest.raises(KnowledgeMapError, match=r"shard-0000.h5: no 'model_sha256' in its identity record"):
        merge(tmp_path, paths)


def test_merged_matrix_carries_the_shards_identity(tmp_path):
    paths, _ = make_shards(tmp_path)
    with h5py.File(merge(tmp_path, paths)) as h5:
        assert h5.attrs["model_sha256"] == IDENTITY["model_sha256"] and h5.attrs["corpus_sha256"] == CORPUS_SHA


def test_contiguous_runs():
    assert contiguous_runs(np.array([0, 1, 2, 5, 6, 9])) == [(0, 3), (3, 5), (5, 6)]
    assert contiguous_runs(np.array([], dtype=np.int64)) == []


def test_each_shards_compile_record_reaches_the_engine_record(tmp_path):
    """Compiling is decided per shard (its work): the merged matrix keeps one record per shard, eager or not."""
    import json

    from knowledge_map.merge import engine_record, read_attrs

    data = matrix()
    compiled = {"used": True, "graphs": 2, "compile_seconds": 21.4}
    paths = []
    for index, ((start, stop), record) in enumerate(zip(((0, 4), (4, 7), (7, 10)), (compiled, None, compiled))):
        path = tmp_path / f"shard-{index:04d}.h5"
        attrs = shard_attrs(elapsed_seconds=1.0, compiled=json.dumps(record) if record else "")
        write_shard(str(path), data[start:stop], np.arange(start, stop), attrs)
        paths.append(str(path))
    assert engine_record(read_attrs(str(merge(tmp_path, paths))))["compiled"] == [compiled, None, compiled]
    eager_dir = tmp_path / "eager"
    eager_dir.mkdir()
    eager, _ = make_shards(eager_dir)
    assert engine_record(read_attrs(str(merge(eager_dir, eager))))["compiled"] is None


def test_a_shard_whose_compile_record_is_not_json_is_refused_in_one_line(tmp_path):
    """A damaged attribute names the shard and the attribute instead of a JSON traceback."""
    data = matrix()
    paths = []
    for index, (start, stop) in enumerate(((0, 4), (4, 7), (7, 10))):
        path = tmp_path / f"shard-{index:04d}.h5"
        attrs = shard_attrs(elapsed_seconds=1.0, compiled="{not json" if index == 1 else "")
        write_shard(str(path), data[start:stop], np.arange(start, stop), attrs)
        paths.append(str(path))
    with pytest.raises(KnowledgeMapError, match=r"shard-0001.h5: attribute 'compiled' is not JSON"):
        merge(tmp_path, paths)


def test_the_software_each_shard_was_made_with_is_recorded_and_a_difference_named(tmp_path, caplog):
    """Hosts with other library versions make shards that merge (same identity); the matrix says which came from which."""
    paths, data = make_shards(tmp_path)
    torch_1 = json.dumps({"python": "3.11.2", "torch": "2.13.0"})
    for path, rows, versions, device in zip(paths, (slice(0, 4), slice(4, 7), slice(7, 10)),
                                            (torch_1, torch_1, json.dumps({"python": "3.11.2", "torch": "2.12.1"})),
                                            ("cuda", "cuda", "cuda")):
        write_shard(path, data[rows], np.arange(N)[rows], shard_attrs(versions=versions, device=device))
    out = merge(tmp_path, paths)
    with h5py.File(out) as h5:
        groups = json.loads(h5.attrs["shard_software"])
    assert groups == [{"shards": [0, 1], "versions": json.loads(torch_1), "device": "cuda"},
                      {"shards": [2], "versions": {"python": "3.11.2", "torch": "2.12.1"}, "device": "cuda"}]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("merge: the shards were made with 2 sets of software (torch differ; shards 0,1 / 2)")
