//! The requests: each reads its parameters, converts positions to byte
//! offsets, asks `betrace_compiler::analysis`, and converts the answer back.
//! Bad parameters and unknown documents are `InvalidParams` errors; unknown
//! methods `MethodNotFound`.

use std::collections::HashMap;

use betrace_compiler::analysis::{self, CompletionKind, HighlightKind, SymbolKind};
use lsp_server::{ErrorCode, Request};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest, References, Request as _,
    SemanticTokensFullRequest,
};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionItemTag, CompletionResponse, CompletionTextEdit, DocumentSymbol,
    DocumentSymbolResponse, Documentation, GotoDefinitionResponse, Hover, HoverContents, Location, MarkupContent,
    MarkupKind, SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokens, SemanticTokensLegend,
    SemanticTokensResult, TextDocumentPositionParams, TextEdit, Uri,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::diagnostics::{self, Checked};
use super::documents::{Document, Store};

/// An error response.
#[derive(Debug)]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
}

type Result<T> = std::result::Result<T, RequestError>;

fn invalid_params(message: impl Into<String>) -> RequestError {
    RequestError { code: ErrorCode::InvalidParams, message: message.into() }
}

/// Answers one request (not `initialize` or `shutdown`, which the loop handles).
pub fn handle(store: &Store, checked: &HashMap<String, Checked>, request: Request) -> Result<Value> {
    let method = request.method.as_str();
    let json = |value: std::result::Result<Value, serde_json::Error>| {
        value.map_err(|e| RequestError { code: ErrorCode::InternalError, message: e.to_string() })
    };
    match method {
        HoverRequest::METHOD => {
            let params: lsp_types::HoverParams = params(request.params)?;
            json(serde_json::to_value(hover(store, &params.text_document_position_params)?))
        }
        Completion::METHOD => {
            let params: lsp_types::CompletionParams = params(request.params)?;
            json(serde_json::to_value(completion(store, &params.text_document_position)?))
        }
        GotoDefinition::METHOD => {
            let params: lsp_types::GotoDefinitionParams = params(request.params)?;
            json(serde_json::to_value(definition(store, &params.text_document_position_params)?))
        }
        References::METHOD => {
            let params: lsp_types::ReferenceParams = params(request.params)?;
            json(serde_json::to_value(references(store, &params)?))
        }
        DocumentSymbolRequest::METHOD => {
            let params: lsp_types::DocumentSymbolParams = params(request.params)?;
            json(serde_json::to_value(document_symbols(store, &params.text_document.uri)?))
        }
        CodeActionRequest::METHOD => {
            let params: lsp_types::CodeActionParams = params(request.params)?;
            let uri = &params.text_document.uri;
            let document = document(store, uri)?;
            let actions = match checked.get(uri.as_str()) {
                Some(checked) => diagnostics::code_actions(checked, document, uri, params.range),
                None => Vec::new(),
            };
            json(serde_json::to_value(actions))
        }
        SemanticTokensFullRequest::METHOD => {
            let params: lsp_types::SemanticTokensParams = params(request.params)?;
            let document = document(store, &params.text_document.uri)?;
            json(serde_json::to_value(SemanticTokensResult::Tokens(semantic_tokens(document))))
        }
        _ => Err(RequestError { code: ErrorCode::MethodNotFound, message: format!("unknown method `{method}`") }),
    }
}

fn params<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| invalid_params(format!("invalid parameters: {e}")))
}

fn document<'s>(store: &'s Store, uri: &Uri) -> Result<&'s Document> {
    store.get(uri.as_str()).ok_or_else(|| invalid_params(format!("no open document {}", uri.as_str())))
}

/// The open document and the byte offset of a position in it.
fn at<'s>(store: &'s Store, position: &TextDocumentPositionParams) -> Result<(&'s Document, usize)> {
    let document = document(store, &position.text_document.uri)?;
    Ok((document, document.offset(position.position)))
}

fn hover(store: &Store, position: &TextDocumentPositionParams) -> Result<Option<Hover>> {
    let (document, offset) = at(store, position)?;
    Ok(analysis::hover(&document.text, offset).map(|hover| Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: hover.markdown }),
        range: Some(document.range(hover.span)),
    }))
}

fn completion(store: &Store, position: &TextDocumentPositionParams) -> Result<Option<CompletionResponse>> {
    let (document, offset) = at(store, position)?;
    let items = analysis::completions(&document.text, offset)
        .into_iter()
        .enumerate()
        .map(|(i, completion)| CompletionItem {
            kind: Some(match completion.kind {
                CompletionKind::Keyword => CompletionItemKind::KEYWORD,
                CompletionKind::Field => CompletionItemKind::FIELD,
                CompletionKind::Intrinsic => CompletionItemKind::PROPERTY,
                CompletionKind::Attribute => CompletionItemKind::PROPERTY,
                CompletionKind::Scope => CompletionItemKind::MODULE,
                CompletionKind::Function => CompletionItemKind::FUNCTION,
                CompletionKind::Let => CompletionItemKind::VARIABLE,
                CompletionKind::Binding => CompletionItemKind::VARIABLE,
                CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
                CompletionKind::Type => CompletionItemKind::TYPE_PARAMETER,
            }),
            detail: completion.detail,
            documentation: completion
                .documentation
                .map(|value| Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value })),
            tags: completion.deprecated.then(|| vec![CompletionItemTag::DEPRECATED]),
            // Keep the analysis's order (current names before deprecated ones).
            sort_text: Some(format!("{i:05}")),
            filter_text: Some(completion.label.clone()),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range: document.range(completion.replace),
                new_text: completion.insert_text,
            })),
            label: completion.label,
            ..CompletionItem::default()
        })
        .collect();
    Ok(Some(CompletionResponse::Array(items)))
}

fn definition(store: &Store, position: &TextDocumentPositionParams) -> Result<Option<GotoDefinitionResponse>> {
    let (document, offset) = at(store, position)?;
    let uri = position.text_document.uri.clone();
    Ok(analysis::definition(&document.text, offset)
        .map(|span| GotoDefinitionResponse::Scalar(Location { uri, range: document.range(span) })))
}

fn references(store: &Store, params: &lsp_types::ReferenceParams) -> Result<Option<Vec<Location>>> {
    let position = &params.text_document_position;
    let (document, offset) = at(store, position)?;
    let definition = analysis::definition(&document.text, offset);
    let locations = analysis::references(&document.text, offset)
        .into_iter()
        .filter(|span| params.context.include_declaration || Some(*span) != definition)
        .map(|span| Location { uri: position.text_document.uri.clone(), range: document.range(span) })
        .collect();
    Ok(Some(locations))
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be given, though deprecated.
fn document_symbols(store: &Store, uri: &Uri) -> Result<Option<DocumentSymbolResponse>> {
    let document = document(store, uri)?;
    let symbols = analysis::symbols(&document.text)
        .into_iter()
        .map(|symbol| DocumentSymbol {
            name: symbol.name,
            detail: symbol.detail,
            kind: match symbol.kind {
                SymbolKind::Rule => lsp_types::SymbolKind::FUNCTION,
                SymbolKind::Let => lsp_types::SymbolKind::VARIABLE,
                SymbolKind::Attributes => lsp_types::SymbolKind::STRUCT,
            },
            tags: None,
            deprecated: None,
            range: document.range(symbol.span),
            selection_range: document.range(symbol.selection_span),
            children: None,
        })
        .collect();
    Ok(Some(DocumentSymbolResponse::Nested(symbols)))
}

/// The token types, in the order of their indexes in [`semantic_tokens`].
const TOKEN_TYPES: &[(HighlightKind, SemanticTokenType)] = &[
    (HighlightKind::Keyword, SemanticTokenType::KEYWORD),
    (HighlightKind::String, SemanticTokenType::STRING),
    (HighlightKind::Number, SemanticTokenType::NUMBER),
    (HighlightKind::Comment, SemanticTokenType::COMMENT),
    (HighlightKind::Operator, SemanticTokenType::OPERATOR),
    (HighlightKind::Function, SemanticTokenType::FUNCTION),
    (HighlightKind::Variable, SemanticTokenType::VARIABLE),
    (HighlightKind::Parameter, SemanticTokenType::PARAMETER),
    (HighlightKind::Property, SemanticTokenType::PROPERTY),
    (HighlightKind::Namespace, SemanticTokenType::NAMESPACE),
    (HighlightKind::Intrinsic, SemanticTokenType::VARIABLE),
    (HighlightKind::EnumMember, SemanticTokenType::ENUM_MEMBER),
    (HighlightKind::Type, SemanticTokenType::TYPE),
    (HighlightKind::Rule, SemanticTokenType::CLASS),
];

pub fn semantic_legend() -> SemanticTokensLegend {
    let mut types: Vec<SemanticTokenType> = Vec::new();
    for (_, ty) in TOKEN_TYPES {
        if !types.contains(ty) {
            types.push(ty.clone());
        }
    }
    SemanticTokensLegend {
        token_types: types,
        token_modifiers: vec![SemanticTokenModifier::DECLARATION, SemanticTokenModifier::DEFAULT_LIBRARY],
    }
}

/// The document's highlights, one LSP token per line of each (LSP tokens
/// cannot span lines), delta-encoded in UTF-16 units.
fn semantic_tokens(document: &Document) -> SemanticTokens {
    let legend = semantic_legend();
    let type_index = |kind: HighlightKind| {
        let ty = TOKEN_TYPES.iter().find(|(k, _)| *k == kind).map(|(_, ty)| ty);
        ty.and_then(|ty| legend.token_types.iter().position(|t| t == ty)).unwrap_or(0) as u32
    };
    let text = &document.text;
    let mut data = Vec::new();
    let (mut last_line, mut last_col) = (0, 0);
    for highlight in analysis::highlights(text) {
        let modifiers = u32::from(highlight.definition) | (u32::from(highlight.kind == HighlightKind::Intrinsic) << 1);
        let mut start = highlight.span.start as usize;
        let end = (highlight.span.end as usize).min(text.len());
        while start < end {
            let line_end = text[start..end].find('\n').map_or(end, |i| start + i);
            if line_end > start {
                let at = document.position(start as u32);
                let length = text[start..line_end].encode_utf16().count() as u32;
                let delta_line = at.line - last_line;
                let delta_start = if delta_line == 0 { at.character - last_col } else { at.character };
                data.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length,
                    token_type: type_index(highlight.kind),
                    token_modifiers_bitset: modifiers,
                });
                (last_line, last_col) = (at.line, at.character);
            }
            start = line_end + 1;
        }
    }
    SemanticTokens { result_id: None, data }
}
