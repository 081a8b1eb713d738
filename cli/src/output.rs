//! How results look: aligned tables and key/value blocks for people (in
//! colour only on a terminal), one stable JSON document for scripts.
//!
//! The JSON shapes are the CLI's own, not the library's `Serialize` output,
//! so that a change inside the library cannot change what scripts parse.

use std::ffi::OsStr;

use lupa_core::{Deployment, DeploymentSummary, Error, HistoryEntry, Page, Project, Timestamp, format_timestamp};
use serde::Serialize;

/// Whether to colour a stream: only a terminal, and never when `NO_COLOR` is
/// set to anything but the empty string (no-color.org) or `TERM` is `dumb`.
pub fn wants_colour(is_terminal: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty) && term != Some(OsStr::new("dumb"))
}

/// A text style; only ever shown when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Bold,
    Dim,
    Green,
    Yellow,
    Red,
    Cyan,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Green => "\x1b[32m",
            Style::Yellow => "\x1b[33m",
            Style::Red => "\x1b[31m",
            Style::Cyan => "\x1b[36m",
        }
    }
}

/// How to print: JSON or text, and text in colour or not.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub json: bool,
    pub colour: bool,
}

impl Ui {
    /// `text` in `style` when colour is on.
    pub fn paint(&self, text: &str, style: Style) -> String {
        if self.colour && style != Style::Plain && !text.is_empty() {
            format!("{}{text}\x1b[0m", style.code())
        } else {
            text.to_owned()
        }
    }
}

/// Text from the store (names, failure messages) made safe for a terminal:
/// control characters, which could move the cursor or forge colours, are
/// shown escaped.
pub fn shown(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

pub fn status_style(status: lupa_core::Status) -> Style {
    match status {
        lupa_core::Status::Ready => Style::Green,
        lupa_core::Status::Processing => Style::Yellow,
        lupa_core::Status::Failed => Style::Red,
    }
}

pub fn environment_style(environment: lupa_core::Environment) -> Style {
    match environment {
        lupa_core::Environment::Production => Style::Bold,
        lupa_core::Environment::Staging => Style::Plain,
    }
}

/// A table whose columns are aligned on the widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<(String, Style)>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<(String, Style)>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table, one line per row and a newline after each; no trailing
    /// spaces.
    pub fn render(&self, ui: &Ui) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (text, _)) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(text.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<(String, Style)> = self.headers.iter().map(|h| (h.to_string(), Style::Dim)).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            let last = row.len().min(columns).saturating_sub(1);
            for (i, (text, style)) in row.iter().enumerate().take(columns) {
                line.push_str(&ui.paint(text, *style));
                if i < last {
                    let pad = widths[i] - text.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `name  value` lines, names aligned.
pub fn fields(ui: &Ui, rows: &[(&str, String, Style)]) -> String {
    let width = rows.iter().map(|(name, _, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value, style) in rows {
        let name = format!("  {name:<width$}  ");
        out.push_str(&ui.paint(&name, Style::Dim));
        out.push_str(&ui.paint(value, *style));
        out.push('\n');
    }
    out
}

/// The text of the next-page hint under a listing.
pub fn next_page(ui: &Ui, next_cursor: Option<&str>) -> String {
    match next_cursor {
        Some(c) => ui.paint(&format!("more: repeat with --cursor {c}\n"), Style::Dim),
        None => String::new(),
    }
}

// ----- JSON shapes ---------------------------------------------------------

fn time(t: &Timestamp) -> String {
    format_timestamp(t)
}

#[derive(Serialize)]
pub struct ProjectJson {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Project> for ProjectJson {
    fn from(p: &Project) -> Self {
        ProjectJson {
            id: p.id.to_string(),
            org_id: p.org_id.to_string(),
            name: p.name.clone(),
            created_at: time(&p.created_at),
            updated_at: time(&p.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct DeploymentJson {
    pub id: String,
    pub project_id: String,
    pub snapshot_id: String,
    pub environment: &'static str,
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub failure_message: Option<String>,
    pub promote_when_ready: bool,
}

impl From<&Deployment> for DeploymentJson {
    fn from(d: &Deployment) -> Self {
        DeploymentJson {
            id: d.id.to_string(),
            project_id: d.project_id.to_string(),
            snapshot_id: d.snapshot_id.to_string(),
            environment: d.environment.as_str(),
            status: d.status.as_str(),
            created_at: time(&d.created_at),
            updated_at: time(&d.updated_at),
            failure_message: d.failure_message.clone(),
            promote_when_ready: d.promote_when_ready,
        }
    }
}

/// A change's result with the flag that says the shared cache is behind.
#[derive(Serialize)]
pub struct ChangedJson<T: Serialize> {
    #[serde(flatten)]
    pub value: T,
    pub cache_pending: bool,
}

/// A deleted project.
#[derive(Serialize)]
pub struct DeletedProjectJson {
    pub id: String,
    pub deleted: bool,
}

/// A deleted deployment: what it was.
#[derive(Serialize)]
pub struct DeletedDeploymentJson {
    #[serde(flatten)]
    pub deployment: DeploymentJson,
    pub deleted: bool,
}

#[derive(Serialize)]
pub struct SummaryJson {
    pub id: String,
    pub environment: &'static str,
    pub status: &'static str,
}

impl From<&DeploymentSummary> for SummaryJson {
    fn from(d: &DeploymentSummary) -> Self {
        SummaryJson { id: d.id.to_string(), environment: d.environment.as_str(), status: d.status.as_str() }
    }
}

/// What promote and rollback answer: the seed's `{success, deployment}` and
/// the deployment demoted, if any.
#[derive(Serialize)]
pub struct PromotionJson {
    pub success: bool,
    pub deployment: SummaryJson,
    pub demoted: Option<String>,
}

#[derive(Serialize)]
pub struct HistoryJson {
    pub seq: i64,
    pub deployment_id: String,
    pub from: &'static str,
    pub to: &'static str,
    pub at: String,
}

impl From<&HistoryEntry> for HistoryJson {
    fn from(e: &HistoryEntry) -> Self {
        HistoryJson {
            seq: e.seq,
            deployment_id: e.deployment_id.to_string(),
            from: e.from.as_str(),
            to: e.to.as_str(),
            at: time(&e.at),
        }
    }
}

/// `{"items": [...], "next_cursor": ...}`.
#[derive(Serialize)]
pub struct ListJson<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> ListJson<T> {
    pub fn of<U>(page: &Page<U>) -> ListJson<T>
    where
        T: for<'a> From<&'a U>,
    {
        ListJson { items: page.items.iter().map(T::from).collect(), next_cursor: page.next_cursor.clone() }
    }
}

#[derive(Serialize)]
pub struct ResolutionJson {
    pub project: String,
    pub deployment_id: Option<String>,
    pub requires_deployment: bool,
    pub deployment: Option<String>,
    pub source: &'static str,
}

#[derive(Serialize)]
pub struct ErrorJson<'a> {
    pub code: &'static str,
    pub message: &'a str,
}

/// `{"error": {"code", "message"}}`, as an HTTP server would answer.
#[derive(Serialize)]
pub struct ErrorDocument<'a> {
    pub error: ErrorJson<'a>,
}

impl<'a> ErrorDocument<'a> {
    pub fn of(code: &'static str, message: &'a str) -> ErrorDocument<'a> {
        ErrorDocument { error: ErrorJson { code, message } }
    }
}

/// One JSON document and a newline.
pub fn json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Error::new(lupa_core::ErrorCode::Internal, format!("could not write JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(wants_colour(true, None, None));
        assert!(wants_colour(true, Some(OsStr::new("")), Some(OsStr::new("xterm"))));
        assert!(!wants_colour(false, None, None));
        assert!(!wants_colour(true, Some(OsStr::new("1")), None));
        assert!(!wants_colour(true, None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn tables_align_on_the_widest_cell_and_colour_does_not_count() {
        let mut t = Table::new(&["ID", "STATUS", "NOTE"]);
        t.row(vec![("a".into(), Style::Plain), ("ready".into(), Style::Green), (String::new(), Style::Plain)]);
        t.row(vec![("abcdef".into(), Style::Plain), ("failed".into(), Style::Red), ("boom".into(), Style::Plain)]);
        let plain = t.render(&Ui { json: false, colour: false });
        assert_eq!(plain, "ID      STATUS  NOTE\na       ready\nabcdef  failed  boom\n");
        assert!(!plain.contains('\x1b'));
        let coloured = t.render(&Ui { json: false, colour: true });
        assert!(coloured.contains("\x1b[32mready\x1b[0m"));
        let stripped: String = coloured.replace("\x1b[0m", "").replace("\x1b[2m", "").replace("\x1b[32m", "");
        assert_eq!(stripped.replace("\x1b[31m", ""), plain);
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(shown("Docs"), "Docs");
        assert_eq!(shown("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(shown("Доки é"), "Доки é");
    }
}
