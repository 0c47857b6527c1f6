"""E-mail loaders: RFC 822 messages (.eml) through the standard library, Outlook .msg through extract-msg."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from server.knowledge_base.types import LoadedDoc, LoadOptions, loaded_doc

_HEADERS = ("Subject", "From", "To", "Cc", "Date")


def load_eml(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """A message as one LoadedDoc: its headers, then the plain-text body (or the HTML body's text)."""
    from server.knowledge_base.loaders import UnreadableFile

    with open(path, "rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not any(message.get(h) for h in ("From", "Subject", "Date")):
        raise UnreadableFile(source, "not an e-mail message (no From, Subject or Date header)")
    headers = [f"{name}: {message[name]}" for name in _HEADERS if message.get(name)]
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        content = body.get_content()
        text = _html_text(content) if body.get_content_type() == "text/html" else str(content)
    attachments = [part.get_filename() for part in message.iter_attachments() if part.get_filename()]
    if attachments:
        headers.append(f"Attachments: {', '.join(str(a) for a in attachments)}")
    subject = str(message["Subject"]) if message.get("Subject") else None
    return [loaded_doc("\n".join(headers) + "\n\n" + text.strip(), source, subject)]


def load_msg(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An Outlook message as one LoadedDoc: headers, then the plain-text body (or the HTML body's text)."""
    import extract_msg

    from server.knowledge_base.loaders import UnreadableFile
    from server.knowledge_base.loaders.legacy import OLE_MAGIC

    with open(path, "rb") as handle:
        if handle.read(len(OLE_MAGIC)) != OLE_MAGIC:
            raise UnreadableFile(source, "not a valid msg file (not an Outlook OLE2 message)")
    message = extract_msg.Message(str(path), delayAttachments=True)
    try:
        fields = {"Subject": message.subject, "From": message.sender, "To": message.to, "Cc": message.cc,
                  "Date": message.date}
        headers = [f"{name}: {value}" for name, value in fields.items() if value]
        body = message.body or ""
        if not body.strip() and message.htmlBody:
            html = message.htmlBody
            body = _html_text(html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html))
        subject = str(message.subject) if message.subject else None
    finally:
        message.close()
    return [loaded_doc("\n".join(headers) + "\n\n" + str(body).strip(), source, subject)]


def _html_text(html: str) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "lxml").get_text("\n", strip=True)
