//! buildx's CSV: splitting a flag value into fields as strictly as Go's
//! encoding/csv reader, and writing fields back as its writer does.

use std::borrow::Cow;
use std::fmt;

use super::SpecError;
use super::parse::Parser;

impl Parser<'_> {
    /// Splits the value as one CSV record, as strictly as Go's csv reader
    /// that buildx uses, so a value buildx refuses is refused here too.
    pub(super) fn fields(&self) -> Result<Vec<String>, SpecError> {
        // Go's single-line reader tolerates one trailing newline.
        let line = self
            .value
            .strip_suffix("\r\n")
            .or_else(|| self.value.strip_suffix('\n'))
            .unwrap_or(self.value);
        self.check_quoting(line)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(line.as_bytes());
        let mut records = reader.records();
        match (records.next(), records.next()) {
            (Some(Ok(record)), None) => Ok(record.iter().map(str::to_string).collect()),
            (Some(Err(e)), _) => Err(self.error(None, format!("not valid CSV: {e}"), None)),
            (None, _) => Err(self.error(None, "the value is empty".into(), None)),
            (Some(Ok(_)), Some(_)) => {
                Err(self.error(None, "the value holds more than one CSV line".into(), None))
            }
        }
    }

    pub(super) fn check_quoting(&self, line: &str) -> Result<(), SpecError> {
        #[derive(PartialEq)]
        enum State {
            FieldStart,
            Unquoted,
            Quoted,
            QuoteInQuoted,
        }
        let mut state = State::FieldStart;
        let mut field_start = 0;
        for (at, c) in line.char_indices() {
            state = match (state, c) {
                (State::FieldStart | State::Unquoted | State::QuoteInQuoted, ',') => {
                    field_start = at + 1;
                    State::FieldStart
                }
                (State::FieldStart, '"') => State::Quoted,
                (State::FieldStart | State::Unquoted, '\n' | '\r') => {
                    return Err(self.error(
                        None,
                        "a line break outside quotes: a value is one CSV line".into(),
                        None,
                    ));
                }
                (State::Unquoted, '"') => {
                    let field = line[field_start..].split(',').next().unwrap_or_default();
                    return Err(self.error(
                        None,
                        format!("field {field:?} holds a quote but does not start with one"),
                        Some(format!(
                            "quote the whole field and double the quotes inside it: \"{}\"",
                            field.replace('"', "\"\"")
                        )),
                    ));
                }
                (State::FieldStart | State::Unquoted, _) => State::Unquoted,
                (State::Quoted, '"') => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (State::QuoteInQuoted, '"') => State::Quoted,
                (State::QuoteInQuoted, _) => {
                    return Err(self.error(
                        None,
                        format!("text after the closing quote of a quoted field, at byte {at}"),
                        Some("a quoted field ends at its closing quote; write a quote inside it as \"\"".into()),
                    ));
                }
            };
        }
        if state == State::Quoted {
            return Err(self.error(
                None,
                "a quoted field is never closed".into(),
                Some("add the closing \", or write a quote inside a quoted field as \"\"".into()),
            ));
        }
        Ok(())
    }
}

/// Quotes only the fields that need it, as Go's encoding/csv writer does.
pub(super) fn write_csv(
    f: &mut fmt::Formatter<'_>,
    fields: &[(&str, Cow<'_, str>)],
) -> fmt::Result {
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        let field = format!("{key}={value}");
        if field.contains([',', '"', '\n', '\r']) {
            write!(f, "\"{}\"", field.replace('"', "\"\""))?;
        } else {
            f.write_str(&field)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::spec::test_support::*;

    #[test]
    fn csv_quoting_follows_go_encoding_csv() {
        let cases = [
            ("type=local,\"dest=a,b\"", "a,b"),
            ("\"type=local\",\"dest=say \"\"hi\"\"\"", "say \"hi\""),
            ("type=local,dest=a=b", "a=b"),
            ("type=local,dest= spaced ", " spaced "),
            ("type=local,dest=out\n", "out"),
            ("type=local,dest=out\r\n", "out"),
            ("type=local,\"dest=line\nbreak\"", "line\nbreak"),
        ];
        for (value, dest) in cases {
            assert_eq!(
                local_dest(&one_to(value)).0,
                std::path::Path::new(dest),
                "{value:?}"
            );
        }
    }
}
