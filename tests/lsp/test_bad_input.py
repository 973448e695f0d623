"""Bad input to `betrace lsp`: requests before `initialize` and after
`shutdown`, unknown methods and documents, malformed parameters, positions
inside characters or past the end, a 5 MB document. Each gets a proper LSP
answer, and the server keeps working."""

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities

from helpers import change_document, open_document, position, published, raw_notify, raw_request

RULE = 'rule r {\n  severity: low\n  when { name = "😀" }\n  always { duration < 1s }\n}\n'


def error_code(error: Exception) -> int | None:
    """The JSON-RPC error code pygls raised for a response."""
    return getattr(error, "code", None)


async def test_requests_before_initialize_are_refused(raw_client: LanguageClient):
    # Sent raw: pytest-lsp's typed methods refuse to send before `initialize`.
    params = {"textDocument": {"uri": "file:///x.btr"}, "position": {"line": 0, "character": 0}}
    with pytest.raises(JsonRpcException) as refused:
        await raw_request(raw_client, "textDocument/hover", params)
    assert error_code(refused.value) == -32002  # ServerNotInitialized
    # Notifications before `initialize` are dropped.
    raw_notify(raw_client, "textDocument/didOpen", {"textDocument": {"uri": "file:///x.btr", "languageId": "btr", "version": 1, "text": ""}})
    # The server still initializes and answers afterwards.
    result = await raw_client.initialize_session(types.InitializeParams(capabilities=client_capabilities("neovim")))
    assert result.capabilities.hover_provider
    await raw_client.shutdown_session()


async def test_requests_after_shutdown_are_refused_and_exit_is_clean(raw_client: LanguageClient):
    await raw_client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    await raw_client.shutdown_async(None)
    with pytest.raises(JsonRpcException) as refused:
        params = {"textDocument": {"uri": "file:///x.btr"}, "position": {"line": 0, "character": 0}}
        await raw_request(raw_client, "textDocument/hover", params)
    assert error_code(refused.value) == -32600  # InvalidRequest
    raw_client.exit(None)
    server = raw_client._server
    assert await asyncio.wait_for(server.wait(), 10) == 0


async def test_unknown_methods_documents_and_malformed_params(client: LanguageClient):
    with pytest.raises(JsonRpcException) as unknown:
        await raw_request(client, "betrace/noSuchMethod", {})
    assert error_code(unknown.value) == -32601  # MethodNotFound
    with pytest.raises(JsonRpcException) as not_open:
        await client.text_document_hover_async(
            types.HoverParams(text_document=types.TextDocumentIdentifier(uri="file:///nowhere.btr"), position=types.Position(line=0, character=0))
        )
    assert error_code(not_open.value) == -32602  # InvalidParams
    with pytest.raises(JsonRpcException) as malformed:
        await raw_request(client, "textDocument/hover", {"textDocument": 42, "position": "here"})
    assert error_code(malformed.value) == -32602
    # Notifications with nonsense are ignored; the server is still there.
    raw_notify(client, "textDocument/didChange", {"textDocument": None})
    raw_notify(client, "textDocument/didOpen", {"textDocument": {"uri": "not a uri"}})
    with pytest.raises(JsonRpcException) as twice:
        await raw_request(client, "initialize", {"capabilities": {}})
    assert error_code(twice.value) == -32600  # InvalidRequest
    uri = open_document(client, client.pack / "ok.btr", RULE)
    assert await published(client, uri, version=1) == []


async def test_positions_inside_characters_and_past_the_end(client: LanguageClient):
    uri = open_document(client, client.pack / "pos.btr", RULE)
    await published(client, uri, version=1)
    emoji = position(RULE, "😀")

    async def hover(line: int, character: int):
        params = types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character))
        return await client.text_document_hover_async(params)

    # Inside the surrogate pair of 😀, past the end of a line, of the file.
    assert await hover(emoji.line, emoji.character + 1) is None
    assert await hover(0, 10_000) is None
    assert await hover(10_000, 10_000) is None
    for line, character in [(emoji.line, emoji.character + 1), (3, 999), (999, 0), (2**31 - 1, 2**31 - 1)]:
        await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character))
        )
        await client.text_document_definition_async(
            types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character))
        )
    # Edits with ranges past the end are clamped to it; one inside 😀 moves past it.
    past = types.Range(start=types.Position(line=99, character=0), end=types.Position(line=120, character=7))
    change_document(client, uri, 2, "rule r2 { severity: low when { } always { } }\n", past)
    assert await published(client, uri, version=2) == []
    inside = types.Range(start=types.Position(line=emoji.line, character=emoji.character + 1), end=types.Position(line=emoji.line, character=emoji.character + 1))
    change_document(client, uri, 3, "x", inside)
    assert await published(client, uri, version=3) == []
    # A range with its ends swapped is read in order: this deletes `severity: low`, an error.
    swapped = types.Range(start=position(RULE, "severity: low", len("severity: low")), end=position(RULE, "severity"))
    change_document(client, uri, 4, "", swapped)
    diagnostics = await published(client, uri, version=4)
    assert [d.code for d in diagnostics] == ["E403"]


async def test_a_5_mb_document(client: LanguageClient):
    rule = "rule r{i} {{ severity: low when {{ span.http.route = \"/a/{i}\" }} always {{ duration < {i}ms }} }}\n"
    text = "".join(rule.format(i=i) for i in range(60_000))
    text = text[: 5 * 1024 * 1024] if len(text) > 5 * 1024 * 1024 else text
    assert len(text.encode()) >= 5_000_000 or len(text) > 4_000_000
    uri = open_document(client, client.pack / "big.btr", text)
    diagnostics = await published(client, uri, version=1, timeout=120)
    assert isinstance(diagnostics, list)
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=59_999, character=2))
    )
    assert hover is None or hover.range.start.line == 59_999
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    assert len(symbols) >= 50_000


async def test_binary_text_is_reported_as_check_does(client: LanguageClient):
    uri = open_document(client, client.pack / "nul.btr", "rule r\0 {}", write=False)
    diagnostics = await published(client, uri, version=1)
    assert [d.code for d in diagnostics] == ["E011"]
