"""`betrace lsp` driven over stdio by a real LSP client (pygls, through
pytest-lsp): initialize, open/change/close, diagnostics, hover, completion,
code actions, definition, references, symbols, semantic tokens, shutdown."""

import json
import subprocess

from lsprotocol import types
from pytest_lsp import LanguageClient

from conftest import BETRACE
from helpers import change_document, open_document, position, published, text_range

PAYMENTS = """\
attributes {
  span.payment.amount: float
}

let charges = { name = "payment.charge" && span.payment.amount > 1000 }

rule high_value_charge {
  severity: critical
  message: "charge of {charge.span.payment.amount} had no fraud check"
  when charge = charges
  always { name = "fraud.check" && status = ok && end <= charge.start }
}

rule server_errors {
  severity: high
  when { kind = server }
  never { span.http.response.status_cod >= 500 && status = "error" }
}

rule old_names {
  severity: low
  when { span.http.status_code = 500 }
  always { duration < 2s }
}
"""


def doc_id(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


def at(uri: str, pos: types.Position) -> dict:
    return {"text_document": doc_id(uri), "position": pos}


async def test_initialize_announces_capabilities(client: LanguageClient):
    capabilities = client.init_result.capabilities
    assert client.init_result.server_info.name == "betrace"
    assert capabilities.position_encoding == types.PositionEncodingKind.Utf16
    assert capabilities.hover_provider
    assert set(capabilities.completion_provider.trigger_characters) == {".", ":"}
    assert capabilities.definition_provider and capabilities.references_provider
    assert capabilities.document_symbol_provider and capabilities.code_action_provider
    assert capabilities.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert "keyword" in capabilities.semantic_tokens_provider.legend.token_types


async def test_diagnostics_are_those_of_betrace_check(client: LanguageClient):
    path = client.pack / "payments.btr"
    uri = open_document(client, path, PAYMENTS)
    diagnostics = await published(client, uri, version=1)
    check = subprocess.run([BETRACE, "check", "--format", "json", str(path)], capture_output=True, text=True)
    expected = [json.loads(line) for line in check.stdout.splitlines()]
    assert len(expected) >= 3, check.stdout
    # The file is ASCII, so character columns (check) equal UTF-16 columns (LSP).
    got = [
        (d.code, d.range.start.line + 1, d.range.start.character + 1, d.range.end.line + 1, d.range.end.character + 1, d.message)
        for d in diagnostics
    ]
    want = [
        (e["code"], e["range"]["start"]["line"], e["range"]["start"]["column"], e["range"]["end"]["line"], e["range"]["end"]["column"], e["message"])
        for e in expected
    ]
    assert got == want
    severities = {d.code: d.severity for d in diagnostics}
    assert severities["E201"] == types.DiagnosticSeverity.Error
    assert severities["W500"] == types.DiagnosticSeverity.Warning
    deprecated = next(d for d in diagnostics if d.code == "W501")
    assert types.DiagnosticTag.Deprecated in deprecated.tags
    assert all(d.source == "betrace" for d in diagnostics)
    typo = next(d for d in diagnostics if d.code == "W500")
    assert any("declare it" in info.message for info in typo.related_information), "help rides along"


async def test_change_and_close_republish(client: LanguageClient):
    text = 'rule r {\n  severity: low\n  when { status = "error" }\n  always { }\n}\n'
    uri = open_document(client, client.pack / "r.btr", text)
    first = await published(client, uri, version=1)
    assert [d.code for d in first] == ["E201"]
    # An incremental edit: replace `"error"` with `error`.
    change_document(client, uri, 2, "error", text_range(text, '"error"'))
    assert await published(client, uri, version=2) == []
    # A whole-text change that breaks the syntax.
    change_document(client, uri, 3, "rule r {\n  severity: low\n")
    broken = await published(client, uri, version=3)
    assert broken and broken[0].code.startswith("E0")
    count = len(client.published)
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=doc_id(uri)))
    assert await published(client, uri, after=count) == []


async def test_the_pack_is_the_directory(client: LanguageClient):
    """A rule name used in two files of one directory is reported as `betrace check DIR` does."""
    (client.pack / "a.btr").write_text("rule same { severity: low when { } always { } }\n")
    uri = open_document(client, client.pack / "b.btr", "rule same { severity: low when { } always { } }\n")
    diagnostics = await published(client, uri, version=1)
    assert len(diagnostics) == 1 and "already exists in" in diagnostics[0].message
    check = subprocess.run([BETRACE, "check", "--format", "json", str(client.pack)], capture_output=True, text=True)
    expected = [json.loads(line) for line in check.stdout.splitlines() if json.loads(line)["file"].endswith("b.btr")]
    assert [(d.code, d.message) for d in diagnostics] == [(e["code"], e["message"]) for e in expected]


async def test_hover(client: LanguageClient):
    uri = open_document(client, client.pack / "payments.btr", PAYMENTS)
    await published(client, uri, version=1)

    async def hover(needle: str, shift: int = 1, nth: int = 0) -> types.Hover:
        result = await client.text_document_hover_async(types.HoverParams(**at(uri, position(PAYMENTS, needle, shift, nth))))
        assert result is not None, needle
        assert result.contents.kind == types.MarkupKind.Markdown
        return result

    declared = await hover("span.payment.amount >", 7)
    assert "span.payment.amount: float" in declared.contents.value
    assert declared.range == text_range(PAYMENTS, "span.payment.amount", 1)
    convention = await hover("http.status_code", 6)
    assert "span.http.status_code: int" in convention.contents.value
    assert "renamed to `http.response.status_code`" in convention.contents.value
    intrinsic = await hover("duration")
    assert "duration: duration" in intrinsic.contents.value
    binding = await hover("charge.start")
    assert "charge: span" in binding.contents.value
    let = await hover("charges\n", 2)
    assert "let charges: spanset" in let.contents.value
    blank_line = types.Position(line=3, character=0)
    assert await client.text_document_hover_async(types.HoverParams(**at(uri, blank_line))) is None


async def test_hover_on_a_function(client: LanguageClient):
    text = 'rule r { severity: low when { contains(name, "x") } always { } }\n'
    uri = open_document(client, client.pack / "f.btr", text)
    result = await client.text_document_hover_async(types.HoverParams(**at(uri, position(text, "contains", 3))))
    assert result.contents.value.startswith("```btr\ncontains(")
    assert "-> bool" in result.contents.value


async def test_completion(client: LanguageClient):
    text = "let fast = { duration < 1s }\nrule r {\n  severity: low\n  when x = { span.http.re }\n  always { x. }\n}\n"
    uri = open_document(client, client.pack / "c.btr", text)
    await published(client, uri, version=1)

    async def complete(needle: str, shift: int) -> list[types.CompletionItem]:
        params = types.CompletionParams(**at(uri, position(text, needle, shift)))
        result = await client.text_document_completion_async(params)
        return result if isinstance(result, list) else result.items

    attributes = await complete("span.http.re", len("span.http.re"))
    labels = [item.label for item in attributes]
    assert "http.request.method" in labels and "http.route" in labels
    method = next(item for item in attributes if item.label == "http.request.method")
    assert method.detail == "string"
    assert method.text_edit.range == text_range(text, "http.re")
    assert method.text_edit.new_text == "http.request.method"
    members = [item.label for item in await complete("x. }", 2)]
    assert "duration" in members and "parent" in members and "span" in members
    rule_body = [item.label for item in await complete("  severity", 2)]
    assert {"severity", "when", "always", "never", "fast"} <= set(rule_body)
    functions = await complete("  severity", 2)
    contains = next(item for item in functions if item.label == "contains")
    assert contains.kind == types.CompletionItemKind.Function and contains.detail.startswith("contains(")


async def test_code_actions_apply_the_fixes(client: LanguageClient):
    text = "rule r {\n  severity: low\n  when { span.http.response.status_cod >= 500 }\n  always { }\n}\n"
    uri = open_document(client, client.pack / "fix.btr", text)
    diagnostics = await published(client, uri, version=1)
    typo = next(d for d in diagnostics if d.code == "W500")
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=doc_id(uri),
            range=typo.range,
            context=types.CodeActionContext(diagnostics=[typo]),
        )
    )
    assert len(actions) == 1
    action = actions[0]
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.title == "Use `http.response.status_code`"
    assert action.is_preferred
    (edit,) = action.edit.changes[uri]
    assert edit.range == text_range(text, "http.response.status_cod")
    # Apply it as an editor would: the warning goes away.
    change_document(client, uri, 2, edit.new_text, edit.range)
    assert await published(client, uri, version=2) == []
    # No diagnostic there, no action.
    none = await client.text_document_code_action_async(
        types.CodeActionParams(text_document=doc_id(uri), range=typo.range, context=types.CodeActionContext(diagnostics=[]))
    )
    assert list(none or []) == []


async def test_definition_and_references(client: LanguageClient):
    uri = open_document(client, client.pack / "payments.btr", PAYMENTS)
    await published(client, uri, version=1)
    definition = await client.text_document_definition_async(
        types.DefinitionParams(**at(uri, position(PAYMENTS, "charges\n", 3)))
    )
    assert definition.uri == uri
    assert definition.range == text_range(PAYMENTS, "charges", 0)
    binding = await client.text_document_definition_async(
        types.DefinitionParams(**at(uri, position(PAYMENTS, "charge.start", 2)))
    )
    assert binding.range == types.Range(start=position(PAYMENTS, "charge ="), end=position(PAYMENTS, "charge =", len("charge")))
    refs = await client.text_document_references_async(
        types.ReferenceParams(
            **at(uri, position(PAYMENTS, "charge.start", 2)),
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    assert [r.range.start for r in refs] == [position(PAYMENTS, "charge ="), position(PAYMENTS, "charge.span"), position(PAYMENTS, "charge.start")]
    without = await client.text_document_references_async(
        types.ReferenceParams(
            **at(uri, position(PAYMENTS, "charge.start", 2)),
            context=types.ReferenceContext(include_declaration=False),
        )
    )
    assert len(without) == 2
    declared = await client.text_document_definition_async(
        types.DefinitionParams(**at(uri, position(PAYMENTS, "payment.amount >", 2)))
    )
    assert declared.range.start == position(PAYMENTS, "span.payment.amount: float")


async def test_document_symbols_one_per_rule(client: LanguageClient):
    uri = open_document(client, client.pack / "payments.btr", PAYMENTS)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc_id(uri)))
    rules = [s for s in symbols if s.kind == types.SymbolKind.Function]
    assert [s.name for s in rules] == ["high_value_charge", "server_errors", "old_names"]
    assert rules[0].selection_range == text_range(PAYMENTS, "high_value_charge")
    assert [s.name for s in symbols if s.kind == types.SymbolKind.Variable] == ["charges"]


async def test_semantic_tokens(client: LanguageClient):
    uri = open_document(client, client.pack / "payments.btr", PAYMENTS)
    tokens = await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(text_document=doc_id(uri)))
    legend = client.init_result.capabilities.semantic_tokens_provider.legend.token_types
    data = list(tokens.data)
    assert len(data) % 5 == 0 and len(data) > 50
    # Decode: the first token is the `attributes` keyword at 0:0.
    assert data[:3] == [0, 0, len("attributes")] and legend[data[3]] == "keyword"
    line = col = 0
    kinds = {}
    lines = PAYMENTS.split("\n")
    for i in range(0, len(data), 5):
        line += data[i]
        col = data[i + 1] if data[i] else col + data[i + 1]
        kinds[lines[line][col : col + data[i + 2]]] = legend[data[i + 3]]
    assert kinds["charges"] == "variable"
    assert kinds["charge"] == "parameter"
    assert kinds["critical"] == "enumMember"
    assert kinds["span"] == "namespace" and kinds["amount"] == "property"
    assert kinds["duration"] == "variable"
    assert kinds['"fraud.check"'] == "string"
    assert kinds["2s"] == "number"


async def test_utf16_positions_with_multibyte_text(client: LanguageClient):
    text = 'rule r { description: "😀 é 😀" severity: low when x = { name = "😀" } always { x.duraton > 1s } }\n'
    uri = open_document(client, client.pack / "u.btr", text)
    diagnostics = await published(client, uri, version=1)
    unknown = next(d for d in diagnostics if "duraton" in d.message)
    # UTF-16 columns: each 😀 counts two, é one.
    assert unknown.range == text_range(text, "duraton")
    assert unknown.range.start.character == len(text[: text.index("duraton")].encode("utf-16-le")) // 2
    assert unknown.range.start.character != text.index("duraton")
    binding = await client.text_document_hover_async(types.HoverParams(**at(uri, position(text, "x.duraton", 1))))
    assert binding.range == types.Range(start=position(text, "x.duraton"), end=position(text, "x.duraton", 1))
    assert "x: span" in binding.contents.value
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(text_document=doc_id(uri), range=unknown.range, context=types.CodeActionContext(diagnostics=[unknown]))
    )
    (edit,) = actions[0].edit.changes[uri]
    assert edit.range == text_range(text, "duraton") and edit.new_text == "duration"
