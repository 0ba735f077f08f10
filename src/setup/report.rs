//! What setup and undo tell the user: each change, each warning with its fix, and notes.

use std::io::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A file or setting that was changed (or, in a dry run, would be).
    Changed(String),
    /// Something wrong the user should fix, and how.
    Warning { message: String, fix: String },
    /// Something worth knowing.
    Note(String),
}

#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<Line>,
    pub dry_run: bool,
}

impl Report {
    pub fn new(dry_run: bool) -> Self {
        Self {
            lines: Vec::new(),
            dry_run,
        }
    }

    pub fn changed(&mut self, what: impl Into<String>) {
        self.lines.push(Line::Changed(what.into()));
    }

    pub fn warn(&mut self, message: impl Into<String>, fix: impl Into<String>) {
        self.lines.push(Line::Warning {
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Note(text.into()));
    }

    pub fn any_change(&self) -> bool {
        self.lines.iter().any(|l| matches!(l, Line::Changed(_)))
    }

    /// One line each: `changed: ...` (`would change: ...` in a dry run), `warning: ...` with
    /// `  fix: ...`, notes as they are.
    pub fn write_to(&self, mut out: impl Write) -> std::io::Result<()> {
        for line in &self.lines {
            match line {
                Line::Changed(what) if self.dry_run => writeln!(out, "would change: {what}")?,
                Line::Changed(what) => writeln!(out, "changed: {what}")?,
                Line::Warning { message, fix } => {
                    writeln!(out, "warning: {message}")?;
                    writeln!(out, "  fix: {fix}")?;
                }
                Line::Note(text) => writeln!(out, "{text}")?,
            }
        }
        Ok(())
    }
}
