//! Rendering a watch template (Jinja syntax, minijinja) with the answers
//! known so far, and writing its output atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::api::{Answer, Entry, Lookup};

/// A rendering, and the lookups it used.
#[derive(Debug)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// Every lookup the template called.
    pub used: BTreeSet<Lookup>,
    /// Those without an answer yet (rendered as empty lists): fetch them
    /// and render again.
    pub missing: BTreeSet<Lookup>,
}

/// Render `source` (named `name` in errors) with the answers in `known`:
/// `service(name)` is a list of `{host, ip, port}`, `hosts(name)` a list of
/// `{host, ip}`, each sorted. An undefined variable is an error.
pub fn render(
    name: &str,
    source: &str,
    known: &BTreeMap<Lookup, Answer>,
) -> Result<Rendered, minijinja::Error> {
    let calls: Arc<Mutex<BTreeSet<Lookup>>> = Arc::default();
    let answers: Arc<BTreeMap<Lookup, Vec<Entry>>> =
        Arc::new(known.iter().map(|(k, a)| (k.clone(), a.entries.clone())).collect());
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(SyntaxConfig::builder().keep_trailing_newline(true).build()?);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    for (function, make) in [
        ("service", Lookup::Service as fn(String) -> Lookup),
        ("hosts", Lookup::Hosts as fn(String) -> Lookup),
    ] {
        let (calls, answers) = (Arc::clone(&calls), Arc::clone(&answers));
        env.add_function(function, move |name: String| -> Value {
            let lookup = make(name.trim_end_matches('.').to_ascii_lowercase());
            let entries = answers.get(&lookup).cloned().unwrap_or_default();
            if let Ok(mut calls) = calls.lock() {
                calls.insert(lookup);
            }
            entries.iter().map(entry_value).collect()
        });
    }
    env.add_template(name, source)?;
    let text = env.get_template(name)?.render(())?;
    let used = calls.lock().map(|c| c.clone()).unwrap_or_default();
    let missing = used.iter().filter(|l| !known.contains_key(*l)).cloned().collect();
    Ok(Rendered { text, used, missing })
}

fn entry_value(e: &Entry) -> Value {
    let mut pairs =
        vec![("host", Value::from(e.host.as_str())), ("ip", Value::from(e.ip.as_str()))];
    if let Some(port) = e.port {
        pairs.push(("port", Value::from(port)));
    }
    Value::from_pairs(pairs)
}

/// Write `text` to `out` unless it already holds exactly that: into a
/// temporary file beside it, then renamed over it (readers see the old
/// file or the new, never a part), keeping the old file's mode. Returns
/// whether the file changed.
pub fn write_if_changed(out: &Path, text: &str) -> std::io::Result<bool> {
    if std::fs::read(out).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".mesos-dns-watch").tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    let mode = match std::fs::metadata(out) {
        Ok(m) => m.permissions(),
        Err(_) => std::os::unix::fs::PermissionsExt::from_mode(0o644),
    };
    file.as_file().set_permissions(mode)?;
    file.persist(out).map_err(|e| e.error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, ip: &str, port: Option<u16>) -> Entry {
        Entry { host: host.into(), ip: ip.into(), port }
    }

    #[test]
    fn a_template_sees_its_lookups_and_names_the_missing_ones() {
        let source = "{% for s in service('_web._tcp.marathon.mesos.') %}server {{ s.ip }}:{{ s.port }};\n{% endfor %}{{ hosts('db.mesos') | length }}\n";
        let first = render("t", source, &BTreeMap::new()).unwrap();
        assert_eq!(first.text, "0\n");
        let web = Lookup::Service("_web._tcp.marathon.mesos".into());
        let db = Lookup::Hosts("db.mesos".into());
        assert_eq!(first.missing, BTreeSet::from([web.clone(), db.clone()]));
        let mut known = BTreeMap::new();
        let entries = vec![entry("a.", "10.0.0.1", Some(80)), entry("b.", "10.0.0.2", Some(81))];
        known.insert(web, Answer { index: 1, entries });
        known.insert(db, Answer { index: 1, entries: vec![entry("db.mesos.", "10.0.0.9", None)] });
        let second = render("t", source, &known).unwrap();
        assert_eq!(second.text, "server 10.0.0.1:80;\nserver 10.0.0.2:81;\n1\n");
        assert!(second.missing.is_empty());
    }

    #[test]
    fn template_errors_say_where() {
        let e = render("up.tmpl", "a\n{{ nope }}", &BTreeMap::new()).unwrap_err();
        assert_eq!(e.line(), Some(2), "{e}");
        assert!(render("up.tmpl", "{% for %}", &BTreeMap::new()).is_err());
    }

    #[test]
    fn files_are_replaced_whole_keeping_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("upstream.conf");
        assert!(write_if_changed(&out, "one\n").unwrap());
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o644);
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!write_if_changed(&out, "one\n").unwrap(), "same bytes: untouched");
        assert!(write_if_changed(&out, "two\n").unwrap());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "two\n");
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
