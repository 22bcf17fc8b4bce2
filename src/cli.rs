//! Command-line flags (README, Flags), in the original's Go `flag` spellings
//! (`-config=PATH`, `-config PATH`, `-version`, `-v=2`) and the GNU ones
//! (`--config PATH`, `--config=PATH`, `-v 2`).
//!
//! The glog flags that Go users pass (`-logtostderr`, `-alsologtostderr`,
//! `-log_dir`, `-stderrthreshold`, `-vmodule`, `-log_backtrace_at`) are
//! accepted and ignored. Arguments are first rewritten into one canonical
//! GNU form ([`canonical_args`]) and then parsed by clap.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

/// The parsed flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The config file (`-config`, default `config.json`).
    pub config: PathBuf,
    /// Print the version and exit (`-version`).
    pub version: bool,
    /// 0 (quiet), 1 (verbose) or 2 (very verbose) (`-v=N`).
    pub verbosity: u8,
    /// A Mesos state document to read instead of asking the masters
    /// (`-state-file=PATH`).
    pub state_file: Option<PathBuf>,
    /// Print the records generated and exit (`-dump`).
    pub dump: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            config: PathBuf::from(DEFAULT_CONFIG),
            version: false,
            verbosity: 0,
            state_file: None,
            dump: false,
        }
    }
}

/// The config file used when `-config` is not given.
pub const DEFAULT_CONFIG: &str = "config.json";

/// Parses `argv` (program name first). Errors are clap's: `--help` gives
/// `ErrorKind::DisplayHelp`, an unknown flag `UnknownArgument`, a verbosity
/// that is not a number from 0 to 255 `ValueValidation`.
pub fn parse<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let flags = Flags::try_parse_from(canonical_args(argv))?;
    Ok(Args {
        config: flags.config,
        version: flags.version,
        verbosity: flags.verbosity.min(2),
        state_file: flags.state_file,
        dump: flags.dump,
    })
}

/// Flags that take a value. As with Go's `flag`, `-name VALUE` takes the
/// next argument as the value whatever it looks like.
const VALUE_FLAGS: &[&str] =
    &["config", "state-file", "log_dir", "stderrthreshold", "vmodule", "log_backtrace_at"];

/// Rewrites Go-style and GNU-style arguments into one form for clap:
/// `-name`/`--name` → `--name`; `-name VALUE` for a value flag →
/// `--name=VALUE`; `-v`, `-v=N`, `-v N`, `-vv` → `--v=N`; `-h`/`-help` →
/// `--help`. Everything after `--`, and arguments that are not flags, are
/// passed unchanged (clap rejects them). A flag given twice is allowed; the
/// last one wins, as with Go's `flag`.
pub fn canonical_args(argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut args = argv.into_iter().peekable();
    if let Some(program) = args.next() {
        out.push(program);
    }
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        let Some(body) = text
            .strip_prefix("--")
            .or_else(|| text.strip_prefix('-'))
            .filter(|b| !b.is_empty() && !b.starts_with('-'))
        else {
            out.push(arg);
            continue;
        };
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let rewritten = match (name, value) {
            ("h" | "help", None) => "--help".to_owned(),
            ("v", Some(value)) => format!("--v={value}"),
            ("v", None) => {
                match args.next_if(|next| next.to_str().is_some_and(looks_like_number)) {
                    Some(next) => {
                        let mut merged = OsString::from("--v=");
                        merged.push(next);
                        out.push(merged);
                        continue;
                    }
                    None => "--v=1".to_owned(),
                }
            }
            (name, None) if name.bytes().all(|b| b == b'v') => format!("--v={}", name.len()),
            (name, None) if VALUE_FLAGS.contains(&name) => match args.next() {
                Some(next) => {
                    let mut merged = OsString::from(format!("--{name}="));
                    merged.push(next);
                    out.push(merged);
                    continue;
                }
                None => format!("--{name}"),
            },
            (_, _) => format!("--{body}"),
        };
        out.push(OsString::from(rewritten));
    }
    out
}

/// Whether `s` is meant as the value of `-v` (`2`, `+1`, `-1`).
fn looks_like_number(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A boolean as Go's `strconv.ParseBool` reads it (`-flag=false`).
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {s:?} (use true or false)")),
    }
}

/// The clap definition, over the canonical arguments.
#[derive(Debug, Parser)]
#[command(
    name = "mesos-dns",
    about = "DNS-based service discovery for Apache Mesos",
    after_help = "Client mode: mesos-dns watch --help (render config files from the records, again whenever they change)",
    disable_version_flag = true,
    args_override_self = true
)]
struct Flags {
    /// Path to the config file (JSON)
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    config: PathBuf,

    /// Print the version and exit
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    version: bool,

    /// Verbosity: 0 quiet, 1 verbose, 2 very verbose (-v=N; higher glog
    /// levels mean 2)
    #[arg(long = "v", value_name = "N", default_value_t = 0)]
    verbosity: u8,

    /// Read the Mesos state from this file instead of the masters
    #[arg(long = "state-file", value_name = "PATH")]
    state_file: Option<PathBuf>,

    /// Print the generated records and exit
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dump: bool,

    #[command(flatten)]
    glog: GlogFlags,
}

/// glog flags of the original, accepted and ignored.
#[derive(Debug, clap::Args)]
struct GlogFlags {
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    logtostderr: bool,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    alsologtostderr: bool,
    #[arg(long = "log_dir", hide = true)]
    log_dir: Option<String>,
    #[arg(long, hide = true)]
    stderrthreshold: Option<String>,
    #[arg(long, hide = true)]
    vmodule: Option<String>,
    #[arg(long = "log_backtrace_at", hide = true)]
    log_backtrace_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn canon(args: &[&str]) -> Vec<String> {
        let argv =
            std::iter::once("mesos-dns").chain(args.iter().copied()).map(OsString::from).collect();
        canonical_args(argv).into_iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn ok(args: &[&str]) -> Args {
        match parse(std::iter::once("mesos-dns").chain(args.iter().copied())) {
            Ok(a) => a,
            Err(e) => panic!("{args:?} rejected: {e}"),
        }
    }

    fn err(args: &[&str]) -> ErrorKind {
        match parse(std::iter::once("mesos-dns").chain(args.iter().copied())) {
            Ok(a) => panic!("{args:?} accepted as {a:?}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn rewrites_go_single_dash_flags() {
        assert_eq!(canon(&["-config=x.json"]), ["--config=x.json"]);
        assert_eq!(canon(&["-config", "x.json"]), ["--config=x.json"]);
        assert_eq!(canon(&["-version"]), ["--version"]);
        assert_eq!(canon(&["-version=false"]), ["--version=false"]);
        assert_eq!(canon(&["-state-file=s.json", "-dump"]), ["--state-file=s.json", "--dump"]);
    }

    #[test]
    fn keeps_gnu_flags() {
        assert_eq!(canon(&["--config", "x.json"]), ["--config=x.json"]);
        assert_eq!(canon(&["--config=x.json"]), ["--config=x.json"]);
        assert_eq!(canon(&["--version"]), ["--version"]);
    }

    #[test]
    fn value_flags_take_the_next_argument_whatever_it_is() {
        assert_eq!(canon(&["-config", "-odd.json"]), ["--config=-odd.json"]);
        assert_eq!(canon(&["-config"]), ["--config"]);
    }

    #[test]
    fn rewrites_verbosity() {
        assert_eq!(canon(&["-v=2"]), ["--v=2"]);
        assert_eq!(canon(&["--v=2"]), ["--v=2"]);
        assert_eq!(canon(&["-v", "2"]), ["--v=2"]);
        assert_eq!(canon(&["-v"]), ["--v=1"]);
        assert_eq!(canon(&["-v", "-version"]), ["--v=1", "--version"]);
        assert_eq!(canon(&["-vv"]), ["--v=2"]);
        assert_eq!(canon(&["-vvv"]), ["--v=3"]);
    }

    #[test]
    fn rewrites_help() {
        assert_eq!(canon(&["-h"]), ["--help"]);
        assert_eq!(canon(&["-help"]), ["--help"]);
        assert_eq!(canon(&["--help"]), ["--help"]);
    }

    #[test]
    fn passes_through_non_flags_and_after_double_dash() {
        assert_eq!(canon(&["x", "-"]), ["x", "-"]);
        assert_eq!(canon(&["--", "-config=x"]), ["--", "-config=x"]);
        assert_eq!(canon(&["---config"]), ["---config"]);
    }

    #[test]
    fn defaults() {
        assert_eq!(ok(&[]), Args::default());
        assert_eq!(ok(&[]).config, PathBuf::from("config.json"));
    }

    #[test]
    fn go_forms_parse() {
        let a = ok(&["-config=/etc/mesos-dns/config.json", "-v=2"]);
        assert_eq!(a.config, PathBuf::from("/etc/mesos-dns/config.json"));
        assert_eq!(a.verbosity, 2);
        assert!(ok(&["-version"]).version);
        assert!(!ok(&["-version=false"]).version);
        assert!(ok(&["-version=T"]).version);
        assert_eq!(ok(&["-config", "c.json"]).config, PathBuf::from("c.json"));
    }

    #[test]
    fn gnu_forms_parse() {
        let a = ok(&["--config", "c.json", "--v", "1", "--state-file", "s.json", "--dump"]);
        assert_eq!(a.config, PathBuf::from("c.json"));
        assert_eq!(a.verbosity, 1);
        assert_eq!(a.state_file, Some(PathBuf::from("s.json")));
        assert!(a.dump);
        assert_eq!(ok(&["-v"]).verbosity, 1);
        assert_eq!(ok(&["-vv"]).verbosity, 2);
        assert_eq!(ok(&["-v", "0"]).verbosity, 0);
    }

    #[test]
    fn glog_flags_are_ignored() {
        let a = ok(&[
            "-logtostderr",
            "-logtostderr=false",
            "--alsologtostderr=true",
            "-log_dir=/tmp",
            "-log_dir",
            "/var/log",
            "-stderrthreshold=INFO",
            "--vmodule",
            "x=2",
            "-log_backtrace_at=file.go:12",
            "-config=c.json",
        ]);
        assert_eq!(a.config, PathBuf::from("c.json"));
        assert_eq!(a.verbosity, 0);
    }

    #[test]
    fn errors() {
        assert_eq!(err(&["-nope"]), ErrorKind::UnknownArgument);
        assert_eq!(err(&["--nope=1"]), ErrorKind::UnknownArgument);
        assert_eq!(ok(&["-v=3"]).verbosity, 2, "glog levels above 2 mean 2");
        assert_eq!(err(&["-v=x"]), ErrorKind::ValueValidation);
        assert_eq!(ok(&["-vvv"]).verbosity, 2);
        assert_eq!(err(&["-v=256"]), ErrorKind::ValueValidation);
        assert_eq!(err(&["-version=maybe"]), ErrorKind::ValueValidation);
        assert_eq!(err(&["-config"]), ErrorKind::InvalidValue);
        assert_eq!(err(&["positional"]), ErrorKind::UnknownArgument);
        assert_eq!(err(&["-h"]), ErrorKind::DisplayHelp);
        assert_eq!(err(&["-help"]), ErrorKind::DisplayHelp);
        assert_eq!(err(&["--help"]), ErrorKind::DisplayHelp);
    }

    #[test]
    fn help_hides_glog_flags() {
        let help = match parse(["mesos-dns", "--help"]) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert!(help.contains("--config"));
        assert!(!help.contains("logtostderr"));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Flags::command().debug_assert();
    }
}
