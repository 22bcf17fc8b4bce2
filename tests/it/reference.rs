//! The record sets we generate for every real fixture equal what the
//! original Go Mesos-DNS generated for it (`fixtures/reference-records`),
//! apart from our documented differences (docs/differences.md): names and values that cannot
//! exist in DNS, and raw DiscoveryInfo names that can never be looked up,
//! are dropped from the original's side before comparing, and names are
//! compared lower-cased (DNS is case-insensitive; we publish raw names
//! lower-cased).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use mesos_dns::config::Config;
use mesos_dns::generate::{StaticResolver, generate};
use mesos_dns::labels::is_valid_dns_name;
use mesos_dns::records::RecordSet;
use mesos_dns::state::State;

fn reference_dir() -> PathBuf {
    crate::harness::fixtures().join("reference-records")
}

fn read_state(dir: &Path) -> Vec<u8> {
    let plain = dir.join("state.json");
    if plain.exists() {
        return std::fs::read(plain).unwrap();
    }
    let gz = std::fs::read(dir.join("state.json.gz")).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    out
}

type Sets = BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>>;

/// A name a client can look up: valid in DNS and made only of the
/// characters our names are made of.
fn lookupable(name: &str) -> bool {
    is_valid_dns_name(name)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn original_sets(axfr: &serde_json::Value) -> Sets {
    let mut out = Sets::new();
    for kind in ["As", "AAAAs", "SRVs"] {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let Some(records) = axfr["Records"][kind].as_object() else {
            out.insert(kind, map);
            continue;
        };
        for (name, values) in records {
            let name = name.to_lowercase();
            if !lookupable(&name) {
                continue;
            }
            for v in values.as_array().unwrap() {
                let v = v.as_str().unwrap().to_lowercase();
                let keep = match kind {
                    "SRVs" => v
                        .rsplit_once(':')
                        .is_some_and(|(t, p)| lookupable(t) && p.parse::<u16>().is_ok()),
                    _ => v.parse::<std::net::IpAddr>().is_ok(),
                };
                if keep {
                    map.entry(name.clone()).or_default().insert(v);
                }
            }
        }
        out.insert(kind, map);
    }
    out
}

fn our_sets(axfr: &serde_json::Value) -> Sets {
    let mut out = Sets::new();
    for kind in ["As", "AAAAs", "SRVs"] {
        let map = axfr[kind]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let vals = v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned());
                (k.clone(), vals.collect())
            })
            .collect();
        out.insert(kind, map);
    }
    out
}

fn diff(ours: &Sets, theirs: &Sets) -> Vec<String> {
    let mut problems = Vec::new();
    for (kind, their_map) in theirs {
        let our_map = &ours[kind];
        let names: BTreeSet<&String> = their_map.keys().chain(our_map.keys()).collect();
        for name in names {
            let a = our_map.get(name).cloned().unwrap_or_default();
            let b = their_map.get(name).cloned().unwrap_or_default();
            if a != b {
                problems.push(format!(
                    "{kind} {name}: ours-only {:?}, original-only {:?}",
                    a.difference(&b).collect::<Vec<_>>(),
                    b.difference(&a).collect::<Vec<_>>()
                ));
            }
        }
    }
    problems
}

/// What `generate` makes of a reference fixture's state and config.
fn generated(dir: &Path) -> RecordSet {
    let config_text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config = Config::from_json(&config_text, dir.join("config.json")).unwrap();
    let state = State::from_slice(&read_state(dir)).unwrap();
    generate(&state, &config, &config.masters, &StaticResolver::localhost_only()).unwrap()
}

#[test]
fn every_fixture_matches_the_original_axfr() {
    let mut checked = 0;
    let mut total = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(reference_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let rs = generated(&dir);
        let ours = our_sets(&serde_json::to_value(rs.axfr_records()).unwrap());
        let theirs: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("axfr.json")).unwrap()).unwrap();
        let theirs = original_sets(&theirs);
        let compared: usize =
            theirs.values().map(|m| m.values().map(|v| v.len()).sum::<usize>()).sum();
        assert!(compared > 10, "{}: only {compared} records compared", dir.display());
        total += compared;
        let problems = diff(&ours, &theirs);
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}", dir.display(), problems.join("\n  ")));
        }
        checked += 1;
    }
    assert!(checked >= 11, "only {checked} reference fixtures found");
    eprintln!("{checked} fixtures, {total} records compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Per framework and task, the set of records the original attributed to
/// each task in `/v1/enumerate`, normalised like the axfr comparison.
fn enumeration_sets(
    doc: &serde_json::Value,
) -> BTreeMap<(String, String, String), BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for fw in doc["frameworks"].as_array().unwrap() {
        let fname = fw["name"].as_str().unwrap().to_owned();
        for t in fw["tasks"].as_array().into_iter().flatten() {
            let key = (
                fname.clone(),
                t["id"].as_str().unwrap().to_owned(),
                t["name"].as_str().unwrap().to_owned(),
            );
            let set: &mut BTreeSet<String> = out.entry(key).or_default();
            for r in t["records"].as_array().into_iter().flatten() {
                let name = r["name"].as_str().unwrap().to_lowercase();
                let host = r["host"].as_str().unwrap().to_lowercase();
                let rtype = r["rtype"].as_str().unwrap();
                let ok = lookupable(&name)
                    && match rtype {
                        "SRV" => host.rsplit_once(':').is_some_and(|(t, _)| lookupable(t)),
                        _ => host.parse::<std::net::IpAddr>().is_ok(),
                    };
                if ok {
                    set.insert(format!("{rtype} {name} {host}"));
                }
            }
        }
    }
    out
}

#[test]
fn every_fixture_matches_the_original_enumeration() {
    for entry in std::fs::read_dir(reference_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let rs = generated(&dir);
        let ours = enumeration_sets(&serde_json::to_value(rs.enumeration()).unwrap());
        let theirs: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("enumerate.json")).unwrap()).unwrap();
        let theirs = enumeration_sets(&theirs);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{}",
            dir.display()
        );
        for (k, v) in &theirs {
            assert_eq!(&ours[k], v, "{} task {k:?}", dir.display());
        }
    }
}
