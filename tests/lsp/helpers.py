"""Helpers for the tests: opening documents, waiting for diagnostics,
positions of text in a document."""

import asyncio
import pathlib
import time
import uuid

from lsprotocol import types
from pytest_lsp import LanguageClient


def position(text: str, needle: str, shift: int = 0, nth: int = 0) -> types.Position:
    """The LSP position (UTF-16 columns) of the `nth` `needle` in `text`, plus `shift` characters."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += shift
    line = text.count("\n", 0, at)
    line_start = text.rfind("\n", 0, at) + 1
    column = len(text[line_start:at].encode("utf-16-le")) // 2
    return types.Position(line=line, character=column)


def text_range(text: str, needle: str, nth: int = 0) -> types.Range:
    start = position(text, needle, 0, nth)
    end = position(text, needle, len(needle), nth)
    return types.Range(start=start, end=end)


async def published(client: LanguageClient, uri: str, version: int | None = None, after: int = 0, timeout: float = 20.0):
    """The first diagnostics published for `uri` (at `version`, if given)
    among the notifications from index `after` on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for params in client.published[after:]:
            if params.uri == uri and (version is None or params.version == version):
                return list(params.diagnostics)
        await asyncio.sleep(0.005)
    raise TimeoutError(f"no diagnostics for {uri} (version {version}) within {timeout}s")


def open_document(client: LanguageClient, path: pathlib.Path, text: str, write: bool = True, version: int = 1) -> str:
    """Opens `path` in the server (writing it to disk first, as an editor's file is), returning its URI."""
    if write:
        path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="btr", version=version, text=text)
        )
    )
    return uri


def change_document(client: LanguageClient, uri: str, version: int, text: str, range: types.Range | None = None) -> None:
    if range is None:
        change = types.TextDocumentContentChangeWholeDocument(text=text)
    else:
        change = types.TextDocumentContentChangePartial(range=range, text=text)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[change],
        )
    )


async def raw_request(client: LanguageClient, method: str, params, timeout: float = 10.0):
    """Sends a request exactly as given (a plain dict, possibly malformed),
    bypassing pygls' typed messages and pytest-lsp's checks; returns the result
    or raises the `JsonRpcException` of the error response."""
    msg_id = f"raw-{uuid.uuid4()}"
    future = asyncio.get_running_loop().create_future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(future, timeout)


def raw_notify(client: LanguageClient, method: str, params) -> None:
    client.protocol._send_data({"jsonrpc": "2.0", "method": method, "params": params})
