"""Every user-facing string of the WebUI, in Chinese (zh) and English (en)."""

from __future__ import annotations

import json
from typing import Any

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "en"

# key -> (zh, en); str.format placeholders are filled by translate().
TEXTS: dict[str, tuple[str, str]] = {
    # app shell
    "app.language": ("界面语言", "Language"),
    "app.page_chat": ("对话", "Chat"),
    "app.page_kb": ("知识库", "Knowledge bases"),
    "app.api_at": ("API：{url}", "API: {url}"),
    # common
    "common.save": ("保存", "Save"),
    "common.cancel": ("取消", "Cancel"),
    "common.confirm_delete": ("确认删除", "Yes, delete"),
    "common.retry": ("重试", "Try again"),
    # modes
    "mode.llm": ("大模型对话", "LLM chat"),
    "mode.kb": ("知识库问答", "Knowledge base"),
    "mode.search": ("搜索引擎问答", "Web search"),
    "mode.agent": ("智能体", "Agent"),
    "search_mode.vector": ("向量", "Vector"),
    "search_mode.bm25": ("BM25 关键词", "BM25 keywords"),
    "search_mode.hybrid": ("混合", "Hybrid"),
    # chat options
    "opt.title": ("对话设置", "Chat settings"),
    "opt.mode": ("对话模式", "Mode"),
    "opt.kb": ("知识库", "Knowledge base"),
    "opt.no_kb": ("还没有知识库：请先在“知识库”页面创建一个并上传文件。",
                  "No knowledge base yet: create one and upload files on the Knowledge bases page."),
    "opt.kb_gone": ("知识库“{name}”已不存在（可能已被删除），请选择其他知识库。",
                    "The knowledge base “{name}” no longer exists (deleted?); pick another one."),
    "opt.top_k": ("匹配条数", "Chunks to retrieve"),
    "opt.threshold": ("相关度阈值", "Score threshold"),
    "opt.threshold_help": ("只使用得分不低于该值的片段（0 到 1，越高越严格）。",
                           "Only use chunks scoring at least this much (0 to 1; higher is stricter)."),
    "opt.search_mode": ("检索方式", "Retrieval mode"),
    "opt.engine": ("搜索引擎", "Search engine"),
    "opt.result_count": ("搜索结果数", "Search results"),
    "opt.model_section": ("模型", "Model"),
    "opt.model": ("模型", "Model"),
    "opt.no_kb_files": ("还没有知识库。可以先在下面给本对话添加文件，或在知识库页面新建知识库。",
                        "No knowledge base yet. Add files to this conversation below, or create a knowledge base on "
                        "the knowledge-base page."),
    "conv_files.title": ("本对话的文件（{n}）", "Files in this conversation ({n})"),
    "conv_files.help": ("拖入的文件只属于当前对话，提问时会一并检索；删除对话时一起删除。",
                   "Files dropped here belong to this conversation only and are searched with every question; "
                   "they are deleted with the conversation."),
    "conv_files.pick": ("选择文件", "Choose files"),
    "conv_files.add": ("添加到对话", "Add to the conversation"),
    "conv_files.added": ("已添加 {n} 个文件。", "{n} file(s) added."),
    "conv_files.failed": ("{name} 未能添加：{error}", "{name} was not added: {error}"),
    "opt.kb_more": ("同时检索", "Also search"),
    "opt.rewrite": ("先改写问题再检索", "Rewrite the question before searching"),
    "opt.rewrite_help": ("让模型先按文档的说法写一段假设答案，一起用来检索：口语化的问题更容易找到对的段落，但要多等一次生成。",
                         "The model first writes a short answer in the documents' words and the search uses it too: "
                         "everyday questions find the right passage more often, after one more short generation."),
    "opt.refuse": ("资料无关时不让模型作答", "Decline when no passage is close"),
    "opt.refuse_help": ("找到的资料都与问题相距较远时，直接说明知识库中似乎没有答案，不让模型编造；关掉后模型总会作答。",
                        "When every passage found is far from the question, say the knowledge base does not seem to "
                        "answer it instead of letting the model make something up; off, the model always answers."),
    "opt.kb_more_placeholder": ("选择其他知识库", "Choose knowledge bases"),
    "opt.kb_more_help": ("在多个知识库中一起检索，按排名合并结果。", "Search these knowledge bases too; their results are merged by rank."),
    "opt.temperature": ("温度", "Temperature"),
    "opt.history_turns": ("历史对话轮数", "History turns"),
    "opt.history_help": ("随问题一起发送给模型的最近几轮对话。", "How many recent turns are sent with the question."),
    "opt.template": ("提示词模板", "Prompt template"),
    "opt.template_default": ("（该模式的默认模板）", "(default for this mode)"),
    "opt.bilingual": ("中英双语回答", "Bilingual answer"),
    "opt.bilingual_help": ("回答同时给出中文和英文。", "Answer in both Chinese and English."),
    # conversations
    "conv.title": ("会话", "Conversations"),
    "conv.new": ("新建会话", "New conversation"),
    "conv.none": ("还没有会话，发送第一条消息即可开始。", "No conversations yet: send a message to start one."),
    "conv.untitled": ("未命名会话", "Untitled conversation"),
    "conv.rename": ("重命名", "Rename"),
    "conv.new_title": ("新标题", "New title"),
    "conv.rename_empty": ("标题不能为空。", "The title cannot be empty."),
    "conv.renamed": ("会话已重命名。", "Conversation renamed."),
    "conv.rename_failed": ("重命名失败", "Could not rename"),
    "conv.delete": ("删除", "Delete"),
    "conv.confirm_delete": ("确定删除会话“{title}”及其全部消息吗？此操作无法撤销。",
                            "Delete the conversation “{title}” and all its messages? This cannot be undone."),
    "conv.deleted": ("会话已删除。", "Conversation deleted."),
    "conv.delete_failed": ("删除失败", "Could not delete"),
    "conv.list_failed": ("无法加载会话列表", "Could not load conversations"),
    "conv.missing": ("找不到这个会话（可能已被删除），已为你打开一个新会话。",
                     "That conversation no longer exists (it may have been deleted); a new one is open."),
    # chat page
    "chat.title": (":material/chat: 对话", ":material/chat: Chat"),
    "chat.new_conversation": ("新会话", "New conversation"),
    "chat.export": ("导出 Markdown", "Export Markdown"),
    "chat.clear": ("清空", "Clear"),
    "chat.clear_help": ("开始一个新的空白会话；当前会话仍保留在左侧列表中。",
                        "Start a new, empty conversation; the current one stays in the list on the left."),
    "chat.stop": ("停止", "Stop"),
    "chat.stop_help": ("停止生成，已生成的部分会保留。", "Stop the answer; what was written so far stays."),
    "chat.stopped": ("已停止生成，以上是已生成的部分。", "Stopped: above is the part written before you stopped it."),
    "chat.stopped_empty": ("已在回答开始前停止。", "Stopped before the answer began."),
    "chat.thinking": ("正在思考…", "Thinking…"),
    "chat.searching": ("正在检索知识库…", "Searching…"),
    "chat.status.waiting": ("模型正忙：前面还有 {n} 个问题，已等待 {s} 秒",
                            "The model is busy: {n} ahead of you, waiting {s} s"),
    "chat.status.reading": ("模型正在阅读（{tokens} 个词元），{s} 秒", "The model is reading ({tokens} tokens), {s} s"),
    "chat.status.rewriting": ("正在改写问题以便检索，{s} 秒", "Rewriting the question for the search, {s} s"),
    "chat.status.ranking": ("正在为检索到的资料重新排序，{s} 秒", "Ranking the passages found, {s} s"),
    "chat.status.weighing": ("正在挑出最能回答问题的句子，{s} 秒", "Picking the sentences that answer best, {s} s"),
    "chat.status.reading_plain": ("模型正在阅读，{s} 秒", "The model is reading, {s} s"),
    "chat.status.first": ("{s} 秒后开始回答", "Answer started after {s} s"),
    "chat.status.writing": ("正在回答 · 每秒 {rate} 个词元", "Writing · {rate} tokens/s"),
    "chat.cut_off": ("回答在完成前中断了。", "The answer ended before it was complete."),
    "chat.placeholder.llm": ("输入问题，按 Enter 发送", "Ask anything, press Enter to send"),
    "chat.placeholder.kb": ("向知识库提问，按 Enter 发送", "Ask your knowledge base, press Enter to send"),
    "chat.placeholder.search": ("输入要联网搜索的问题", "Ask a question to search the web for"),
    "chat.placeholder.agent": ("描述任务，智能体会调用工具完成", "Describe a task; the agent will use tools"),
    "chat.welcome.llm": ("你好！直接提问即可与模型对话。左侧可以切换模式、模型和参数。",
                         "Hello! Ask a question to chat with the model. Switch mode, model and options on the left."),
    "chat.welcome.kb": ("知识库问答：回答基于所选知识库中的文档，并在下方列出出处。",
                        "Knowledge-base mode: answers are grounded in the chosen knowledge base, with sources."),
    "chat.welcome.search": ("搜索引擎问答：先联网搜索，再根据搜索结果回答，并附上链接。",
                            "Web-search mode: the web is searched first and the answer cites the pages found."),
    "chat.welcome.agent": ("智能体模式：模型可以使用计算器、知识库检索、网页搜索等工具，每一步都会显示出来。",
                           "Agent mode: the model may use tools (calculator, knowledge search, web search); "
                           "each step is shown."),
    # messages
    "msg.sources": ("出处（{n}）", "Sources ({n})"),
    "msg.conversation_file": ("本对话的文件", "a file of this conversation"),
    "msg.score": ("相关度", "score"),
    "msg.kb": ("知识库", "KB"),
    "msg.open": ("打开", "Open"),
    "msg.download": ("下载", "Download"),
    "msg.tools": ("智能体步骤（{n}）", "Agent steps ({n})"),
    "msg.tool_input": ("输入", "Input"),
    "msg.tool_output": ("输出", "Output"),
    "msg.incomplete": ("未完成", "incomplete"),
    "msg.ask_anyway": ("仍然让模型回答", "Ask the model anyway"),
    "msg.ask_anyway_help": ("用找到的资料回答这个问题，尽管这些资料似乎并不回答它。模型可能会答错，请对照出处。",
                            "Answer this question from the passages found, although they seem not to answer it. "
                            "The model may get it wrong: check the sources."),
    # feedback
    "fb.reason_button": ("原因", "Reason"),
    "fb.reason": ("反馈原因（可选）", "Reason (optional)"),
    "fb.reason_placeholder": ("哪里好，哪里不好？", "What was good or wrong?"),
    "fb.send": ("提交反馈", "Send feedback"),
    "fb.saved": ("感谢反馈！", "Thanks for the feedback!"),
    "fb.failed": ("反馈提交失败", "Could not save the feedback"),
    "fb.given_up": ("你觉得这个回答有帮助", "You found this answer helpful"),
    "fb.given_down": ("你觉得这个回答没有帮助", "You found this answer unhelpful"),
    # knowledge bases
    "kb.title": (":material/library_books: 知识库", ":material/library_books: Knowledge bases"),
    "kb.pick": ("选择知识库", "Knowledge base"),
    "kb.new": ("新建知识库", "New knowledge base"),
    "kb.empty": ("还没有知识库。创建一个，然后上传文档，就可以在对话页面基于文档提问。",
                 "No knowledge base yet. Create one, upload documents, then ask about them on the Chat page."),
    "kb.create_title": ("新建知识库", "Create a knowledge base"),
    "kb.name": ("名称", "Name"),
    "kb.name_help": ("字母、数字、中文、-、_ 均可，不能包含路径符号。",
                     "Letters, digits, CJK, '-' and '_'; no path separators."),
    "kb.name_required": ("请填写知识库名称。", "Please enter a name."),
    "kb.description": ("简介（可选，智能体据此选择知识库）", "Description (optional; the agent uses it to pick a KB)"),
    "kb.embed_model": ("嵌入模型", "Embedding model"),
    "kb.vector_store": ("向量库", "Vector store"),
    "kb.create": ("创建", "Create"),
    "kb.created": ("已创建知识库 {name}。", "Knowledge base {name} created."),
    "kb.files": ("文件", "Files"),
    "kb.created_at": ("创建时间", "Created"),
    "kb.chunks": ("片段", "Chunks"),
    "kb.tab_files": (":material/description: 文件", ":material/description: Files"),
    "kb.tab_chunks": (":material/extension: 片段", ":material/extension: Chunks"),
    "kb.tab_search": (":material/manage_search: 检索测试", ":material/manage_search: Retrieval test"),
    "kb.tab_eval": (":material/fact_check: 检索评测", ":material/fact_check: Evaluation"),
    "eval.help": ("上传你自己的问题（JSON Lines，每行一个问题，写明答案所在的文件 file 和/或原文片段 evidence），"
                  "看看每种检索方式有多少次把答案放进前 1/3/5 条。",
                  "Upload your own questions (JSON Lines: one per line, with the file that answers it and/or a "
                  "piece of its text as evidence) and see how often each search mode puts the answer in the top 1/3/5."),
    "eval.file": ("问题文件（.jsonl）", "Question file (.jsonl)"),
    "eval.run": ("开始评测", "Evaluate"),
    "eval.running": ("正在逐个检索问题…", "Searching every question…"),
    "eval.rewrite": ("同时用对话模型改写问题再检索", "Also search with the chat model's rewrite of each question"),
    "eval.rewrite_help": ("对话模型先为每个问题写一段假设的回答，再用问题加这段回答检索（即知识库对话的“改写问题”）。"
                          "每个问题要多花几秒，最多 200 个问题。",
                          "The chat model first writes a hypothetical answer to each question, and the question "
                          "plus that answer is searched (KB chat's query rewriting). It adds a few seconds per "
                          "question; 200 questions at most."),
    "eval.running_rewrite": ("正在让模型改写每个问题并检索，每个问题需要几秒…",
                             "The model is rewriting every question, a few seconds each, then searching…"),
    "eval.rewrite_short": ("改写", "rewrite"),
    "eval.rewrite_s": ("改写耗时中位数（秒）", "Median rewrite time (s)"),
    "eval.no_file": ("请先选择一个问题文件。", "Choose a question file first."),
    "eval.not_utf8": ("问题文件不是 UTF-8 编码的文本。", "The question file is not UTF-8 text."),
    "eval.mode": ("检索方式", "Search mode"),
    "eval.questions": ("问题数", "Questions"),
    "eval.p50": ("检索耗时中位数（毫秒）", "Median search time (ms)"),
    "eval.missed": ("前 5 条未命中的问题", "Missed in the top 5"),
    "kb.danger": ("维护与删除", "Maintenance and deletion"),
    "kb.delete": ("删除知识库", "Delete knowledge base"),
    "kb.confirm_delete": ("确定删除知识库“{name}”及其全部文件和索引吗？此操作无法撤销。",
                          "Delete the knowledge base “{name}” with all its files and index? This cannot be undone."),
    "kb.deleted": ("已删除知识库 {name}。", "Knowledge base {name} deleted."),
    "kb.delete_failed": ("删除失败", "Could not delete"),
    # upload
    "up.title": ("上传文件", "Upload files"),
    "up.files": ("选择文件（可多选）", "Files (pick several at once)"),
    "up.files_help": ("支持 PDF、Word、Excel、PowerPoint、EPUB、HTML、Markdown、TXT、CSV、JSON 等。",
                      "PDF, Word, Excel, PowerPoint, EPUB, HTML, Markdown, TXT, CSV, JSON and more."),
    "up.chunk_size": ("片段长度", "Chunk size"),
    "up.chunk_overlap": ("片段重叠", "Chunk overlap"),
    "up.override": ("覆盖同名文件", "Replace files with the same name"),
    "up.override_help": ("不勾选时，已存在的同名文件会被跳过。", "When off, files that already exist are skipped."),
    "up.to_vs": ("立即建立索引", "Index now"),
    "up.to_vs_help": ("不勾选则只保存文件，稍后可重新入库。", "When off, files are only stored; index them later."),
    "up.start": ("上传并入库", "Upload and index"),
    "up.overlap_too_big": ("片段重叠必须小于片段长度。", "Chunk overlap must be smaller than chunk size."),
    "up.overall": ("总进度：{done}/{total} 个文件", "Overall: {done} of {total} files"),
    "up.waiting": ("等待中", "waiting"),
    "up.reading": ("读取与切分", "reading and splitting"),
    "up.paused": ("先让对话回答完，随后继续", "paused while a chat answer is written"),
    "up.embedding": ("向量化 {done}/{total} 个片段", "embedding {done}/{total} chunks"),
    "up.ocr_pages": ("文字识别 第 {done}/{total} 页", "OCR page {done}/{total}"),
    "up.ocr": ("文字识别 (OCR)", "OCR"),
    "up.ocr_help": ("识别图片、扫描版 PDF 页面和文档内图片中的文字（离线）。关闭后图片文件会被拒绝。",
                    "Read text in images, scanned PDF pages and pictures inside documents (offline). "
                    "When off, image files are refused."),
    "up.file_done": ("完成", "done"),
    "up.saving": ("正在保存知识库…", "Saving the knowledge base…"),
    "up.no_result": ("上传结束，但没有收到结果。请刷新文件列表查看。",
                     "The upload ended without a result; refresh the file list to check."),
    "up.summary": ("{n} 个文件已入库，共 {chunks} 个片段。", "{n} file(s) added, {chunks} chunks in total."),
    "up.skipped": ("已存在，已跳过", "already present, skipped"),
    # Streamlit's own file-uploader strings, replaced by uploader_style() in other languages than English.
    "uploader.button": ("上传", "Upload"),
    "uploader.drop": ("拖放文件到这里，每个文件不超过 {mb} MB", "{mb}MB per file"),
    "uploader.dragging": ("松开鼠标即可添加文件", "Drag and drop files here"),
    "status.indexed": ("已索引", "indexed"),
    "status.stored": ("仅保存", "stored only"),
    "status.error": ("出错", "error"),
    "status.pending": ("处理中", "pending"),
    "status.skipped": ("已跳过", "skipped"),
    # file table
    "files.title": ("文件列表", "Files"),
    "files.none": ("这个知识库还没有文件，请在上方上传。", "This knowledge base has no files yet: upload some above."),
    "files.col_name": ("文件", "File"),
    "files.col_size": ("大小", "Size"),
    "files.col_chunks": ("片段数", "Chunks"),
    "files.col_status": ("状态", "Status"),
    "files.col_error": ("错误", "Error"),
    "files.col_loader": ("解析器", "Loader"),
    "files.col_modified": ("修改时间", "Modified"),
    "files.pick": ("对文件操作", "Act on file"),
    "files.reingest": ("重新入库", "Re-ingest"),
    "files.reingested": ("{name} 已重新入库（{chunks} 个片段）。", "{name} re-ingested ({chunks} chunks)."),
    "files.unindex": ("从索引移除", "Remove from index"),
    "files.unindex_help": ("从检索中移除，但保留磁盘上的文件。", "Stop searching it but keep the file on disk."),
    "files.unindexed": ("{name} 已从索引中移除。", "{name} removed from the index."),
    "files.delete": ("从磁盘删除", "Delete from disk"),
    "files.confirm_delete": ("确定从索引和磁盘上删除“{name}”吗？", "Delete “{name}” from the index and from disk?"),
    "files.deleted": ("{name} 已删除。", "{name} deleted."),
    "files.download": ("下载", "Download"),
    # chunks
    "chunks.no_files": ("还没有已索引的文件。", "No indexed files yet."),
    "chunks.file": ("文件", "File"),
    "chunks.count": ("共 {n} 个片段；修改文本后点击保存会重新向量化。",
                     "{n} chunks; edit a text and save to re-embed it."),
    "chunks.page": ("页码", "Page"),
    "chunks.text": ("片段内容", "Chunk text"),
    "chunks.save_help": ("保存并重新计算向量", "Save and re-embed"),
    "chunks.saved": ("片段已保存并重新向量化。", "Chunk saved and re-embedded."),
    "chunks.save_failed": ("保存失败", "Could not save"),
    "chunks.empty": ("片段内容不能为空。", "A chunk cannot be empty."),
    "chunks.delete": ("删除", "Delete"),
    "chunks.confirm_delete": ("确定删除这个片段吗？", "Delete this chunk?"),
    "chunks.deleted": ("片段已删除。", "Chunk deleted."),
    "chunks.delete_failed": ("删除失败", "Could not delete"),
    # retrieval test
    "search.query": ("测试问题", "Test query"),
    "search.placeholder": ("输入一个问题，比较三种检索方式的结果", "Type a question to compare the retrieval modes"),
    "search.use_threshold": ("应用相关度阈值", "Apply the score threshold"),
    "search.use_threshold_help": ("取消勾选可查看所有候选片段。", "Untick to see every candidate."),
    "search.run": ("检索", "Search"),
    "search.hint": ("结果会按向量、BM25、混合三种方式并排显示。", "Results appear side by side for each retrieval mode."),
    "search.no_hits": ("没有匹配的片段。", "No matching chunks."),
    # rebuild
    "rebuild.help": ("根据磁盘上的文件重新生成整个向量库（更换切分参数或索引损坏时使用）。",
                     "Recreate the whole vector store from the files on disk "
                     "(after changing chunking, or if the index is damaged)."),
    "rebuild.start": ("重建向量库", "Rebuild vector store"),
    "rebuild.confirm": ("重建“{name}”期间检索结果可能不完整，确定继续吗？",
                        "Searches in “{name}” may be incomplete while it rebuilds. Continue?"),
    "rebuild.confirm_button": ("开始重建", "Rebuild now"),
    "rebuild.starting": ("正在开始…", "Starting…"),
    "rebuild.progress": ("已处理 {done}/{total} 个文件", "{done} of {total} files processed"),
    "rebuild.saving": ("正在保存重建的向量库…", "Saving the rebuilt vector store…"),
    "rebuild.done": ("向量库重建完成。", "Vector store rebuilt."),
    # errors, by API error code
    "err.generic": ("出错了", "Something went wrong"),
    "err.api_unreachable": ("无法连接到 kbchat API。请确认 API 已启动（kbchat start --api）。",
                            "The kbchat API cannot be reached. Is it running (kbchat start --api)?"),
    "err.api_timeout": ("API 长时间没有响应。", "The API took too long to answer."),
    "err.stream_interrupted": ("回答中途断开了。", "The answer was cut off."),
    "err.bad_stream": ("API 返回了无法识别的数据。", "The API sent data the page cannot read."),
    "err.bad_response": ("API 返回了无法识别的数据。", "The API sent data the page cannot read."),
    "err.unauthorized": ("API 拒绝访问：请检查 API 密钥（KBCHAT_SERVER__API_KEY）。",
                         "The API refused access: check the API key (KBCHAT_SERVER__API_KEY)."),
    "err.not_found": ("没有找到。", "Not found."),
    "err.conflict": ("已存在同名项目。", "Something with that name already exists."),
    "err.invalid_input": ("输入有误。", "The input is not valid."),
    "err.payload_too_large": ("文件太大。", "The file is too large."),
    "err.unsupported_media_type": ("不支持的文件类型。", "This file type is not supported."),
    "err.service_unavailable": ("服务暂时不可用。", "The service is temporarily unavailable."),
    "err.upstream_error": ("外部服务出错。", "An outside service failed."),
    "err.llm_error": ("模型出错了。", "The model failed."),
    "err.llm_unreachable": ("无法连接到模型服务。请确认模型已启动（kbchat llm serve）或检查模型地址。",
                            "The model server cannot be reached. Is it running (kbchat llm serve)?"),
    "err.llm_timeout": ("模型响应超时。", "The model took too long to answer."),
    "err.llm_bad_response": ("模型返回了无法识别的内容。", "The model sent an answer that could not be read."),
    "err.llm_overloaded": ("模型正忙，请稍后再试。", "The model is busy; please try again shortly."),
    "err.search_error": ("联网搜索失败（可能处于离线状态）。", "The web search failed (offline?)."),
    "err.search_unavailable": ("联网搜索不可用（可能处于离线状态）。", "Web search is unavailable (offline?)."),
    "err.kb_not_found": ("知识库不存在。", "That knowledge base does not exist."),
}


def translate(lang: str, key: str, default: str | None = None, **kwargs: Any) -> str:
    """The text for ``key`` in ``lang`` (English when unknown), with ``{placeholders}`` filled."""
    pair = TEXTS.get(key)
    if pair is None:
        if default is not None:
            return default
        return key
    text = pair[0] if lang == "zh" else pair[1]
    return text.format(**kwargs) if kwargs else text


def uploader_style(lang: str, max_upload_mb: int) -> str:
    """CSS that shows Streamlit's file-uploader texts ("Upload", "200MB per file", "Drag and drop files here")
    in ``lang``.

    Streamlit draws them in English whatever the page's language; the English ones are left as they are."""
    if lang == "en":
        return ""
    button = json.dumps(translate(lang, "uploader.button"), ensure_ascii=False)
    drop = json.dumps(translate(lang, "uploader.drop", mb=max_upload_mb), ensure_ascii=False)
    dragging = json.dumps(translate(lang, "uploader.dragging"), ensure_ascii=False)
    zone = '[data-testid="stFileUploaderDropzone"]'
    return (
        f'{zone} button [data-testid="stMarkdownContainer"] p {{ display: none; }}\n'
        f'{zone} button [data-testid="stMarkdownContainer"]::after {{ content: {button}; }}\n'
        # what the zone says while files are dragged over it: a box holding one line (not the chosen files' chips)
        f'{zone} > div:not([data-testid]) > span:only-child {{ display: none; }}\n'
        f'{zone} > div:not([data-testid]):has(> span:only-child)::after {{ content: {dragging}; }}\n'
        f'[data-testid="stFileUploaderDropzoneInstructions"] > div > * {{ display: none; }}\n'
        f'[data-testid="stFileUploaderDropzoneInstructions"] > div::after {{ content: {drop}; font-size: 0.875rem; }}\n'
    )


def pick_language(requested: str | None, browser_locale: str | None) -> str:
    """The UI language: an explicit choice, else the browser's, else English."""
    if requested in LANGUAGES:
        return requested
    if browser_locale and browser_locale.lower().startswith("zh"):
        return "zh"
    return DEFAULT_LANGUAGE
