//! Time-zone names as people type them: any letter case, and the old aliases (`US/Eastern`,
//! `Asia/Calcutta`) that stand for a zone under its current name, which is what is stored.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono_tz::{TZ_VARIANTS, Tz};

/// `ALIAS ZONE` lines (see the file's header).
const LINKS: &str = include_str!("zone_links.txt");

/// Every zone and alias by its lower-case name, each giving the zone it stands for.
static BY_NAME: LazyLock<HashMap<String, Tz>> = LazyLock::new(|| {
    let mut names: HashMap<String, Tz> = TZ_VARIANTS
        .iter()
        .map(|tz| (tz.name().to_ascii_lowercase(), *tz))
        .collect();
    for line in LINKS.lines().filter(|l| !l.starts_with('#')) {
        let Some((alias, zone)) = line.split_once(' ') else {
            continue;
        };
        if let Ok(zone) = zone.parse::<Tz>() {
            names.insert(alias.to_ascii_lowercase(), zone);
        }
    }
    names
});

/// The zone `name` stands for, under its current name, or `None` for no known zone.
pub fn canonical(name: &str) -> Option<Tz> {
    BY_NAME.get(&name.trim().to_ascii_lowercase()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_case_and_old_aliases_give_the_current_name() {
        for (typed, stored) in [
            ("Europe/Paris", "Europe/Paris"),
            ("europe/paris", "Europe/Paris"),
            ("AMERICA/NEW_YORK", "America/New_York"),
            ("US/Eastern", "America/New_York"),
            ("us/pacific", "America/Los_Angeles"),
            ("Asia/Calcutta", "Asia/Kolkata"),
            ("Europe/Kiev", "Europe/Kyiv"),
            ("UTC", "UTC"),
            ("Etc/UTC", "UTC"),
            ("utc", "UTC"),
            ("Zulu", "UTC"),
            ("GMT", "GMT"),
        ] {
            assert_eq!(canonical(typed).map(|z| z.name()), Some(stored), "{typed}");
        }
        for unknown in ["", "Mars/Olympus", "Europe/", "Paris", "US/Eastern/x"] {
            assert_eq!(canonical(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn every_alias_names_a_known_zone() {
        for line in LINKS.lines().filter(|l| !l.starts_with('#')) {
            let (alias, zone) = line.split_once(' ').expect("ALIAS ZONE");
            assert!(zone.parse::<Tz>().is_ok(), "{alias} -> {zone}");
            assert_ne!(alias, zone);
        }
    }
}
