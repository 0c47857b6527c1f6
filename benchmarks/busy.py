"""KB chat while files are being added: time to first token idle and during a 50-file upload.

    python -m benchmarks.busy [--model qwen2.5-coder-1.5b] [--questions 8] [--files 50]
                              [--configs "before,no yielding,default"] [--quick]

The laws knowledge base is built first (benchmarks/everyday.py, embedding cache shared with it). One model
server (`kbchat llm serve`) runs for the whole run. For each configuration an API process starts on the same
data with an empty embedding cache of its own, so its upload really embeds: it answers the first questions
of the laws tuning set with nothing else running (idle), then starts an upload of ``--files`` text files (CMRC
2018 trial passages, one per file, written to the scratch folder) into a new knowledge base, and answers the
same questions again while the upload runs. "no yielding" is `kb.yield_to_chat: false`: indexing and the
answer share the cores. "before" also encodes in e5 batches of 32, as before.

Reported per configuration: TTFT and sources p50 idle and during the upload, their ratio, how many of the
questions were answered while the upload still ran, and the upload's wall time.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import datasets
from benchmarks.common import base_parser, builtin_gguf, free_port, print_table, require_shared_data, scratch_dir, \
    setup_logging, write_result
from benchmarks.everyday import EMBEDDING_CACHE, SETS, build_kb, load_questions
from benchmarks.everyday_answers import WARM_UP, ask
from benchmarks.kbtools import E5, open_manager
from benchmarks.procs import api_server, model_server
from configs.settings import KBSettings

logger = logging.getLogger("benchmarks.busy")

# "before": no yielding, and e5 batches of 32 texts (a question's encoding waited for a whole batch); the
# model's other settings are today's defaults.
E5_BATCH_32 = json.dumps({E5: KBSettings().embed_models[E5].model_copy(update={"batch_size": 32}).model_dump()})
CONFIGS: dict[str, dict[str, str]] = {
    "before": {"KB__YIELD_TO_CHAT": "false", "KB__EMBED_MODELS": E5_BATCH_32},
    "no yielding": {"KB__YIELD_TO_CHAT": "false"},
    "default": {},
}
KB = "laws_zh"


def _p50(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def _upload(base_url: str, kb: str, files: list[Path], out: dict[str, Any]) -> None:
    """Add the files in one request, as the web UI does; the outcome and wall time go into ``out``."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=3600.0, trust_env=False) as client:
        assert client.post("/kbs", json={"name": kb}).status_code == 201
        response = client.post(f"/kbs/{kb}/files", files=[("files", (f.name, f.read_bytes())) for f in files])
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["status"] = response.status_code
    if response.status_code == 200:
        out["indexed"] = sum(r["status"] == "indexed" for r in response.json()["results"])


def run(model: str, n_questions: int, n_files: int, configs: list[str], work: Path, model_dir: Path
        ) -> dict[str, Any]:
    data_root = work / "data"
    with open_manager(data_root, cache_dir=EMBEDDING_CACHE) as manager:
        build = build_kb(manager, SETS[KB])
    questions = load_questions(SETS[KB], "tuning")[:n_questions]
    files = []
    for i, passage in enumerate(datasets.load("cmrc-trial").passages[:n_files]):
        path = work / "upload" / f"passage-{i:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(passage, encoding="utf-8")
        files.append(path)
    port = free_port()
    # No query-vector cache: each question asked during the upload is encoded again, as a new one would be.
    env = {"KBCHAT_PATHS__MODEL_DIR": str(model_dir), "KBCHAT_LLM__LOCAL__PORT": str(port),
           "KBCHAT_LLM__DEFAULT_MODEL": model, "KBCHAT_PATHS__DATA_ROOT": str(data_root), "KBCHAT_KB__QUERY_CACHE": "0"}
    serve = model_server(model, port, work, env)
    results: dict[str, Any] = {}
    table = []
    with serve:
        for config in configs:
            config_env = {**env, "KBCHAT_PATHS__CACHE_DIR": str(work / f"cache-{config.replace(' ', '-')}"),
                          **{f"KBCHAT_{k}": v for k, v in CONFIGS[config].items()}}
            with api_server(data_root, work, config_env) as api, \
                    httpx.Client(base_url=api.base_url, timeout=900.0, trust_env=False) as client:
                ask(client, KB, WARM_UP, model)
                idle = [ask(client, KB, q, model) for q in questions]
                upload: dict[str, Any] = {}
                uploading = threading.Thread(target=_upload, args=(api.base_url, f"upload-{len(results)}", files,
                                                                   upload))
                uploading.start()
                time.sleep(2.0)  # the upload is being read and split; its embedding starts
                busy = []
                for q in questions:
                    row = ask(client, KB, q, model)
                    row["upload_running"] = uploading.is_alive()
                    busy.append(row)
                    logger.info("%s: ttft %.1f s (upload running: %s)", config, row.get("ttft_s") or -1,
                                row["upload_running"])
                uploading.join()
            summary = {
                "ttft_s_p50_idle": _p50(idle, "ttft_s"), "ttft_s_p50_upload": _p50(busy, "ttft_s"),
                "sources_s_p50_idle": _p50(idle, "sources_s"), "sources_s_p50_upload": _p50(busy, "sources_s"),
                "total_s_p50_idle": _p50(idle, "total_s"), "total_s_p50_upload": _p50(busy, "total_s"),
                "answered_during_upload": sum(r["upload_running"] for r in busy), "upload": upload,
            }
            ratio = (summary["ttft_s_p50_upload"] / summary["ttft_s_p50_idle"]
                     if summary["ttft_s_p50_idle"] and summary["ttft_s_p50_upload"] else None)
            summary["ttft_ratio"] = round(ratio, 2) if ratio else None
            results[config] = {"settings": CONFIGS[config], "summary": summary, "idle": idle, "during_upload": busy}
            table.append([config, len(questions), summary["sources_s_p50_idle"], summary["sources_s_p50_upload"],
                          summary["ttft_s_p50_idle"], summary["ttft_s_p50_upload"], summary["ttft_ratio"],
                          f"{summary['answered_during_upload']}/{len(busy)}", upload.get("seconds"),
                          f"{upload.get('indexed')}/{len(files)}"])
    tables = print_table(
        f"KB chat during a {len(files)}-file upload ({model}, laws_zh tuning questions)",
        ["config", "questions", "sources s idle", "sources s upload", "TTFT s idle", "TTFT s upload",
         "TTFT ratio", "answered during upload", "upload s", "indexed"], table)
    return {"model": model, "build": build, "configs": {c: CONFIGS[c] for c in configs}, "results": results,
            "tables": tables}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="built-in chat model (default: the setting)")
    parser.add_argument("--questions", type=int, default=8, help="questions asked idle and during the upload")
    parser.add_argument("--files", type=int, default=50, help="files in the upload")
    parser.add_argument("--configs", default="before,no yielding,default", help="comma-separated configurations")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    from configs import load_settings

    settings = load_settings()
    model = args.model or settings.llm.default_model
    builtin_gguf(model, settings)
    n_questions, n_files = (2, 10) if args.quick else (args.questions, args.files)
    with scratch_dir("busy", args.keep) as work:
        result = run(model, n_questions, n_files, args.configs.split(","), work, settings.paths.model_dir)
    write_result("busy", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
