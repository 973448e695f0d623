// A minimal VS Code client for `betrace lsp`: it starts the server over stdio
// for `.btr` files. Everything else (diagnostics, hover, completion, quick
// fixes, navigation, semantic tokens) comes from the server.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("betrace").get("server.path", "betrace");
  const serverOptions = { command, args: ["lsp"], transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [{ language: "btr" }],
  };
  client = new LanguageClient("betrace", "BeTrace", serverOptions, clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
