//! What gluebind records about a column in its stored schema, beside what SQL declared: kept
//! in the column's comment, which SQL never sees whole ([`crate::snapshot::visible`] shows the
//! user's own comment only).
//!
//! A stored comment is either the user's comment as written, or a list of notes, each the
//! control character U+0001, a tag, a space and its text:
//!
//! ```text
//! \u{1}fill <JSON value>   what the rows stored before the column was added read there
//! \u{1}entries <name>      the name its UNIQUE entries are stored under (kv://), where it is
//!                          not the column's own: a UNIQUE column renamed in place, one added
//!                          under a name another's entries use, one dropped in place (whose
//!                          entries stay)
//! \u{1}comment <text>      the user's own comment
//! ```
//!
//! No note's text holds U+0001: JSON escapes control characters, and column names and comments
//! holding it are refused.

use gluesql_core::ast::ColumnDef;

/// Starts every note (a control character no statement writes by accident).
pub(crate) const MARK: char = '\u{1}';

/// The notes of one stored column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Notes<'a> {
    /// What the rows stored before the column was added read there, as JSON.
    pub fill: Option<&'a str>,
    /// The name the column's UNIQUE entries are stored under, where it is not its own.
    pub entries: Option<&'a str>,
    /// The user's own comment.
    pub comment: Option<&'a str>,
}

/// The notes `column`'s stored comment holds.
pub(crate) fn notes(column: &ColumnDef) -> Notes<'_> {
    let Some(comment) = column.comment.as_deref() else {
        return Notes::default();
    };
    let Some(rest) = comment.strip_prefix(MARK) else {
        return Notes {
            comment: Some(comment),
            ..Notes::default()
        };
    };
    let mut notes = Notes::default();
    for note in rest.split(MARK) {
        let (tag, text) = note.split_once(' ').unwrap_or((note, ""));
        match tag {
            "fill" => notes.fill = Some(text),
            "entries" => notes.entries = Some(text),
            "comment" => notes.comment = Some(text),
            // A note of a later gluebind: not this one's to read.
            _ => {}
        }
    }
    notes
}

/// `column` with `notes` as its stored comment.
pub(crate) fn with_notes(column: &ColumnDef, notes: Notes<'_>) -> ColumnDef {
    let comment = match notes {
        Notes {
            fill: None,
            entries: None,
            comment,
        } => comment.map(str::to_owned),
        Notes {
            fill,
            entries,
            comment,
        } => Some(
            [("fill", fill), ("entries", entries), ("comment", comment)]
                .into_iter()
                .filter_map(|(tag, text)| Some(format!("{MARK}{tag} {}", text?)))
                .collect(),
        ),
    };
    ColumnDef {
        comment,
        ..column.clone()
    }
}

/// The name `column`'s UNIQUE entries are stored under on kv://.
pub(crate) fn entries_name(column: &ColumnDef) -> &str {
    notes(column).entries.unwrap_or(&column.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gluesql_core::ast::DataType;

    fn column(comment: Option<&str>) -> ColumnDef {
        ColumnDef {
            name: "email".to_owned(),
            data_type: DataType::Text,
            nullable: true,
            default: None,
            unique: None,
            comment: comment.map(str::to_owned),
        }
    }

    #[test]
    fn a_plain_comment_is_the_users() {
        let c = column(Some("contact address"));
        assert_eq!(
            notes(&c),
            Notes {
                comment: Some("contact address"),
                ..Notes::default()
            }
        );
        assert_eq!(entries_name(&c), "email");
        assert_eq!(notes(&column(None)), Notes::default());
    }

    #[test]
    fn notes_read_back_as_written_in_any_combination() {
        let all = [None, Some("")];
        for fill in [None, Some("{\"Str\":\"2026\"}")] {
            for entries in [None, Some("mail")] {
                for comment in [None, Some("a note with spaces"), all[1]] {
                    let written = Notes {
                        fill,
                        entries,
                        comment,
                    };
                    let c = with_notes(&column(Some("old")), written);
                    assert_eq!(notes(&c), written, "{:?}", c.comment);
                    assert_eq!(entries_name(&c), entries.unwrap_or("email"));
                }
            }
        }
    }

    #[test]
    fn the_first_gluebind_fill_note_still_reads() {
        // Stored by gluebind before notes could be combined: one note, nothing after it.
        let c = column(Some("\u{1}fill {\"I64\":3}"));
        assert_eq!(notes(&c).fill, Some("{\"I64\":3}"));
        assert_eq!(notes(&c).comment, None);
    }

    #[test]
    fn notes_of_a_later_version_are_skipped() {
        let c = column(Some("\u{1}shape 2\u{1}comment hi"));
        assert_eq!(notes(&c).comment, Some("hi"));
        assert_eq!(notes(&c).fill, None);
    }
}
