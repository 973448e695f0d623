"""Shared fixtures: where the `betrace` binary is, a pack directory of rule
files, and a client started and initialized like VS Code's."""

import json
import os
import pathlib
import subprocess

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

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


BETRACE = betrace_binary()
SERVER = ClientServerConfig(server_command=[BETRACE, "lsp"])


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
    """A client that has not sent `initialize`."""
    yield
