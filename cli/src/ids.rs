//! Short ids in lists, and ids taken by any unique prefix.
//!
//! Ids are UUIDv7: their first 12 hex digits are a timestamp, so two things made within a minute
//! share their first 8 characters. A short id is therefore the first 8 characters, or as many
//! more as it takes to tell it from the others in the same list.

use crate::failure::{Failure, REFUSED};

/// The fewest characters shown of an id.
pub const SHORT: usize = 8;

/// The shortest prefix of `id`, at least [`SHORT`] characters, that no other id in `all`
/// starts with (never ending on a `-`).
pub fn short_id<'a>(id: &str, all: impl IntoIterator<Item = &'a str>) -> String {
    let others: Vec<&str> = all.into_iter().filter(|o| *o != id).collect();
    let chars: Vec<(usize, char)> = id.char_indices().collect();
    let mut n = SHORT.min(chars.len());
    loop {
        let end = chars.get(n).map_or(id.len(), |(i, _)| *i);
        let prefix = &id[..end];
        let unique = !others.iter().any(|o| o.starts_with(prefix));
        if n >= chars.len() || (unique && !prefix.ends_with('-')) {
            return prefix.to_owned();
        }
        n += 1;
    }
}

/// Short ids for a whole list, in its order.
pub fn short_ids(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .map(|id| short_id(id, ids.iter().copied()))
        .collect()
}

/// Finds the one candidate whose id is `input` or starts with it (any case). `what` names the
/// kind ("routine"), `list_with` the command that lists them. Each candidate is (id, label).
pub fn resolve<'a>(
    input: &str,
    candidates: &'a [(String, String)],
    what: &str,
    list_with: &str,
) -> Result<&'a str, Failure> {
    let wanted = input.trim().to_ascii_lowercase();
    if wanted.is_empty() {
        return Err(Failure::new(
            REFUSED,
            format!("name a {what} id ({list_with} lists them)"),
        ));
    }
    if let Some((id, _)) = candidates
        .iter()
        .find(|(id, _)| id.to_ascii_lowercase() == wanted)
    {
        return Ok(id);
    }
    let matches: Vec<&(String, String)> = candidates
        .iter()
        .filter(|(id, _)| id.to_ascii_lowercase().starts_with(&wanted))
        .collect();
    match matches.as_slice() {
        [(id, _)] => Ok(id),
        [] => Err(Failure::new(
            REFUSED,
            format!("no {what} with id {input:?} ({list_with} lists them)"),
        )
        .with_reason("NOT_FOUND")),
        many => {
            let ids: Vec<&str> = many.iter().map(|(id, _)| id.as_str()).collect();
            let shorts = short_ids(&ids);
            let listed: Vec<String> = many
                .iter()
                .zip(&shorts)
                .map(|((_, label), short)| format!("  {short}  {label}"))
                .collect();
            Err(Failure::new(
                REFUSED,
                format!(
                    "{input:?} starts {} {what} ids; type more of the one you mean:\n{}",
                    many.len(),
                    listed.join("\n")
                ),
            )
            .with_reason("AMBIGUOUS_ID"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0192f1a4-7b3c-7def-8123-456789abcdef";
    const B: &str = "0192f1a4-7b3d-7000-8000-000000000001";
    const C: &str = "0193aaaa-0000-7000-8000-000000000002";

    fn list() -> Vec<(String, String)> {
        vec![
            (A.into(), "Morning mood".into()),
            (B.into(), "Date night".into()),
            (C.into(), "Sunday call".into()),
        ]
    }

    #[test]
    fn short_ids_are_eight_characters_unless_that_is_ambiguous() {
        assert_eq!(
            short_ids(&[A, B, C]),
            ["0192f1a4-7b3c", "0192f1a4-7b3d", "0193aaaa"]
        );
        assert_eq!(short_ids(&[A, C]), ["0192f1a4", "0193aaaa"]);
        assert_eq!(short_id(A, [A]), "0192f1a4");
        // Never cut just after a dash; short ids are whole ids when ids are short.
        assert_eq!(short_id("0192f1a4-1", ["0192f1a4-2"]), "0192f1a4-1");
        assert_eq!(short_id("abc", ["abd"]), "abc");
        assert_eq!(short_id("p1", []), "p1");
    }

    #[test]
    fn any_unique_prefix_names_one() {
        let l = list();
        assert_eq!(resolve("0193", &l, "routine", "x").unwrap(), C);
        assert_eq!(resolve("0192F1A4-7B3D", &l, "routine", "x").unwrap(), B);
        assert_eq!(resolve(A, &l, "routine", "x").unwrap(), A);
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_candidates() {
        let l = list();
        let e = resolve("0192", &l, "routine", "`tapline routine list`").unwrap_err();
        assert_eq!(e.code, 5);
        assert_eq!(e.reason, Some("AMBIGUOUS_ID"));
        assert!(
            e.message.contains("0192f1a4-7b3c  Morning mood"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("0192f1a4-7b3d  Date night"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("Sunday"), "{}", e.message);
        let e = resolve("ffff", &l, "routine", "`tapline routine list`").unwrap_err();
        assert_eq!((e.code, e.reason), (5, Some("NOT_FOUND")));
        assert!(
            e.message.contains("`tapline routine list` lists them"),
            "{}",
            e.message
        );
        assert!(resolve(" ", &l, "routine", "x").is_err());
    }
}
