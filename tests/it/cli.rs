//! Integration tests of the command-line flags: the original's Go forms,
//! GNU forms, ignored glog flags and errors.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use mesos_dns::cli::{self, Args};

fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    cli::parse(std::iter::once("mesos-dns").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Args {
    parse(args).unwrap_or_else(|e| panic!("{args:?} rejected: {e}"))
}

fn kind(args: &[&str]) -> ErrorKind {
    match parse(args) {
        Ok(a) => panic!("{args:?} accepted as {a:?}"),
        Err(e) => e.kind(),
    }
}

#[test]
fn no_flags_gives_defaults() {
    assert_eq!(
        ok(&[]),
        Args {
            config: PathBuf::from("config.json"),
            version: false,
            verbosity: 0,
            state_file: None,
            dump: false,
        }
    );
}

#[test]
fn go_style_flags() {
    assert_eq!(ok(&["-config=/etc/mesos-dns.json"]).config, PathBuf::from("/etc/mesos-dns.json"));
    assert_eq!(
        ok(&["-config", "/etc/mesos-dns.json"]).config,
        PathBuf::from("/etc/mesos-dns.json")
    );
    assert!(ok(&["-version"]).version);
    assert!(ok(&["-version=true"]).version);
    assert!(!ok(&["-version=0"]).version);
    assert_eq!(ok(&["-v=0"]).verbosity, 0);
    assert_eq!(ok(&["-v=1"]).verbosity, 1);
    assert_eq!(ok(&["-v=2"]).verbosity, 2);
    assert_eq!(ok(&["-v", "2"]).verbosity, 2);
    let a = ok(&["-state-file=/tmp/state.json", "-dump"]);
    assert_eq!(a.state_file, Some(PathBuf::from("/tmp/state.json")));
    assert!(a.dump);
}

#[test]
fn gnu_style_flags() {
    let a = ok(&["--config", "c.json", "--version", "--v=2", "--state-file", "s.json", "--dump"]);
    assert_eq!(a.config, PathBuf::from("c.json"));
    assert!(a.version);
    assert_eq!(a.verbosity, 2);
    assert_eq!(a.state_file, Some(PathBuf::from("s.json")));
    assert!(a.dump);
    assert_eq!(ok(&["--config=c.json"]).config, PathBuf::from("c.json"));
    assert_eq!(ok(&["-v"]).verbosity, 1);
    assert_eq!(ok(&["-vv"]).verbosity, 2);
}

#[test]
fn a_repeated_flag_takes_the_last_value() {
    assert_eq!(ok(&["-config=a.json", "--config", "b.json"]).config, PathBuf::from("b.json"));
    assert_eq!(ok(&["-v=2", "-v=1"]).verbosity, 1);
    assert!(ok(&["-version", "-version"]).version);
}

#[test]
fn a_config_path_may_start_with_a_dash() {
    assert_eq!(ok(&["-config", "-odd.json"]).config, PathBuf::from("-odd.json"));
}

#[cfg(unix)]
#[test]
fn non_utf8_config_path_is_kept() {
    use std::os::unix::ffi::OsStringExt;
    let path = OsString::from_vec(b"/tmp/\xffconfig.json".to_vec());
    let a = cli::parse(vec![OsString::from("mesos-dns"), OsString::from("-config"), path.clone()])
        .unwrap();
    assert_eq!(a.config.as_os_str(), path);
}

#[test]
fn glog_flags_are_accepted_and_ignored() {
    let a = ok(&[
        "-logtostderr",
        "-logtostderr=true",
        "-alsologtostderr=false",
        "--alsologtostderr",
        "-log_dir=/var/log/mesos-dns",
        "--log_dir",
        "/tmp",
        "-stderrthreshold=ERROR",
        "-stderrthreshold",
        "0",
        "-vmodule=resolver=2",
        "-log_backtrace_at=resolver.go:100",
        "-v=1",
    ]);
    assert_eq!(a.verbosity, 1);
    assert_eq!(a.config, PathBuf::from("config.json"));
}

#[test]
fn help_is_displayed() {
    for h in ["-h", "-help", "--help"] {
        assert_eq!(kind(&[h]), ErrorKind::DisplayHelp, "{h}");
    }
    let text = parse(&["-help"]).unwrap_err().to_string();
    assert!(text.contains("--config"), "{text}");
    assert!(text.contains("--state-file"), "{text}");
}

#[test]
fn bad_flags_are_errors() {
    assert_eq!(kind(&["-unknown"]), ErrorKind::UnknownArgument);
    assert_eq!(kind(&["--unknown=1"]), ErrorKind::UnknownArgument);
    assert_eq!(kind(&["stray"]), ErrorKind::UnknownArgument);
    assert_eq!(kind(&["-v=300"]), ErrorKind::ValueValidation);
    assert_eq!(
        kind(&["-v", "x"]),
        ErrorKind::UnknownArgument,
        "-v alone is 1; x is a stray argument"
    );
    assert_eq!(kind(&["-v=-1"]), ErrorKind::ValueValidation);
    assert_eq!(kind(&["-v=two"]), ErrorKind::ValueValidation);
    assert_eq!(kind(&["-dump=maybe"]), ErrorKind::ValueValidation);
    assert_eq!(kind(&["--config"]), ErrorKind::InvalidValue);
    // Errors are what main prints before exiting with status 2.
    assert_eq!(parse(&["-unknown"]).unwrap_err().exit_code(), 2);
}
