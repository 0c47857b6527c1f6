"""CPU-dependent choices for llama.cpp: weight repacking is on unless the CPU has AMX."""

from __future__ import annotations

from configs import Settings
from server.llm.local.cpu import cpu_flags, use_extra_buffers
from server.llm.local.serve import ModelServer

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
AMX = AVX2 | {"avx512f", "amx_tile", "amx_int8", "amx_bf16"}


def test_auto_repacks_on_avx2_only_cpus():
    assert use_extra_buffers("auto", AVX2) is True
    # Measured slower with AVX-512; crashes with AMX; nothing to repack for without AVX2.
    assert use_extra_buffers("auto", AVX2 | {"avx512f", "avx512_vnni"}) is False
    assert use_extra_buffers("auto", AMX) is False
    assert use_extra_buffers("auto", frozenset({"sse4_2", "avx"})) is False
    # An explicit setting wins either way.
    assert use_extra_buffers(True, AMX) is True and use_extra_buffers(False, AVX2) is False


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags.__wrapped__(info) == frozenset({"fpu", "avx2", "amx_tile"})
    assert cpu_flags.__wrapped__(tmp_path / "missing") == frozenset()


def test_the_model_process_is_told_to_repack_only_where_it_is_safe(tmp_path):
    def command(setting):
        settings = Settings(paths={"data_root": tmp_path}, llm={"local": {"extra_buffers": setting}})
        return ModelServer(settings, tmp_path / "m.gguf", "m").command()

    assert "--extra-buffers" in command(True) and "--extra-buffers" not in command(False)
    expected = use_extra_buffers("auto")
    assert ("--extra-buffers" in command("auto")) is expected


def test_prompt_cache_lookup_decoding_logits_all_and_flash_attention_reach_the_model_process(tmp_path):
    def command(**local):
        settings = Settings(paths={"data_root": tmp_path}, llm={"local": local})
        return ModelServer(settings, tmp_path / "m.gguf", "m").command()

    plain = command()
    assert "--cache" not in plain and "--draft_model" not in plain
    # Only the last prompt token's logits unless asked for every token's.
    assert plain[plain.index("--logits_all") + 1] == "False"
    # llama.cpp's own default; llama_cpp.server's is off.
    assert plain[plain.index("--flash_attn") + 1] == "True"
    tuned = command(prompt_cache_mb=512, draft_lookup_tokens=8, logits_all=True, flash_attn=False)
    assert tuned[tuned.index("--logits_all") + 1] == "True"
    assert tuned[tuned.index("--flash_attn") + 1] == "False"
    assert tuned[tuned.index("--cache") + 1] == "True"
    assert tuned[tuned.index("--cache_size") + 1] == str(512 * 1024 * 1024)
    assert tuned[tuned.index("--draft_model") + 1] == "prompt-lookup-decoding"
    assert tuned[tuned.index("--draft_model_num_pred_tokens") + 1] == "8"


def test_auto_rewriting_follows_the_prompt_speed_the_model_server_measured():
    from server.chat.rewrite import rewrites_by_default

    auto = Settings(chat={"rewrite_query": "auto"})
    qwen = "qwen2.5-coder-1.5b"
    assert rewrites_by_default(auto, qwen, 33.0) is False  # a 2-core AVX2 EPYC: too slow
    assert rewrites_by_default(auto, qwen, 66.0) is False  # a 2-core AMX Xeon VM, whatever its flags say
    assert rewrites_by_default(auto, qwen, 217.0) is False  # an AVX-512 EPYC: answers did not gain for 2.4 s
    assert rewrites_by_default(auto, qwen, 1500.0) is True  # a GPU's speed
    assert rewrites_by_default(auto, qwen, None) is False  # not measured: assume the slow kind
    assert rewrites_by_default(auto, None, None) is True  # a model behind an API
    lower = Settings(chat={"rewrite_query": "auto", "rewrite_min_prompt_speed": 60})
    assert rewrites_by_default(lower, qwen, 66.0) is True
    assert rewrites_by_default(Settings(chat={"rewrite_query": False}), None, 500.0) is False
    assert rewrites_by_default(Settings(chat={"rewrite_query": True}), qwen, 10.0) is True
