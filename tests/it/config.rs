//! Integration tests of the config file: parsing, defaults, every
//! validation rule (good and bad), normalisation, errors and redaction.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use mesos_dns::config::{
    Config, ConfigError, Credentials, IpSource, MesosAuth, ZkUrl, nameservers_from_resolv_conf,
    parse_master, parse_resolver,
};
use serde_json::{Value, json};

const FILE: &str = "/test/config.json";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_json(text, PathBuf::from(FILE))
}

fn parse_value(v: &Value) -> Result<Config, ConfigError> {
    parse(&v.to_string())
}

/// `v` with a master added unless it sets masters or zk itself.
fn with_master(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        let has_source =
            obj.keys().any(|k| k.eq_ignore_ascii_case("masters") || k.eq_ignore_ascii_case("zk"));
        if !has_source {
            obj.insert("masters".into(), json!(["10.0.0.1:5050"]));
        }
    }
    v
}

fn good(v: Value) -> Config {
    match parse_value(&with_master(v.clone())) {
        Ok(c) => c,
        Err(e) => panic!("{v} rejected: {e}"),
    }
}

fn bad(v: Value) -> ConfigError {
    match parse_value(&with_master(v.clone())) {
        Ok(c) => panic!("{v} accepted: {c:?}"),
        Err(e) => e,
    }
}

/// Asserts that `v` is rejected naming `key`, and that the message is one line
/// mentioning the key and `value_fragment`.
fn bad_key(v: Value, key: &str, value_fragment: &str) -> String {
    let e = bad(v.clone());
    let msg = e.to_string();
    assert_eq!(e.key(), Some(key), "{v}: wrong key in {msg}");
    assert!(msg.contains(&format!("key \"{key}\"")), "{msg}");
    assert!(msg.contains(value_fragment), "{v}: {msg} lacks {value_fragment}");
    assert!(!msg.contains('\n'), "multi-line: {msg}");
    assert!(msg.starts_with(&format!("config file \"{FILE}\": ")), "{msg}");
    msg
}

fn write_file(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(contents).unwrap();
    path
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_match_the_original() {
    let c = Config::default();
    assert!(c.masters.is_empty());
    assert_eq!(c.zk, "");
    assert_eq!(c.zk_detection_timeout, 30);
    assert_eq!(c.refresh_seconds, 60);
    assert_eq!(c.state_timeout_seconds, 300);
    assert_eq!(c.ttl, 60);
    assert_eq!(c.domain, "mesos");
    assert_eq!(c.port, 53);
    assert_eq!(c.resolvers, ["8.8.8.8"]);
    assert!(c.zone_resolvers.is_empty());
    assert_eq!(c.timeout, 5);
    assert_eq!(c.listener, "0.0.0.0");
    assert_eq!(c.http_listener, "0.0.0.0");
    assert_eq!(c.http_port, 8123);
    assert!(c.dns_on && c.http_on && c.external_on && c.recurse_on);
    assert!(c.enumeration_on && c.set_truncate_bit);
    assert!(!c.enforce_rfc952);
    assert_eq!(c.ip_sources, [IpSource::Netinfo, IpSource::Mesos, IpSource::Host]);
    assert_eq!(c.srv_record_default_weight, 1);
    assert_eq!(c.soa_mname, "ns1.mesos");
    assert_eq!(c.soa_rname, "root.ns1.mesos");
    assert_eq!((c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl), (60, 600, 86400, 60));
    assert!(!c.mesos_https_on);
    assert_eq!((c.ca_cert_file.as_str(), c.cert_file.as_str(), c.key_file.as_str()), ("", "", ""));
    assert_eq!(c.mesos_authentication, MesosAuth::None);
    assert_eq!(c.mesos_credentials, Credentials::default());
    assert_eq!(c.iam_config_file, "");
    assert_eq!(c.file, PathBuf::new());
}

#[test]
fn minimal_file_gets_defaults_and_normalised_soa() {
    let c = good(json!({}));
    let mut expected = Config {
        masters: vec!["10.0.0.1:5050".into()],
        file: PathBuf::from(FILE),
        ..Config::default()
    };
    expected.soa_mname = "ns1.mesos.".into();
    expected.soa_rname = "root.ns1.mesos.".into();
    assert_eq!(c, expected);
}

#[test]
fn the_original_sample_config_loads() {
    let sample = r#"{
      "zk": "zk://127.0.0.1:2181/mesos",
      "masters": ["127.0.0.1:5050"],
      "stateTimeoutSeconds": 300,
      "refreshSeconds": 60,
      "ttl": 60,
      "domain": "mesos",
      "ns": "ns1",
      "port": 8053,
      "resolvers": ["8.8.8.8"],
      "timeout": 5,
      "listener": "0.0.0.0",
      "SOAMname": "ns1.mesos",
      "SOARname": "root.ns1.mesos",
      "SOARefresh": 60,
      "SOARetry":   600,
      "SOAExpire":  86400,
      "SOAMinttl": 60,
      "dnson": true,
      "httpon": true,
      "httpport": 8123,
      "externalon": true,
      "recurseon": true,
      "srvRecordDefaultWeight": 1,
      "IPSources": ["mesos", "host"],
      "EnforceRFC952": false,
      "EnumerationOn": true
    }"#;
    let c = parse(sample).unwrap();
    assert_eq!(c.port, 8053);
    assert_eq!(c.zk, "zk://127.0.0.1:2181/mesos");
    assert_eq!(c.ip_sources, [IpSource::Mesos, IpSource::Host]);
}

#[test]
fn every_key_is_read() {
    let c = good(json!({
        "masters": ["1.1.1.1:5050"], "zk": "zk://h:2181/mesos", "zkDetectionTimeout": 0,
        "refreshSeconds": 5, "stateTimeoutSeconds": 7, "ttl": 9, "domain": "dc.example",
        "port": 5353, "resolvers": ["1.0.0.1"], "zoneResolvers": {"weave": ["172.17.0.1"]},
        "timeout": 3, "listener": "127.0.0.1", "httpListener": "::1", "httpport": 8080,
        "dnson": true, "httpon": false, "externalon": true, "recurseon": false,
        "enumerationon": false, "SetTruncateBit": false, "enforceRFC952": true,
        "IPSources": ["docker", "host"], "SRVRecordDefaultWeight": 10,
        "SOAMname": "ns.dc.example", "SOARname": "admin@dc.example", "SOASerial": 7,
        "SOARefresh": 1, "SOARetry": 2, "SOAExpire": 3, "SOAMinttl": 4,
        "mesosHTTPSOn": true, "caCertFile": "/ca.pem", "certFile": "/c.pem", "keyFile": "/k.pem",
        "mesosAuthentication": "basic",
        "mesosCredentials": {"principal": "p", "secret": "s"},
        "IAMConfigFile": "/iam.json", "File": "/elsewhere.json"
    }));
    assert_eq!(c.masters, ["1.1.1.1:5050"]);
    assert_eq!(c.zk, "zk://h:2181/mesos");
    assert_eq!(c.zk_detection_timeout, 0);
    assert_eq!((c.refresh_seconds, c.state_timeout_seconds, c.ttl), (5, 7, 9));
    assert_eq!(c.domain, "dc.example");
    assert_eq!(c.port, 5353);
    assert_eq!(c.resolvers, ["1.0.0.1"]);
    assert_eq!(c.zone_resolvers["weave"], ["172.17.0.1"]);
    assert_eq!(c.timeout, 3);
    assert_eq!((c.listener.as_str(), c.http_listener.as_str()), ("127.0.0.1", "::1"));
    assert_eq!(c.http_port, 8080);
    assert!(c.dns_on && !c.http_on && c.external_on && !c.recurse_on);
    assert!(!c.enumeration_on && !c.set_truncate_bit && c.enforce_rfc952);
    assert_eq!(c.ip_sources, [IpSource::Docker, IpSource::Host]);
    assert_eq!(c.srv_record_default_weight, 10);
    assert_eq!(c.soa_mname, "ns.dc.example.");
    assert_eq!(c.soa_rname, "admin.dc.example.");
    assert_eq!((c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl), (1, 2, 3, 4));
    assert!(c.mesos_https_on);
    assert_eq!(c.ca_cert_file, "/ca.pem");
    assert_eq!((c.cert_file.as_str(), c.key_file.as_str()), ("/c.pem", "/k.pem"));
    assert_eq!(c.mesos_authentication, MesosAuth::Basic);
    assert_eq!(c.mesos_credentials.principal, "p");
    assert_eq!(c.mesos_credentials.secret, "s");
    assert_eq!(c.iam_config_file, "/iam.json");
    // "File" in the JSON does not override the path actually read.
    assert_eq!(c.file, PathBuf::from(FILE));
}

// ------------------------------------------------------ key matching, types

#[test]
fn keys_are_case_insensitive() {
    for k in ["HttpPort", "httpport", "HTTPPORT", "HTTPPort", "hTtPpOrT"] {
        assert_eq!(good(json!({ k: 9000 })).http_port, 9000, "{k}");
    }
    for k in ["DnsOn", "dnson", "DNSON", "DNSOn"] {
        assert!(!good(json!({ k: false })).dns_on, "{k}");
    }
    assert_eq!(good(json!({"SrvRecordDefaultWeight": 3})).srv_record_default_weight, 3);
    assert_eq!(good(json!({"ipsources": ["host"]})).ip_sources, [IpSource::Host]);
    assert_eq!(good(json!({"MASTERS": ["1.2.3.4:1"]})).masters, ["1.2.3.4:1"]);
    let c = good(json!({"MesosCredentials": {"PRINCIPAL": "p", "Secret": "s"}}));
    assert_eq!(c.mesos_credentials.principal, "p");
    assert_eq!(c.mesos_credentials.secret, "s");
}

#[test]
fn duplicate_keys_last_one_wins() {
    let c = parse(r#"{"masters":["1.2.3.4:1"],"httpport":1,"HttpPort":2}"#).unwrap();
    assert_eq!(c.http_port, 2);
    let c = parse(r#"{"masters":["1.2.3.4:1"],"HttpPort":2,"httpport":1}"#).unwrap();
    assert_eq!(c.http_port, 1);
    let c = parse(r#"{"masters":["1.2.3.4:1"],"port":1,"port":3}"#).unwrap();
    assert_eq!(c.port, 3);
}

#[test]
fn unknown_keys_are_ignored() {
    let c = good(json!({"email": "root@example.com", "ns": "ns1", "nested": {"a": [1]}}));
    assert_eq!(c.domain, "mesos");
    good(json!({"mesosCredentials": {"principal": "p", "role": "x"}}));
}

#[test]
fn integral_floats_are_integers() {
    assert_eq!(good(json!({"refreshSeconds": 60.0})).refresh_seconds, 60);
    assert_eq!(parse(r#"{"masters":["a:1"],"ttl":1e2}"#).unwrap().ttl, 100);
    assert_eq!(good(json!({"port": 65535.0})).port, 65535);
    bad_key(json!({"refreshSeconds": 60.5}), "refreshSeconds", "60.5");
    bad_key(json!({"port": -0.5}), "port", "-0.5");
}

#[test]
fn integers_out_of_range_are_errors() {
    let msg = bad_key(json!({"port": 70000}), "port", "70000");
    assert!(msg.contains("0 to 65535"), "{msg}");
    bad_key(json!({"httpport": 65536}), "httpport", "65536");
    bad_key(json!({"ttl": -1}), "ttl", "-1");
    bad_key(json!({"ttl": 4294967296u64}), "ttl", "4294967296");
    bad_key(json!({"SRVRecordDefaultWeight": 70000}), "SRVRecordDefaultWeight", "70000");
    bad_key(json!({"SOAMinttl": -5}), "SOAMinttl", "-5");
    bad_key(json!({"refreshSeconds": 1e20}), "refreshSeconds", "");
    bad_key(json!({"SOASerial": -1}), "SOASerial", "-1");
    assert_eq!(good(json!({"port": 0})).port, 0);
    assert_eq!(good(json!({"ttl": 4294967295u64})).ttl, u32::MAX);
}

#[test]
fn rate_limit_is_responses_a_second_and_off_by_default() {
    assert_eq!(good(json!({})).rate_limit, 0);
    assert_eq!(good(json!({"rateLimit": 200})).rate_limit, 200);
    assert_eq!(good(json!({"RATELIMIT": 5})).rate_limit, 5);
    assert_eq!(good(json!({"rateLimit": null})).rate_limit, 0);
    assert_eq!(good(json!({"rateLimit": 7})).redacted()["RateLimit"], json!(7));
    bad_key(json!({"rateLimit": -1}), "rateLimit", "-1");
    bad_key(json!({"rateLimit": 2.5}), "rateLimit", "2.5");
    bad_key(json!({"rateLimit": "100"}), "rateLimit", "\"100\"");
    bad_key(json!({"rateLimit": 4294967296u64}), "rateLimit", "4294967296");
}

#[test]
fn wrong_types_are_errors() {
    bad_key(json!({"port": "53"}), "port", "\"53\"");
    bad_key(json!({"masters": "1.2.3.4:5050"}), "masters", "\"1.2.3.4:5050\"");
    bad_key(json!({"masters": [5050]}), "masters", "5050");
    bad_key(json!({"zk": 1}), "zk", "1");
    bad_key(json!({"dnson": "true"}), "dnson", "\"true\"");
    bad_key(json!({"httpon": 1}), "httpon", "1");
    bad_key(json!({"resolvers": {"a": 1}}), "resolvers", "{\"a\":1}");
    bad_key(json!({"zoneResolvers": ["8.8.8.8"]}), "zoneResolvers", "[\"8.8.8.8\"]");
    bad_key(json!({"zoneResolvers": {"weave": "8.8.8.8"}}), "zoneResolvers", "\"8.8.8.8\"");
    bad_key(json!({"IPSources": "host"}), "IPSources", "\"host\"");
    bad_key(json!({"domain": ["mesos"]}), "domain", "[\"mesos\"]");
    bad_key(json!({"mesosAuthentication": true}), "mesosAuthentication", "true");
    bad_key(json!({"mesosCredentials": {"principal": 7}}), "mesosCredentials.principal", "7");
    bad_key(json!({"File": 3}), "File", "3");
}

#[test]
fn null_keeps_scalars_and_empties_lists() {
    let c = good(json!({"port": null, "domain": null, "dnson": null, "mesosCredentials": null}));
    assert_eq!((c.port, c.domain.as_str(), c.dns_on), (53, "mesos", true));
    let c = good(json!({"externalon": false, "resolvers": null, "zoneResolvers": null}));
    assert!(c.resolvers.is_empty());
    assert!(c.zone_resolvers.is_empty());
    bad_key(json!({"IPSources": null}), "IPSources", "[]");
}

#[test]
fn long_values_are_shortened_in_errors() {
    let huge: Vec<u32> = (0..10_000).collect();
    let msg = bad_key(json!({"port": huge}), "port", "...");
    assert!(msg.len() < 400, "{msg}");
}

// ------------------------------------------------- rule 1: dnson or httpon

#[test]
fn dns_or_http_must_be_on() {
    bad_key(json!({"dnson": false, "httpon": false}), "dnson", "false");
    assert!(!good(json!({"dnson": false})).dns_on);
    assert!(!good(json!({"httpon": false})).http_on);
}

// ------------------------------------------------- rule 2: masters or zk

#[test]
fn masters_or_zk_must_be_given() {
    let e = parse("{}").unwrap_err();
    assert_eq!(e.key(), Some("masters"));
    assert!(e.to_string().contains("zk"), "{e}");
    assert_eq!(parse(r#"{"masters": []}"#).unwrap_err().key(), Some("masters"));
    let c = parse(r#"{"zk": "zk://10.0.0.1:2181/mesos"}"#).unwrap();
    assert!(c.masters.is_empty());
    parse(r#"{"zk": "zk://10.0.0.1:2181/mesos", "masters": []}"#).unwrap();
}

// ------------------------------------------------- rule 3: masters

#[test]
fn masters_as_the_original() {
    let zk = "zk://10.0.0.1:2181/mesos";
    let cases: &[(&[&str], bool)] = &[
        (&[], true),
        (&[""], false),
        (&["", ""], false),
        (&["a"], false),
        (&["a:1234"], true),
        (&["a", "b"], false),
        (&["a:1", "b:1"], true),
        (&["a:0"], false),
        (&["a:65535"], true),
        (&["a:65536"], false),
        (&["a:-1"], false),
        (&["a:x"], false),
        (&["1.2.3.4"], false),
        (&["1.2.3.4:5"], true),
        (&["1.2.3.4.5"], false),
        (&["1.2.3.4.5:6"], true), // host names are not validated
        (&["1.2.3.4", "1.2.3.4"], false),
        (&["1.2.3.4:1", "1.2.3.4:1"], false),
        (&["1.2.3.4:1", "5.6.7.8:1"], true),
        (&["[2001:0db8:3c4d:0015:0000:0000:1a2f:1a2b]:1"], true),
        (&["[2001:db8:3c4d:15::1a2f:1a2b]:1"], true),
        (
            &["[2001:0db8:3c4d:0015:0000:0000:1a2f:1a2b]:1", "[2001:db8:3c4d:15::1a2f:1a2b]:1"],
            false,
        ),
        (&["[::1]:5050", "[0:0::1]:5050"], false),
        (&["[::1]:5050", "[::1]:5051"], true),
        (&["::1:5050"], false),
        (&["[::1]"], false),
        (&[":5050"], false),
        (&["master.example.com:5050", "MASTER.example.com:5050"], false),
        (&["leader.mesos:5050"], true),
    ];
    for (masters, valid) in cases {
        let result = parse_value(&json!({"zk": zk, "masters": masters}));
        match (result, valid) {
            (Ok(c), true) => assert_eq!(&c.masters, masters),
            (Err(e), false) => {
                assert_eq!(e.key(), Some("masters"), "{masters:?}: {e}");
            }
            (Ok(_), false) => panic!("{masters:?} accepted"),
            (Err(e), true) => panic!("{masters:?} rejected: {e}"),
        }
    }
}

#[test]
fn master_errors_name_the_value() {
    let msg = bad_key(json!({"masters": ["1.2.3.4"]}), "masters", "\"1.2.3.4\"");
    assert_eq!(
        msg,
        "config file \"/test/config.json\": key \"masters\": value \"1.2.3.4\": \
         illegal host:port (missing port)"
    );
    let msg =
        bad_key(json!({"masters": ["[::1]:5050", "[0:0::1]:5050"]}), "masters", "[0:0::1]:5050");
    assert!(msg.contains("duplicate"), "{msg}");
    let msg = bad_key(json!({"masters": ["a:0"]}), "masters", "\"a:0\"");
    assert!(msg.contains("port"), "{msg}");
}

#[test]
fn parse_master_normalises() {
    assert_eq!(parse_master("[0:0::1]:5050"), Ok(("::1".to_owned(), 5050)));
    assert_eq!(parse_master("[::ffff:1.2.3.4]:1"), Ok(("1.2.3.4".to_owned(), 1)));
    assert_eq!(parse_master("Leader.Mesos:05050"), Ok(("leader.mesos".to_owned(), 5050)));
    assert!(parse_master("a:65536").is_err());
}

// ------------------------------------------------- rule 4: resolvers

#[test]
fn resolvers_as_the_original() {
    let cases: &[(&[&str], bool)] = &[
        (&[""], false),
        (&["", ""], false),
        (&["a"], false),
        (&["a", "b"], false),
        (&["1.2.3.4"], true),
        (&["1.2.3.4:53"], true),
        (&["1.2.3.4.5"], false),
        (&["1.2.3.4", "1.2.3.4"], false),
        (&["1.2.3.4", "5.6.7.8"], true),
        (&["1.2.3.4", "5.6.7.8:1234"], true),
        (&["5.6.7.8:-1"], false),
        (&["5.6.7.8:0"], false),
        (&["5.6.7.8:65535"], true),
        (&["5.6.7.8:65536"], false),
        (&["5.6.7.8:abc"], false),
        (&["5.6.7.8:"], false),
        (&["2001:0db8:3c4d:0015:0000:0000:1a2f:1a2b"], true),
        (&["2001:db8:3c4d:15::1a2f:1a2b"], true),
        (&["2001:0db8:3c4d:0015:0000:0000:1a2f:1a2b", "[2001:db8:3c4d:15::1a2f:1a2b]:55"], true),
        (&["2001:0db8:3c4d:0015:0000:0000:1a2f:1a2b", "2001:db8:3c4d:15::1a2f:1a2b"], false),
        (&["8.8.8.8", "8.8.8.8:53"], false),
        (&["::ffff:1.2.3.4", "1.2.3.4"], false),
        (&["[::1]:53", "::1"], false),
        (&["dns.google"], false),
        (&["dns.google:53"], false),
    ];
    for (resolvers, valid) in cases {
        let result = parse_value(&json!({"masters": ["a:1"], "resolvers": resolvers}));
        match (result, valid) {
            (Ok(c), true) => assert_eq!(&c.resolvers, resolvers),
            (Err(e), false) => assert_eq!(e.key(), Some("resolvers"), "{resolvers:?}: {e}"),
            (Ok(_), false) => panic!("{resolvers:?} accepted"),
            (Err(e), true) => panic!("{resolvers:?} rejected: {e}"),
        }
    }
}

#[test]
fn resolvers_are_not_checked_without_externalon() {
    let c =
        good(json!({"externalon": false, "resolvers": ["not-an-ip"], "zoneResolvers": {"": []}}));
    assert_eq!(c.resolvers, ["not-an-ip"]);
}

#[test]
fn parse_resolver_defaults_port_53() {
    let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(parse_resolver("8.8.8.8"), Ok(sa("8.8.8.8:53")));
    assert_eq!(parse_resolver("8.8.8.8:5353"), Ok(sa("8.8.8.8:5353")));
    assert_eq!(parse_resolver("2001:db8::1"), Ok(sa("[2001:db8::1]:53")));
    assert_eq!(parse_resolver("[2001:db8::1]:54"), Ok(sa("[2001:db8::1]:54")));
    assert_eq!(parse_resolver("::ffff:1.2.3.4"), Ok(sa("1.2.3.4:53")));
    assert!(parse_resolver("localhost").is_err());
    let c = good(json!({"resolvers": ["1.1.1.1", "[::1]:5353"]}));
    assert_eq!(c.parsed.resolvers, [sa("1.1.1.1:53"), sa("[::1]:5353")]);
}

#[test]
fn zone_resolvers_as_the_original() {
    let ips = json!(["8.8.8.8"]);
    let cases: Vec<(Value, bool)> = vec![
        (json!({}), true),
        (json!({"": ips}), false),
        (json!({"weave": ips}), true),
        (json!({"weave": []}), false),
        (json!({"weave": null}), false),
        (json!({"mesos": ips}), false),
        (json!({"dc.mesos": ips}), false),
        (json!({"DC.Mesos": ips}), false),
        (json!({"acdc.mesos": ips}), true),
        (json!({"site.dc.mesos": ips}), false),
        (json!({"abc.com": ips, "com": ips}), true),
        (json!({"abc.com": ips, "bc.com": ips}), true),
        (json!({"weave.": ips}), false),
        (json!({"we ave": ips}), false),
        (json!({"weave": ["not-an-ip"]}), false),
        (json!({"weave": ["1.2.3.4", "1.2.3.4:53"]}), false),
        (json!({"weave": ["1.2.3.4", "[::1]:5353"]}), true),
        (json!({"Weave": ips, "weave": ips}), false),
    ];
    for (zones, valid) in cases {
        let result =
            parse_value(&json!({"masters": ["a:1"], "domain": "dc.mesos", "zoneResolvers": zones}));
        match (result, valid) {
            (Ok(_), true) => {}
            (Err(e), false) => assert_eq!(e.key(), Some("zoneResolvers"), "{zones}: {e}"),
            (Ok(_), false) => panic!("{zones} accepted"),
            (Err(e), true) => panic!("{zones} rejected: {e}"),
        }
    }
}

#[test]
fn zone_resolvers_masking_the_mesos_domain_are_reported() {
    let ips = json!(["8.8.8.8"]);
    // Nested zones are allowed (longest match wins).
    let c = good(json!({"zoneResolvers": {"abc.com": ips, "com": ips}}));
    assert_eq!(c.zone_resolvers.len(), 2);
    let msg = bad_key(
        json!({"domain": "dc.mesos", "zoneResolvers": {"mesos": ips}}),
        "zoneResolvers",
        "\"mesos\"",
    );
    assert!(msg.contains("ambiguous zone resolvers"), "{msg}");
    let msg = bad_key(json!({"zoneResolvers": {"mesos": ips}}), "zoneResolvers", "\"mesos\"");
    assert!(msg.contains("Mesos domain"), "{msg}");
}

#[test]
fn zone_names_are_lower_cased() {
    let c = good(json!({"zoneResolvers": {"Weave.Local": ["10.0.0.2"]}}));
    let expected: BTreeMap<String, Vec<String>> =
        [("weave.local".to_owned(), vec!["10.0.0.2".to_owned()])].into();
    assert_eq!(c.zone_resolvers, expected);
    let addrs = &c.parsed.zone_resolvers;
    assert_eq!(addrs["weave.local"], ["10.0.0.2:53".parse::<SocketAddr>().unwrap()]);
}

#[test]
fn validation_parses_the_address_settings() {
    let c = good(json!({
        "zk": "ZK://u:pw@h1,[fd00::1]:2182/mesos/",
        "listener": "::ffff:127.0.0.1", "httpListener": "0:0::0",
        "resolvers": ["8.8.8.8", "[2001:db8::1]:5353", "::ffff:1.2.3.4"],
        "zoneResolvers": {"Weave.Local": ["10.0.0.2", "[::1]:5353"]},
        "allowForwardFrom": ["10.0.0.0/8", "127.0.0.1", "::1/128"],
    }));
    let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
    let p = &c.parsed;
    // Listeners as written (not made canonical), as they are bound.
    assert_eq!(p.listener, "::ffff:127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(p.http_listener, IpAddr::from([0u16; 8]));
    assert_eq!(p.zk, Some(ZkUrl::parse("zk://u:pw@h1:2181,[fd00::1]:2182/mesos").unwrap()));
    assert_eq!(p.resolvers, [sa("8.8.8.8:53"), sa("[2001:db8::1]:5353"), sa("1.2.3.4:53")]);
    assert_eq!(p.zone_resolvers["weave.local"], [sa("10.0.0.2:53"), sa("[::1]:5353")]);
    let nets: Vec<String> = p.allow_forward_from.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    // The text stays as written, for /v1/config.
    assert_eq!(
        c.redacted()["Resolvers"],
        json!(["8.8.8.8", "[2001:db8::1]:5353", "::ffff:1.2.3.4"])
    );
    assert_eq!(c.redacted()["Zk"], json!("ZK://u:***@h1,[fd00::1]:2182/mesos/"));

    // Without externalon nothing is forwarded: no upstreams.
    let c = good(json!({"externalon": false, "resolvers": ["not-an-ip"]}));
    assert!(c.parsed.resolvers.is_empty() && c.parsed.zone_resolvers.is_empty());
    // The defaults agree with the default text.
    let c = good(json!({}));
    assert_eq!(c.parsed, Config::default().parsed);
    assert_eq!(c.parsed.resolvers, [sa("8.8.8.8:53")]);
    assert_eq!(c.parsed.zk, None);
}

#[test]
fn nameservers_from_resolv_conf_skip_own_addresses() {
    let text = "# generated\n\
                search example.com\n\
                nameserver 10.0.0.2\n\
                nameserver   192.168.1.1  # trailing\n\
                nameserver\n\
                ; nameserver 9.9.9.9\n\
                options ndots:2\n\
                nameserver 2001:db8::53\n\
                nameserver ::ffff:10.0.0.9\n";
    let own: Vec<IpAddr> = vec!["192.168.1.1".parse().unwrap(), "10.0.0.9".parse().unwrap()];
    assert_eq!(nameservers_from_resolv_conf(text, &own), ["10.0.0.2", "2001:db8::53"]);
    assert_eq!(
        nameservers_from_resolv_conf(text, &[]),
        ["10.0.0.2", "192.168.1.1", "2001:db8::53", "::ffff:10.0.0.9"]
    );
    assert!(nameservers_from_resolv_conf("", &own).is_empty());
}

fn unvalidated(v: Value) -> Config {
    // Parse with externalon off (so nothing is read), then switch it on.
    let mut v = with_master(v);
    v["externalon"] = json!(false);
    let mut c = parse_value(&v).unwrap();
    c.external_on = true;
    c
}

#[test]
fn empty_resolvers_come_from_resolv_conf() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        write_file(&dir, "resolv.conf", b"nameserver 203.0.113.7\nnameserver 203.0.113.8:5353\n");
    let mut c = unvalidated(json!({"resolvers": []}));
    c.validate_with_resolv_conf(&path).unwrap();
    assert_eq!(c.resolvers, ["203.0.113.7", "203.0.113.8:5353"]);

    // Given resolvers are kept; the file is not read.
    let mut c = unvalidated(json!({"resolvers": ["1.1.1.1"]}));
    c.validate_with_resolv_conf(Path::new("/nonexistent/resolv.conf")).unwrap();
    assert_eq!(c.resolvers, ["1.1.1.1"]);

    // An empty resolv.conf leaves no resolvers (external queries refused).
    let empty = write_file(&dir, "empty.conf", b"");
    let mut c = unvalidated(json!({"resolvers": []}));
    c.validate_with_resolv_conf(&empty).unwrap();
    assert!(c.resolvers.is_empty());

    // Its entries are validated like configured ones.
    let junk = write_file(&dir, "junk.conf", b"nameserver dns.example\n");
    let mut c = unvalidated(json!({"resolvers": []}));
    let e = c.validate_with_resolv_conf(&junk).unwrap_err();
    assert_eq!(e.key(), Some("resolvers"));
}

#[test]
fn unreadable_resolv_conf_is_an_error() {
    let mut c = unvalidated(json!({"resolvers": []}));
    let e = c.validate_with_resolv_conf(Path::new("/nonexistent/resolv.conf")).unwrap_err();
    assert_eq!(e.key(), Some("resolvers"));
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/resolv.conf"), "{msg}");
    assert!(!msg.contains('\n'));

    // Without externalon the file is never needed.
    let mut c = unvalidated(json!({"resolvers": []}));
    c.external_on = false;
    c.validate_with_resolv_conf(Path::new("/nonexistent/resolv.conf")).unwrap();
}

// ------------------------------------------------- rule 5: IPSources

#[test]
fn ip_sources_rules() {
    assert_eq!(
        good(json!({"IPSources": ["host", "docker", "mesos", "netinfo"]})).ip_sources,
        [IpSource::Host, IpSource::Docker, IpSource::Mesos, IpSource::Netinfo]
    );
    bad_key(json!({"IPSources": []}), "IPSources", "[]");
    let msg = bad_key(json!({"IPSources": ["host", "host"]}), "IPSources", "[\"host\",\"host\"]");
    assert!(msg.contains("duplicate"), "{msg}");
    bad_key(json!({"IPSources": ["rkt"]}), "IPSources", "\"rkt\"");
    bad_key(json!({"IPSources": ["Host"]}), "IPSources", "\"Host\"");
    assert_eq!(IpSource::Netinfo.as_str(), "netinfo");
    assert_eq!(serde_json::to_value(IpSource::Docker).unwrap(), json!("docker"));
}

// ------------------------------------------------- rule 6: timers

#[test]
fn timers_must_be_positive() {
    bad_key(json!({"stateTimeoutSeconds": 0}), "stateTimeoutSeconds", "0");
    bad_key(json!({"refreshSeconds": 0}), "refreshSeconds", "0");
    assert_eq!(good(json!({"timeout": 0})).timeout, 5);
    assert_eq!(good(json!({"timeout": 1})).timeout, 1);
    assert_eq!(good(json!({"zkDetectionTimeout": 0})).zk_detection_timeout, 0);
}

// ------------------------------------------------- rule 7: domain

#[test]
fn domain_is_lower_cased_and_checked() {
    assert_eq!(good(json!({"domain": "MeSoS"})).domain, "mesos");
    assert_eq!(good(json!({"domain": "1-awesome.Domain.e"})).domain, "1-awesome.domain.e");
    assert_eq!(good(json!({"domain": "single-name"})).domain, "single-name");
    for d in ["", ".invalid.com", "invalid.com.", "a..b", "under_score", "sp ace", "ü.com"] {
        bad_key(json!({ "domain": d }), "domain", &format!("{d:?}").to_lowercase());
    }
}

// ------------------------------------------------- rule 8: cert and key

#[test]
fn cert_and_key_go_together() {
    bad_key(json!({"certFile": "/c.pem"}), "keyFile", "\"\"");
    bad_key(json!({"keyFile": "/k.pem"}), "certFile", "\"\"");
    let c = good(json!({"certFile": "/c.pem", "keyFile": "/k.pem"}));
    assert_eq!(c.cert_file, "/c.pem");
    good(json!({"caCertFile": "/ca.pem"}));
}

#[test]
fn state_source_is_auto_poll_or_an_error() {
    use mesos_dns::config::StateSource;
    assert_eq!(good(json!({})).state_source, StateSource::Auto);
    assert_eq!(good(json!({"stateSource": "poll"})).state_source, StateSource::Poll);
    assert_eq!(good(json!({"STATESOURCE": "auto"})).state_source, StateSource::Auto);
    bad_key(json!({"stateSource": "push"}), "stateSource", "\"push\"");
    bad_key(json!({"stateSource": true}), "stateSource", "true");
}

// ------------------------------------------------- rule 9: authentication

#[test]
fn mesos_authentication_rules() {
    assert_eq!(good(json!({"mesosAuthentication": ""})).mesos_authentication, MesosAuth::None);
    bad_key(json!({"mesosAuthentication": "kerberos"}), "mesosAuthentication", "\"kerberos\"");
    bad_key(json!({"mesosAuthentication": "Basic"}), "mesosAuthentication", "\"Basic\"");
    bad_key(json!({"mesosAuthentication": "basic"}), "mesosCredentials.principal", "\"\"");
    bad_key(
        json!({"mesosAuthentication": "basic", "mesosCredentials": {"secret": "s3cr3t"}}),
        "mesosCredentials.principal",
        "\"\"",
    );
    let c = good(json!({"mesosAuthentication": "basic", "mesosCredentials": {"principal": "p"}}));
    assert_eq!(c.mesos_authentication, MesosAuth::Basic);
    bad_key(json!({"mesosAuthentication": "iam"}), "IAMConfigFile", "\"\"");
    // The IAM file is not read here.
    let c = good(json!({"mesosAuthentication": "iam", "IAMConfigFile": "/nonexistent/iam.json"}));
    assert_eq!(c.mesos_authentication, MesosAuth::Iam);
    // Credentials without authentication are accepted (with a warning).
    good(json!({"mesosCredentials": {"principal": "p", "secret": "s"}}));
    assert_eq!(MesosAuth::Iam.as_str(), "iam");
}

// ------------------------------------------------- listeners

#[test]
fn listeners_must_be_ip_literals() {
    let c = good(json!({"listener": "10.1.2.3", "httpListener": "::"}));
    assert_eq!((c.listener.as_str(), c.http_listener.as_str()), ("10.1.2.3", "::"));
    bad_key(json!({"listener": "localhost"}), "listener", "\"localhost\"");
    bad_key(json!({"listener": ""}), "listener", "\"\"");
    bad_key(json!({"httpListener": "0.0.0.0:8123"}), "httpListener", "\"0.0.0.0:8123\"");
}

// ------------------------------------------------- SOA

#[test]
fn soa_names_are_normalised() {
    let c = good(json!({"SOAMname": "ns1.example.com...", "SOARname": "hostmaster@example.com."}));
    assert_eq!(c.soa_mname, "ns1.example.com.");
    assert_eq!(c.soa_rname, "hostmaster.example.com.");
    let c = good(json!({"SOAMname": "ns", "SOARname": "root"}));
    assert_eq!((c.soa_mname.as_str(), c.soa_rname.as_str()), ("ns.", "root."));
}

#[test]
fn validation_is_idempotent() {
    let mut c = good(json!({"domain": "DC.Mesos", "zoneResolvers": {"Weave": ["1.2.3.4"]}}));
    let before = c.clone();
    c.validate().unwrap();
    assert_eq!(c, before);
}

// ------------------------------------------------- files

#[test]
fn load_reads_the_file_and_records_its_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "config.json", br#"{"masters": ["10.0.0.1:5050"], "port": 5353}"#);
    let c = Config::load(&path).unwrap();
    assert_eq!(c.port, 5353);
    assert_eq!(c.file, path);
    assert!(c.file.is_absolute());
}

#[test]
fn missing_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.json");
    let e = Config::load(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("config file {:?}: cannot read: ", path)), "{msg}");
    assert!(msg.contains("os error 2"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[test]
fn non_json_file_reports_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "config.json", b"{\n  \"masters\": [\"a:1\"],\n  port: 53\n}\n");
    let e = Config::load(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { .. }));
    let msg = e.to_string();
    assert!(msg.contains("line 3 column"), "{msg}");
    assert!(!msg.contains('\n'));

    for text in ["", "{", "{} {}", "{\"a\":1,}", "\u{feff}{}"] {
        assert!(matches!(parse(text), Err(ConfigError::Syntax { .. })), "{text:?}");
    }
}

#[test]
fn json_that_is_not_an_object_is_rejected() {
    for text in ["[]", "null", "42", "\"config\"", "true"] {
        let e = parse(text).unwrap_err();
        assert!(matches!(e, ConfigError::NotObject { .. }), "{text}: {e}");
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }
}

#[test]
fn invalid_utf8_inside_strings_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    // (A key whose value is not validated: `zk` now must be a zk:// URL.)
    let path =
        write_file(&dir, "config.json", b"{\"masters\": [\"a:1\"], \"caCertFile\": \"\xff\"}");
    let c = Config::load(&path).unwrap();
    assert_eq!(c.ca_cert_file, "\u{fffd}");
}

// ------------------------------------------------- redaction

const SECRET: &str = "hunter2-very-secret";

#[test]
fn secret_is_never_shown() {
    let c = good(json!({
        "mesosAuthentication": "basic",
        "mesosCredentials": {"principal": "dns", "secret": SECRET},
        "zk": "zk://user:zkpass@10.0.0.1:2181/mesos"
    }));
    assert_eq!(c.mesos_credentials.secret, SECRET);
    let redacted = c.redacted().to_string();
    assert!(!redacted.contains(SECRET), "{redacted}");
    assert!(!redacted.contains("zkpass"), "{redacted}");
    for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{:?}", c.mesos_credentials)] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("zkpass"), "{shown}");
    }
    assert_eq!(c.redacted()["MesosCredentials"], json!({"Principal": "dns", "Secret": "***"}));
    assert_eq!(c.redacted()["Zk"], json!("zk://user:***@10.0.0.1:2181/mesos"));
    let serialized = serde_json::to_string(&c).unwrap();
    assert!(!serialized.contains(SECRET));
}

#[test]
fn secret_is_never_in_errors() {
    let creds = json!({"principal": "dns", "secret": SECRET});
    let bad_configs = [
        json!({"mesosCredentials": SECRET}),
        json!({"mesosCredentials": [SECRET]}),
        json!({"mesosCredentials": {"principal": "p", "secret": [SECRET]}}),
        json!({"mesosCredentials": {"principal": "p", "secret": 12345}}),
        json!({"mesosCredentials": creds, "port": "x"}),
        json!({"mesosCredentials": creds, "masters": ["x"]}),
        json!({"mesosCredentials": creds, "mesosAuthentication": "iam"}),
        json!({"mesosCredentials": {"secret": SECRET}, "mesosAuthentication": "basic"}),
    ];
    for v in bad_configs {
        let e = bad(v.clone());
        assert!(!e.to_string().contains(SECRET), "{e}");
        assert!(!e.to_string().contains("12345"), "{e}");
        assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
    }
    let msg = bad_key(json!({"mesosCredentials": SECRET}), "mesosCredentials", "\"***\"");
    assert!(msg.contains("found a string"), "{msg}");
}

#[test]
fn empty_secret_stays_visible_as_empty() {
    let c = good(json!({"mesosCredentials": {"principal": "p"}}));
    assert_eq!(c.redacted()["MesosCredentials"]["Secret"], json!(""));
}

#[test]
fn redacted_uses_the_original_key_names() {
    let c = good(json!({"zoneResolvers": {"weave": ["1.2.3.4"]}}));
    let v = c.redacted();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "RefreshSeconds",
        "Port",
        "Timeout",
        "StateTimeoutSeconds",
        "ZkDetectionTimeout",
        "HttpPort",
        "TTL",
        "SRVRecordDefaultWeight",
        "SOARefresh",
        "SOARetry",
        "SOAExpire",
        "SOAMinttl",
        "SOAMname",
        "SOARname",
        "Masters",
        "ZoneResolvers",
        "Resolvers",
        "IPSources",
        "Zk",
        "Domain",
        "File",
        "Listener",
        "HTTPListener",
        "RecurseOn",
        "DnsOn",
        "HttpOn",
        "ExternalOn",
        "EnforceRFC952",
        "SetTruncateBit",
        "EnumerationOn",
        "HealthStaleRefreshes",
        "AllowForwardFrom",
        "StateMaxMegabytes",
        "StateSource",
        "HttpMaxConnections",
        "AllowTransferFrom",
        "Notify",
        "TsigKeys",
        "TransferKey",
        "AnswerLimit",
        "HealthyOnly",
        "PtrOn",
        "RateLimit",
        "MesosHTTPSOn",
        "CACertFile",
        "CertFile",
        "KeyFile",
        "MesosCredentials",
        "IAMConfigFile",
        "MesosAuthentication",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(v["IPSources"], json!(["netinfo", "mesos", "host"]));
    assert_eq!(v["MesosAuthentication"], json!(""));
    assert_eq!(v["HttpPort"], json!(8123));
    assert_eq!(v["SOAMname"], json!("ns1.mesos."));
    assert_eq!(v["ZoneResolvers"], json!({"weave": ["1.2.3.4"]}));
    assert_eq!(v["File"], json!(FILE));
    assert_eq!(v["Masters"], json!(["10.0.0.1:5050"]));
}

// ------------------------------------------------- robustness

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            if let Err(e) = parse(&text) {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }

        #[test]
        fn arbitrary_masters_and_resolvers_never_panic(
            masters in proptest::collection::vec("[\\[\\]:.0-9a-f-]{0,20}", 0..4),
            resolvers in proptest::collection::vec("[\\[\\]:.0-9a-f%+-]{0,20}", 0..4),
            domain in "[A-Za-z0-9.-]{0,12}",
        ) {
            let v = json!({"zk": "zk://h/mesos", "masters": masters, "resolvers": resolvers,
                           "domain": domain});
            if let Err(e) = parse_value(&v) {
                prop_assert!(!e.to_string().contains('\n'));
                prop_assert!(e.key().is_some());
            }
        }

        #[test]
        fn arbitrary_values_for_known_keys_never_panic(
            key in prop::sample::select(vec![
                "port", "ttl", "masters", "zoneResolvers", "IPSources", "mesosCredentials",
                "dnson", "domain", "SOARname", "refreshSeconds", "mesosAuthentication",
            ]),
            value in prop_oneof![
                Just(json!(null)), any::<bool>().prop_map(|b| json!(b)),
                any::<i64>().prop_map(|n| json!(n)), any::<f64>().prop_map(|n| json!(n)),
                ".{0,10}".prop_map(|s| json!(s)), Just(json!([])), Just(json!({})),
                Just(json!({"x": ["1.2.3.4"]})), Just(json!([1, "a"])),
            ],
        ) {
            let v = json!({"masters": ["a:1"], key: value});
            if let Err(e) = parse_value(&v) {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }
}

#[test]
fn errors_without_a_file_say_config() {
    let mut c = Config::default();
    let e = c.validate().unwrap_err();
    assert!(e.to_string().starts_with("config: key \"masters\": "), "{e}");
}

#[test]
fn allow_forward_from_takes_cidrs_and_addresses() {
    let c = good(json!({"allowForwardFrom": ["10.0.0.0/8", "127.0.0.1", "::1/128"]}));
    assert_eq!(c.allow_forward_from.len(), 3);
    assert!(good(json!({})).allow_forward_from.is_empty(), "default: everyone");
    bad_key(json!({"allowForwardFrom": ["10.0.0.0/33"]}), "allowForwardFrom", "\"10.0.0.0/33\"");
    bad_key(json!({"allowForwardFrom": ["nowhere"]}), "allowForwardFrom", "\"nowhere\"");
}

#[test]
fn zone_transfer_keys_name_their_peers_and_keys() {
    let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
    let c = good(json!({
        "allowTransferFrom": ["10.0.0.0/8", "192.168.1.1 Other-Key"],
        "notify": ["10.0.0.5", "[::1]:5353 other-key."],
        "tsigKeys": {"xfr": secret, "other-key": format!("hmac-sha512:{secret}")},
        "transferKey": "XFR",
    }));
    let p = &c.parsed;
    let peers: Vec<(String, Option<&str>)> =
        p.allow_transfer_from.iter().map(|t| (t.net.to_string(), t.key.as_deref())).collect();
    assert_eq!(
        peers,
        vec![("10.0.0.0/8".into(), Some("xfr.")), ("192.168.1.1/32".into(), Some("other-key."))]
    );
    let targets: Vec<(String, Option<&str>)> =
        p.notify.iter().map(|t| (t.addr.to_string(), t.key.as_deref())).collect();
    assert_eq!(
        targets,
        vec![("10.0.0.5:53".into(), Some("xfr.")), ("[::1]:5353".into(), Some("other-key."))]
    );
    assert_eq!(p.tsig_keys.len(), 2);
    // Secrets never shown.
    let shown = c.redacted().to_string() + &format!("{c:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert_eq!(c.redacted()["TsigKeys"], json!({"other-key": "***", "xfr": "***"}));
    // Without a transferKey, entries need none.
    let open = good(json!({"allowTransferFrom": ["127.0.0.1"]}));
    assert_eq!(open.parsed.allow_transfer_from[0].key, None);
    assert!(good(json!({})).parsed.allow_transfer_from.is_empty(), "default: nobody");

    bad_key(json!({"allowTransferFrom": ["10.0.0.0/33"]}), "allowTransferFrom", "10.0.0.0/33");
    bad_key(json!({"allowTransferFrom": ["10.0.0.1 nokey"]}), "allowTransferFrom", "nokey");
    bad_key(json!({"allowTransferFrom": ["10.0.0.1 a b"]}), "allowTransferFrom", "a b");
    bad_key(json!({"notify": ["nowhere"]}), "notify", "nowhere");
    bad_key(json!({"notify": ["10.0.0.1:0"]}), "notify", "10.0.0.1:0");
    bad_key(json!({"transferKey": "absent"}), "transferKey", "absent");
    let m = bad_key(json!({"tsigKeys": {"k": "not base64!"}}), "tsigKeys.k", "***");
    assert!(!m.contains("not base64"), "{m}");
    let m = bad_key(json!({"tsigKeys": {"k": format!("hmac-md4:{secret}")}}), "tsigKeys.k", "***");
    assert!(!m.contains(secret), "{m}");
    bad_key(json!({"tsigKeys": {"k": secret, "K.": secret}}), "tsigKeys.k", "***");
    bad_key(json!({"tsigKeys": ["k"]}), "tsigKeys", "***");
}

// ------------------------------------------------- the zk URL (detection)

#[test]
fn zk_must_be_a_usable_zookeeper_url() {
    for url in [
        "zk://10.0.0.1:2181/mesos",
        "zk://h1:2181,h2:2181,h3:2181/mesos",
        "zk://h/mesos",
        "zk://[fd00::1]:2181,[fd00::2]:2181/mesos",
        "zk://mesos:pw@h1:2181/mesos",
    ] {
        assert_eq!(good(json!({ "zk": url })).zk, url);
    }
    // An empty zk is no zk (masters are used).
    assert_eq!(good(json!({"zk": "", "masters": ["10.0.0.1:5050"]})).zk, "");
    for (url, fragment) in [
        ("http://h:2181/mesos", "zk://"),
        ("h1:2181/mesos", "zk://"),
        ("zk://h1:2181", "path"),
        ("zk://h1:99999/mesos", "port"),
        ("zk://fd00::1:2181/mesos", "brackets"),
        ("zk://h1,,h2/mesos", "empty server"),
        ("zk://h1:2181//mesos", "empty node"),
    ] {
        let msg = bad_key(json!({ "zk": url }), "zk", fragment);
        assert!(msg.contains(&format!("{url:?}")), "{msg} does not name {url}");
    }
}

#[test]
fn a_bad_zk_url_hides_its_password() {
    for url in [
        "zk://mesos:zkpass@h1:0/mesos",
        "zk://mesos:zkpass@h1:2181",
        "zk://mesos:zk/pass@h1:2181/mesos",
        "zk//mesos:zkpass@h1:2181/mesos",
        "zk://mesos:zkpass%zz@h1:2181/mesos",
    ] {
        let e = bad(json!({ "zk": url }));
        let msg = e.to_string();
        assert_eq!(e.key(), Some("zk"), "{msg}");
        assert!(!msg.contains("zkpass") && !msg.contains("pass@"), "{url}: {msg}");
        assert!(msg.contains("mesos:***@"), "{url}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
