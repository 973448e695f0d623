"""Benchmark: time from a `didChange` on a 2,000-line rule file to the
`publishDiagnostics` for that version, through a real LSP client over stdio.

    cargo build --release
    python tests/lsp/bench_didchange.py [--binary target/release/betrace] [--edits 200]

Each edit is a one-character incremental change in the middle of the file
(alternating, so the text stays valid); the client waits for the diagnostics
of each version before sending the next edit. Prints the median, p95 and
maximum, and the server's CPU time per edit (steadier than wall-clock
time on a busy machine). Figures are recorded in docs/performance.md ("Editor server").
"""

import argparse
import asyncio
import os
import pathlib
import statistics
import sys
import tempfile
import time

from lsprotocol import types
from pygls.lsp.client import LanguageClient

REPO = pathlib.Path(__file__).resolve().parents[2]


def rule_file(lines: int) -> str:
    """A realistic pack file of about `lines` lines: rules with bindings,
    selectors, structural operators, aggregates, templates, and a few `let`s."""
    out = [
        "attributes {\n  span.payment.amount: float\n  span.payment.currency: string\n}\n\n",
        'let charges = { name = "payment.charge" && span.payment.amount > 1000 }\n',
        "let servers = { kind = server && resource.service.name != nil }\n\n",
    ]
    i = 0
    while sum(chunk.count("\n") for chunk in out) < lines:
        out.append(
            f"rule check_{i} {{\n"
            f'  description: "rule number {i}"\n'
            f"  severity: {['info', 'low', 'medium', 'high', 'critical'][i % 5]}\n"
            f'  tags: ["team:{i % 7}", "generated"]\n'
            f'  message: "charge {{charge.span.payment.amount}} {{charge.span.payment.currency}} took {{charge.duration}}"\n'
            f"  when charge = charges\n"
            f'  always {{ name = "fraud.check" && status = ok && end <= charge.start }}\n'
            f'  never {{ span.http.response.status_code >= 500 && span.http.route =~ "/api/v[0-9]+/{i}/.*" }}\n'
            f"  never servers !>> {{ name = \"auth.check_{i}\" }}\n"
            f'  never count({{ name = "http.request" && span.http.request.resend_count > {i % 5} }}) > 3\n'
            f"}}\n\n"
        )
        i += 1
    return "".join(out)


async def run(binary: str, lines: int, edits: int) -> list[float]:
    client = LanguageClient("bench", "1")
    published: dict[int, float] = {}
    done = asyncio.Event()
    wanted = {"version": -1}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams):
        published[params.version] = time.perf_counter()
        if params.version == wanted["version"]:
            done.set()

    await client.start_io(binary, "lsp")
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "bench.btr"
        text = rule_file(lines)
        path.write_text(text)
        uri = path.as_uri()
        await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=pathlib.Path(directory).as_uri()))
        client.initialized(types.InitializedParams())
        wanted["version"] = 1
        done.clear()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(uri=uri, language_id="btr", version=1, text=text))
        )
        await asyncio.wait_for(done.wait(), 60)
        # Edit a number in a rule in the middle of the file: `> 3` becomes `> 4` and back.
        middle = text.count("\n") // 2
        line_text = next(j for j, l in enumerate(text.split("\n")) if j >= middle and l.endswith("> 3"))
        column = len(text.split("\n")[line_text]) - 1
        edit_range = types.Range(start=types.Position(line=line_text, character=column), end=types.Position(line=line_text, character=column + 1))
        timings = []
        cpu_before = server_cpu_seconds(client)
        for n in range(edits):
            version = n + 2
            wanted["version"] = version
            done.clear()
            sent = time.perf_counter()
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[types.TextDocumentContentChangePartial(range=edit_range, text="4" if n % 2 == 0 else "3")],
                )
            )
            await asyncio.wait_for(done.wait(), 60)
            timings.append((published[version] - sent) * 1000)
        cpu = server_cpu_seconds(client) - cpu_before
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return timings, cpu * 1000 / edits


def server_cpu_seconds(client: LanguageClient) -> float:
    """User plus system CPU time of the server process so far (Linux `/proc`), or 0."""
    try:
        fields = pathlib.Path(f"/proc/{client._server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "betrace"))
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--max-median-ms", type=float, default=None, help="exit 1 if the median is above this")
    args = parser.parse_args()
    timings, cpu_per_edit = asyncio.run(run(args.binary, args.lines, args.edits))
    timings_sorted = sorted(timings)
    median = statistics.median(timings)
    p95 = timings_sorted[int(len(timings_sorted) * 0.95) - 1]
    print(f"didChange -> publishDiagnostics on a {args.lines}-line file, {len(timings)} edits: "
          f"median {median:.1f} ms, p95 {p95:.1f} ms, max {max(timings):.1f} ms, min {min(timings):.1f} ms; "
          f"server CPU {cpu_per_edit:.1f} ms per edit")
    if args.max_median_ms is not None and median > args.max_median_ms:
        print(f"median above {args.max_median_ms} ms", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
