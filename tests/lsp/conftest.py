"""Shared fixtures: where the `betrace` binary is, a pack directory of rule
files, and a client started and initialized like VS Code's."""

import json
import os
import pathlib
import subprocess

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

REPO = pathlib.Path(__file__).resolve().parents[2]


def betrace_binary() -> str:
    """`$BETRACE_BIN`, else the debug build in cargo's target directory."""
    if os.environ.get("BETRACE_BIN"):
        return os.environ["BETRACE_BIN"]
    target = REPO / "target"
    try:
        metadata = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            cwd=REPO, capture_output=True, check=True, text=True,
        )
        target = pathlib.Path(json.loads(metadata.stdout)["target_directory"])
    except (OSError, subprocess.CalledProcessError, KeyError, ValueError):
        pass
    binary = target / "debug" / "betrace"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run `cargo build` first")
    return str(binary)


def record_diagnostics(client: LanguageClient, params: types.PublishDiagnosticsParams):
    client.diagnostics[params.uri] = params.diagnostics
    client.published.append(params)


def make_client() -> LanguageClient:
    """pytest-lsp's client, which also keeps every `publishDiagnostics` in order
    (with its version) in `client.published`."""
    client = LanguageClient(converter_factory=default_converter)
    features = dict(DEFAULT_CLIENT_FEATURES)
    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = record_diagnostics
    register_lsp_features(client, features)
    client.published = []
    return client


BETRACE = betrace_binary()
SERVER = ClientServerConfig(server_command=[BETRACE, "lsp"], client_factory=make_client)


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, tmp_path: pathlib.Path):
    params = types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=tmp_path.as_uri(),
    )
    result = await lsp_client.initialize_session(params)
    lsp_client.init_result = result
    lsp_client.pack = tmp_path
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER)
async def raw_client(lsp_client: LanguageClient):
    """A client that has not sent `initialize`. Tests drive the session; the
    server is told to exit at the end if it has not."""
    yield
    server = lsp_client._server
    if server is not None and server.returncode is None:
        lsp_client.exit(None)
