"""The inspect, convert and site-index commands, run as a user would."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pyarrow.parquet as pq
from conftest import REPO


def cli(*args):
    return subprocess.run([sys.executable, "-m", "knowledge_map", *args], capture_output=True, text=True, cwd=REPO)


def test_inspect_the_embedded_default():
    result = cli("inspect", "--json")
    summary = json.loads(result.stdout)
    assert result.returncode == 0
    assert summary["records"] == 10033 and summary["problems"] == []
    assert summary["topics"]["Mathematics"] == 256
    assert summary["text_chars"]["min"] > 0


def test_inspect_lists_every_problem_and_fails(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id":"a","title":"","text":"x"}\n{"id":"a","title":"B","text":""}\n{"id":3.5,"title":"C","text":"z"}\n')
    result = cli("inspect", str(path))
    assert result.returncode == 1
    assert "problems: 4" in result.stdout
    assert "record 1 (id='a'): field 'id' duplicates record 0" in result.stdout
    assert "record 2 (id=3.5): field 'id' must be a string, got float" in result.stdout


def test_convert_a_trusted_pickle_to_parquet(tmp_path):
    records = [{"id": "1", "url": "u", "title": "T", "text": "x"}, {"id": "2", "url": "v", "title": "U", "text": "y"}]
    source, target = tmp_path / "wikipedia.pkl", tmp_path / "wikipedia.parquet"
    source.write_bytes(pickle.dumps(records))
    refused = cli("convert", str(source), str(target))
    assert refused.returncode == 2 and "refusing to unpickle" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not target.exists()
    assert cli("convert", "--allow-pickle", str(source), str(target)).returncode == 0
    assert pq.read_table(target).column("id").to_pylist() == ["1", "2"]


def test_convert_onto_a_folder_is_one_line_and_into_a_new_folder_works(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "title": "A", "text": "x"}\n')
    (tmp_path / "taken.parquet").mkdir()
    refused = cli("convert", str(source), str(tmp_path / "taken.parquet"))
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"knowledge-map error: {tmp_path}/taken.parquet: cannot write the Parquet file (Is a directory)"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    assert cli("convert", str(source), str(tmp_path / "new" / "out.parquet")).returncode == 0
    assert pq.read_table(tmp_path / "new" / "out.parquet").column("id").to_pylist() == ["a"]


def test_site_index_forgets_a_map_removed_by_hand(tmp_path):
    from knowledge_map.devtools.synthetic import write_synthetic_site

    data = tmp_path / "data"
    for map_id in ("model-a", "model-b"):
        write_synthetic_site(data, map_id, 40, n_questions=3, neighbours=10)
    (data / "model-a" / "manifest.json").unlink()
    result = cli("site-index", str(data))
    assert result.returncode == 0 and result.stdout.strip().endswith("index.json: model-b")
    assert [m["id"] for m in json.loads((data / "index.json").read_text())["maps"]] == ["model-b"]
