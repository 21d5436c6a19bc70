//! One message saying why a file gave no frame, or fewer than it holds.
//!
//! A reader reports each refused record on its own (`Recording::errors`); a file of
//! 10,000 packets refused for one reason would make 10,000 messages. The summary
//! groups them by what was wrong, counts each group, gives the first problem with its
//! byte offset and, where a reader option would fix it, names that option. `read_csi`
//! raises it as `CsiFormatError` when no frame was read and warns with it when some
//! were refused; `wifi-densepose inspect` and `Server.replay` show it too.

use std::path::Path;

use super::detect::detect_format;
use super::error::CsiError;
use super::CsiFormat;

/// At most this many groups are listed; the rest are counted.
const MAX_GROUPS: usize = 4;

/// Errors of one kind: what was wrong, how often, and the first occurrence.
pub struct Group<'a> {
    pub problem: String,
    pub count: usize,
    pub first: &'a CsiError,
}

/// `errors` grouped by problem (line numbers of text formats set aside), most
/// frequent first, ties in file order.
pub fn group(errors: &[CsiError]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for e in errors {
        let problem = strip_line_number(&e.problem()).to_string();
        match groups.iter_mut().find(|g| g.problem == problem) {
            Some(g) => g.count += 1,
            None => groups.push(Group {
                problem,
                count: 1,
                first: e,
            }),
        }
    }
    // A stable sort keeps file order among equal counts.
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

/// "line 12: field x..." → "field x...": the same problem on another line is the same kind.
fn strip_line_number(problem: &str) -> &str {
    problem
        .strip_prefix("line ")
        .and_then(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0).then(|| rest[digits..].strip_prefix(": "))?
        })
        .unwrap_or(problem)
}

/// "3 problems: 2 × A (first at byte 10), 1 × B (at byte 90)".
pub fn describe(errors: &[CsiError]) -> String {
    let groups = group(errors);
    let listed: Vec<String> = groups
        .iter()
        .take(MAX_GROUPS)
        .map(|g| {
            let at = if g.count == 1 { "at" } else { "first at" };
            format!(
                "{} × {} ({at} byte {})",
                g.count,
                g.problem,
                g.first.offset()
            )
        })
        .collect();
    let mut text = format!(
        "{} {}: {}",
        errors.len(),
        if errors.len() == 1 {
            "problem"
        } else {
            "problems"
        },
        listed.join("; ")
    );
    if groups.len() > MAX_GROUPS {
        let rest: usize = groups[MAX_GROUPS..].iter().map(|g| g.count).sum();
        text.push_str(&format!(
            "; and {rest} more of {} other kinds",
            groups.len() - MAX_GROUPS
        ));
    }
    text
}

/// The option that fixes the most frequent problem a reader option can fix.
pub fn fix(errors: &[CsiError]) -> Option<String> {
    group(errors)
        .iter()
        .find_map(|g| g.first.fix().map(str::to_string))
}

/// The error for a file that gave no frame. `named` is whether the caller named the
/// format (if so, and the file looks like another one, the fix is to name that one).
pub fn no_frames(
    path: &Path,
    format: CsiFormat,
    named: bool,
    stored: u64,
    errors: &[CsiError],
) -> CsiError {
    let file = path.display().to_string();
    let what = if stored == 0 {
        format!("the file is empty: no {} frame", format.name())
    } else {
        format!("no {} frame in {stored} bytes", format.name())
    };
    let mut summary = if stored == 0 && errors.is_empty() {
        what
    } else if errors.is_empty() {
        format!(
            "{what}: nothing from byte 0 to the end is a record this reader recognises; \
             is the format right?"
        )
    } else {
        let first = &errors[0];
        format!(
            "{what}; {}. First problem: byte {}: {}",
            describe(errors),
            first.offset(),
            first.problem()
        )
    };
    let fix = fix(errors).or_else(|| {
        let looks_like = named.then(|| detected(path)).flatten()?;
        (looks_like != format).then(|| {
            format!(
                "format=\"{}\" (the file looks like {}) or no format to detect it",
                looks_like.name(),
                looks_like.name()
            )
        })
    });
    if let Some(fix) = fix {
        summary.push_str(&format!(". Fix: read with {fix}"));
    }
    CsiError::NoFrames {
        offset: errors.first().map_or(0, CsiError::offset),
        file,
        summary,
    }
}

/// What detection says the file at `path` is, if anything.
fn detected(path: &Path) -> Option<CsiFormat> {
    use std::io::Read;
    let mut head = Vec::new();
    super::file::RegularFile::open(path)
        .ok()?
        .take(super::detect::DETECT_BYTES as u64)
        .read_to_end(&mut head)
        .ok()?;
    detect_format(&head).ok()
}

/// The one-message summary of a file that gave `frames` frames and some problems.
pub fn partial(file: &str, frames: usize, errors: &[CsiError]) -> String {
    let mut text = format!(
        "{file}: {frames} {} read; {}",
        if frames == 1 { "frame" } else { "frames" },
        describe(errors)
    );
    if let Some(fix) = fix(errors) {
        text.push_str(&format!(". Fix: read with {fix}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(offset: u64, problem: &str) -> CsiError {
        CsiError::malformed("f.csv", offset, problem)
    }

    #[test]
    fn problems_are_grouped_counted_and_the_fix_named() {
        let errors = vec![
            err(5, "line 2: no '[' opening the CSI list"),
            CsiError::NeedsOption {
                file: "f.csv".into(),
                offset: 40,
                problem: "cannot tell the chip".into(),
                option: "chip=\"x\"".into(),
            },
            err(90, "line 9: no '[' opening the CSI list"),
        ];
        let text = describe(&errors);
        assert_eq!(
            text,
            "3 problems: 2 × no '[' opening the CSI list (first at byte 5); \
             1 × cannot tell the chip (at byte 40)"
        );
        assert_eq!(fix(&errors).as_deref(), Some("chip=\"x\""));
        let e = no_frames(Path::new("f.csv"), CsiFormat::Esp32, false, 100, &errors);
        let msg = e.to_string();
        assert!(
            msg.starts_with("f.csv: no esp32 frame in 100 bytes; 3 problems"),
            "{msg}"
        );
        assert!(
            msg.contains("First problem: byte 5: line 2: no '['"),
            "{msg}"
        );
        assert!(msg.ends_with("Fix: read with chip=\"x\""), "{msg}");
        assert_eq!(e.offset(), 5);
    }

    #[test]
    fn many_kinds_are_cut_to_a_few_and_counted() {
        let errors: Vec<CsiError> = (0..10).map(|i| err(i, &format!("kind {i}"))).collect();
        let text = describe(&errors);
        assert!(text.ends_with("; and 6 more of 6 other kinds"), "{text}");
        assert_eq!(strip_line_number("line 12: x"), "x");
        assert_eq!(strip_line_number("line x: y"), "line x: y");
    }
}
