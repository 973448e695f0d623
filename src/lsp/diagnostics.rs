//! Checking open documents as `betrace check` does, and turning the compiler's
//! diagnostics and fixes into LSP diagnostics and quick fixes.
//!
//! A document's pack is the `.btr` files of its directory: the open ones as
//! the editor holds them, the others as they are on disk. The pack is checked
//! with `check_files`, so cross-file findings (a rule name used twice) appear
//! as they do on the command line.

use std::collections::HashMap;
use std::path::PathBuf;

use betrace_compiler::codes::{self, Severity};
use betrace_compiler::diagnostics::{Diagnostic, Fix};
use betrace_compiler::syntax::decode_source;
use betrace_compiler::{CheckConfig, SourceFile};
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag,
    Location, NumberOrString, Range, TextEdit, Uri, WorkspaceEdit,
};

use super::documents::{Document, Store};

/// The diagnostics of one checked document, and the text version they are for.
#[derive(Debug, Clone)]
pub struct Checked {
    pub version: i32,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks the pack of the open document `uri`. Returns the diagnostics of
/// every open document of that pack, by URI.
pub fn check_pack(store: &Store, uri: &str) -> Vec<(String, Checked)> {
    let Some(document) = store.get(uri) else { return Vec::new() };
    // Members: (uri if open, display name, text), in the order `betrace check DIR` reads them.
    let mut members: Vec<(Option<String>, String, String)> = Vec::new();
    match document.path.as_deref().and_then(|p| Some((p, p.parent()?))) {
        Some((own, dir)) => {
            let mut paths = pack_files(dir);
            if !paths.iter().any(|p| p == own) {
                paths.push(own.to_path_buf());
                paths.sort();
            }
            for path in paths {
                let name = path.display().to_string();
                if path == own {
                    members.push((Some(uri.to_string()), name, document.text.clone()));
                } else if let Some((other_uri, other)) = store.by_path(&path) {
                    members.push((Some(other_uri.clone()), name, other.text.clone()));
                } else if let Ok(bytes) = std::fs::read(&path)
                    && let Ok(text) = decode_source(&bytes)
                {
                    members.push((None, name, text.to_string()));
                }
            }
        }
        None => members.push((Some(uri.to_string()), uri.to_string(), document.text.clone())),
    }
    // Files that are not text are reported alone, as `betrace check` does, and left out of the pack.
    let mut unreadable: HashMap<usize, Diagnostic> = HashMap::new();
    let mut files = Vec::new();
    let mut checked_members = Vec::new();
    for (i, (_, name, text)) in members.iter().enumerate() {
        match decode_source(text.as_bytes()) {
            Ok(_) => {
                checked_members.push(i);
                files.push(SourceFile { name: name.clone(), text: text.clone() });
            }
            Err(diagnostic) => {
                unreadable.insert(i, diagnostic);
            }
        }
    }
    let config = CheckConfig::default();
    let reports = match files.as_slice() {
        // Alone, a file has no cross-file findings: `check_files` would only parse it again.
        [file] => vec![betrace_compiler::check_file(&file.text, &config)],
        _ => betrace_compiler::check_files(&files, &config),
    };
    let mut by_member: HashMap<usize, Vec<Diagnostic>> = unreadable.into_iter().map(|(i, d)| (i, vec![d])).collect();
    for (report, member) in reports.into_iter().zip(checked_members) {
        by_member.insert(member, report.diagnostics);
    }
    members
        .iter()
        .enumerate()
        .filter_map(|(i, (open_uri, _, _))| {
            let open_uri = open_uri.as_ref()?;
            let version = store.get(open_uri)?.version;
            Some((open_uri.clone(), Checked { version, diagnostics: by_member.remove(&i).unwrap_or_default() }))
        })
        .collect()
}

/// The `.btr` files of a directory, sorted (not recursive: a pack is one directory).
fn pack_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "btr") && path.is_file())
        .collect();
    files.sort();
    files
}

/// One compiler diagnostic as an LSP diagnostic. The message is the
/// compiler's; the primary label and the help follow as related information,
/// with the secondary labels; the fixes ride along in `data` for code actions.
pub fn to_lsp(diagnostic: &Diagnostic, document: &Document, uri: &Uri) -> lsp_types::Diagnostic {
    let range = document.range(diagnostic.primary.span);
    let mut related = Vec::new();
    let at = |range: Range, message: String| DiagnosticRelatedInformation {
        location: Location { uri: uri.clone(), range },
        message,
    };
    if let Some(label) = &diagnostic.primary.message {
        related.push(at(range, label.clone()));
    }
    for label in &diagnostic.secondary {
        related.push(at(document.range(label.span), label.message.clone().unwrap_or_default()));
    }
    if let Some(help) = &diagnostic.help {
        related.push(at(range, format!("help: {help}")));
    }
    let tags = if diagnostic.code.id == codes::DEPRECATED_ATTRIBUTE.id {
        Some(vec![DiagnosticTag::DEPRECATED])
    } else if [codes::UNUSED_LET.id, codes::UNUSED_BINDING.id].contains(&diagnostic.code.id) {
        Some(vec![DiagnosticTag::UNNECESSARY])
    } else {
        None
    };
    lsp_types::Diagnostic {
        range,
        severity: Some(match diagnostic.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(diagnostic.code.id.to_string())),
        code_description: None,
        source: Some("betrace".to_string()),
        message: diagnostic.message.clone(),
        related_information: (!related.is_empty()).then_some(related),
        tags,
        data: Some(serde_json::json!({ "name": diagnostic.code.name, "fixes": diagnostic.fixes })),
    }
}

/// The quick fixes for the diagnostics whose range meets `range`: one per fix.
pub fn code_actions(checked: &Checked, document: &Document, uri: &Uri, range: Range) -> Vec<CodeActionOrCommand> {
    let mut actions = Vec::new();
    for diagnostic in &checked.diagnostics {
        let lsp = to_lsp(diagnostic, document, uri);
        if !overlaps(lsp.range, range) {
            continue;
        }
        for fix in &diagnostic.fixes {
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: capitalized(&fix.title),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![lsp.clone()]),
                edit: Some(workspace_edit(fix, document, uri)),
                command: None,
                is_preferred: Some(diagnostic.fixes.len() == 1),
                disabled: None,
                data: None,
            }));
        }
    }
    actions
}

fn workspace_edit(fix: &Fix, document: &Document, uri: &Uri) -> WorkspaceEdit {
    let edits = fix
        .edits
        .iter()
        .map(|edit| TextEdit { range: document.range(edit.span), new_text: edit.replacement.clone() })
        .collect();
    WorkspaceEdit {
        changes: Some(HashMap::from([(uri.clone(), edits)])),
        document_changes: None,
        change_annotations: None,
    }
}

fn capitalized(title: &str) -> String {
    let mut chars = title.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// Whether two ranges meet; an empty range (a cursor) meets a range it touches.
fn overlaps(a: Range, b: Range) -> bool {
    let key = |p: lsp_types::Position| (p.line, p.character);
    key(a.start) <= key(b.end) && key(b.start) <= key(a.end)
}
