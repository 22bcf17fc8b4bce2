//! The crate's layering (`src/`), checked: each top-level module has a rank, and a
//! module may use only modules of a lower rank (inside its own folder, it
//! uses what it likes). So data flows one way, detect → fetch → state →
//! generate → records → zone → snapshot → dns/http, with the leaves below
//! everything and the wiring (`app`) above; nothing imports `app`, and
//! serving (`dns`, `http`) never imports the scheduler (`refresh`).
//!
//! The check reads the source, as a reader would: every `crate::x` path in
//! a file names module `x`.

use std::collections::BTreeMap;
use std::path::Path;

/// Every top-level module and its rank.
const RANKS: &[(&str, u8)] = &[
    // Leaves: protocol, addresses, counters, memory, flags.
    ("proto", 0),
    ("addr", 0),
    ("metrics", 0),
    ("memory", 0),
    ("cli", 0),
    ("labels", 1),
    ("config", 1),
    // The stages, each above what it reads.
    ("detect", 2),
    ("fetch", 2),
    ("state", 2),
    ("records", 2),
    ("generate", 3),
    ("zone", 3),
    ("snapshot", 4),
    // The scheduler and the two servers: none uses another.
    ("refresh", 5),
    ("dns", 5),
    ("http", 5),
    // The wiring, and the client mode.
    ("app", 6),
    ("watch", 6),
];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|&(_, r)| r)
}

/// The top-level module a source file belongs to (`None`: the crate root).
fn module_of(path: &Path, src: &Path) -> Option<String> {
    let first = path.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?;
    let name = name.strip_suffix(".rs").unwrap_or(name);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The modules a file's text names through `crate::`.
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let name: String =
            rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if !name.is_empty() {
            found.push(name);
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = BTreeMap::new();
    for file in &files {
        // The crate root declares every module.
        let Some(module) = module_of(file, &src) else { continue };
        let Some(own) = rank(&module) else {
            panic!("module {module} has no rank in RANKS");
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            if used == module {
                continue;
            }
            let Some(theirs) = rank(&used) else {
                panic!("{} uses crate::{used}, which has no rank", file.display());
            };
            if theirs >= own {
                wrong.insert(format!("{} -> {used}", file.display()), (own, theirs));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that do not point down (rank: from, to): {wrong:#?}");
}

#[test]
fn the_check_sees_imports() {
    assert_eq!(uses("use crate::zone::Zone;\nlet x = crate::proto::rtype::A;"), ["zone", "proto"]);
    let src = Path::new("/x/src");
    assert_eq!(module_of(Path::new("/x/src/dns/wire.rs"), src).as_deref(), Some("dns"));
    assert_eq!(module_of(Path::new("/x/src/zone.rs"), src).as_deref(), Some("zone"));
    assert_eq!(module_of(Path::new("/x/src/lib.rs"), src), None);
}
