//! The language server behind `betrace lsp`: LSP over stdio, synchronous
//! (rust-analyzer's `lsp-server` and `lsp-types`; no async runtime).
//!
//! The loop reads a message, handles it, and before waiting for the next one
//! re-checks the documents that changed and publishes their diagnostics — so
//! a burst of edits is checked once. The analysis itself (hover, completion,
//! navigation, symbols) is `betrace_compiler::analysis`; this module holds the
//! protocol: documents and positions (`documents.rs`), diagnostics and quick
//! fixes (`diagnostics.rs`), and the requests (`requests.rs`).

mod diagnostics;
mod documents;
mod requests;

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, CompletionOptions, HoverProviderCapability,
    InitializeResult, OneOf, PositionEncodingKind, PublishDiagnosticsParams, SaveOptions, SemanticTokensFullOptions,
    SemanticTokensOptions, SemanticTokensServerCapabilities, ServerCapabilities, ServerInfo,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions, Uri,
};

use self::diagnostics::Checked;
use self::documents::{Document, Store};

/// How many queued messages are handled before diagnostics are published anyway.
const MAX_BATCH: usize = 64;

/// Runs the server on stdin/stdout until the client says `exit` or hangs up.
/// Returns the process's exit code: 0 after `shutdown` then `exit`, 1 otherwise.
pub fn serve_stdio() -> u8 {
    let (connection, io_threads) = Connection::stdio();
    let code = serve(&connection);
    drop(connection);
    // The reader thread fails on a malformed message; that is the client's error, already reported.
    if let Err(error) = io_threads.join() {
        eprintln!("betrace lsp: {error}");
    }
    code
}

/// The server on any connection (tests use an in-memory one).
pub fn serve(connection: &Connection) -> u8 {
    // Requests before `initialize` get `ServerNotInitialized` from lsp-server.
    let (id, _params) = match connection.initialize_start() {
        Ok(start) => start,
        Err(error) => {
            eprintln!("betrace lsp: {error}");
            return 1;
        }
    };
    let result = InitializeResult {
        capabilities: capabilities(),
        server_info: Some(ServerInfo {
            name: "betrace".to_string(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
    };
    let result = serde_json::to_value(result).unwrap_or_default();
    if connection.sender.send(Response::new_ok(id, result).into()).is_err() {
        return 1;
    }
    let mut server = Server {
        connection,
        store: Store::default(),
        checked: HashMap::new(),
        dirty: BTreeSet::new(),
        shut_down: false,
    };
    while let Ok(message) = connection.receiver.recv() {
        if let Some(code) = server.handle(message) {
            return code;
        }
        for _ in 0..MAX_BATCH {
            let Ok(message) = connection.receiver.try_recv() else { break };
            if let Some(code) = server.handle(message) {
                return code;
            }
        }
        server.publish_dirty();
    }
    1
}

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::INCREMENTAL),
            will_save: None,
            will_save_wait_until: None,
            save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions { include_text: Some(false) })),
        })),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".to_string(), ":".to_string()]),
            ..CompletionOptions::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..CodeActionOptions::default()
        })),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: requests::semantic_legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                work_done_progress_options: Default::default(),
            },
        )),
        ..ServerCapabilities::default()
    }
}

struct Server<'c> {
    connection: &'c Connection,
    store: Store,
    /// The last diagnostics of each open document.
    checked: HashMap<String, Checked>,
    /// Open documents changed since they were last checked.
    dirty: BTreeSet<String>,
    shut_down: bool,
}

impl Server<'_> {
    /// Handles one message; `Some(code)` when the server should exit.
    fn handle(&mut self, message: Message) -> Option<u8> {
        match message {
            Message::Request(request) => {
                let response = self.request(request);
                let _ = self.connection.sender.send(response.into());
                None
            }
            Message::Notification(notification) if notification.method == "exit" => {
                Some(if self.shut_down { 0 } else { 1 })
            }
            Message::Notification(notification) => {
                let method = notification.method.clone();
                if catch_unwind(AssertUnwindSafe(|| self.notification(notification))).is_err() {
                    eprintln!("betrace lsp: internal error while handling `{method}`");
                }
                None
            }
            Message::Response(_) => None,
        }
    }

    fn request(&mut self, request: Request) -> Response {
        let id = request.id.clone();
        if self.shut_down {
            return Response::new_err(id, ErrorCode::InvalidRequest as i32, "the server is shutting down".to_string());
        }
        if request.method == "shutdown" {
            self.shut_down = true;
            return Response::new_ok(id, ());
        }
        if request.method == "initialize" {
            return Response::new_err(
                id,
                ErrorCode::InvalidRequest as i32,
                "the server is already initialized".to_string(),
            );
        }
        if request.method == "textDocument/codeAction" {
            // Quick fixes need the current diagnostics.
            self.publish_dirty();
        }
        let method = request.method.clone();
        match catch_unwind(AssertUnwindSafe(|| requests::handle(&self.store, &self.checked, request))) {
            Ok(Ok(value)) => Response::new_ok(id, value),
            Ok(Err(error)) => Response::new_err(id, error.code as i32, error.message),
            Err(_) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                format!("internal error while handling `{method}`"),
            ),
        }
    }

    fn notification(&mut self, notification: Notification) {
        match notification.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(params) =
                    notification.extract::<lsp_types::DidOpenTextDocumentParams>(DidOpenTextDocument::METHOD)
                else {
                    return;
                };
                let uri = params.text_document.uri.as_str().to_string();
                let document = Document::new(&uri, params.text_document.text, params.text_document.version);
                self.store.documents.insert(uri.clone(), document);
                self.mark_pack_dirty(&uri);
            }
            DidChangeTextDocument::METHOD => {
                let Ok(params) =
                    notification.extract::<lsp_types::DidChangeTextDocumentParams>(DidChangeTextDocument::METHOD)
                else {
                    return;
                };
                let uri = params.text_document.uri.as_str().to_string();
                let Some(document) = self.store.documents.get_mut(&uri) else { return };
                for change in params.content_changes {
                    document.apply(change);
                }
                document.version = params.text_document.version;
                self.mark_pack_dirty(&uri);
            }
            DidSaveTextDocument::METHOD => {
                // Other open files of the pack read this one from the editor already; nothing changes.
            }
            DidCloseTextDocument::METHOD => {
                let Ok(params) =
                    notification.extract::<lsp_types::DidCloseTextDocumentParams>(DidCloseTextDocument::METHOD)
                else {
                    return;
                };
                let uri = params.text_document.uri;
                let key = uri.as_str().to_string();
                // The rest of the pack now reads this file from disk.
                self.mark_pack_dirty(&key);
                self.store.documents.remove(&key);
                self.checked.remove(&key);
                self.dirty.remove(&key);
                self.publish(uri, Vec::new(), None);
            }
            _ => {}
        }
    }

    /// Marks a document and the other open documents of its directory for re-checking.
    fn mark_pack_dirty(&mut self, uri: &str) {
        self.dirty.insert(uri.to_string());
        let Some(dir) = self.store.get(uri).and_then(|d| d.path.as_deref()).and_then(|p| p.parent()) else { return };
        let dir = dir.to_path_buf();
        for (other, document) in &self.store.documents {
            if document.path.as_deref().and_then(|p| p.parent()) == Some(dir.as_path()) {
                self.dirty.insert(other.clone());
            }
        }
    }

    /// Checks the changed documents (one check per pack) and publishes.
    fn publish_dirty(&mut self) {
        while let Some(uri) = self.dirty.pop_first() {
            let checked = match catch_unwind(AssertUnwindSafe(|| diagnostics::check_pack(&self.store, &uri))) {
                Ok(checked) => checked,
                Err(_) => {
                    eprintln!("betrace lsp: internal error while checking {uri}");
                    continue;
                }
            };
            for (member, result) in checked {
                self.dirty.remove(&member);
                let Some(document) = self.store.get(&member) else { continue };
                let Ok(lsp_uri) = member.parse::<Uri>() else { continue };
                let published: Vec<lsp_types::Diagnostic> =
                    result.diagnostics.iter().map(|d| diagnostics::to_lsp(d, document, &lsp_uri)).collect();
                let version = Some(result.version);
                self.checked.insert(member, result);
                self.publish(lsp_uri, published, version);
            }
        }
    }

    fn publish(&self, uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) {
        let params = PublishDiagnosticsParams { uri, diagnostics, version };
        let notification = Notification::new(PublishDiagnostics::METHOD.to_string(), params);
        let _ = self.connection.sender.send(notification.into());
    }
}
