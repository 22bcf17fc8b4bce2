//! `mesos-dns watch`: the client mode. Renders templates from the records
//! of running servers (their HTTP API) and renders them again whenever an
//! answer they used changes, learnt through blocking queries, never by
//! polling; writes each output atomically and runs its command when the
//! output's bytes changed. Of the server it uses only what blocking
//! queries are written with: the index header and the duration syntax.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

mod api;
mod template;

use api::{Answer, Api, Lookup};

use crate::http::watch::parse_duration;

/// Lookups a template needs that are asked for at once (on the one
/// connection) before it is rendered again.
const FETCHES_AT_ONCE: usize = 64;

/// The usage text's example.
const EXAMPLE: &str = "Example (nginx upstreams that follow the tasks of a Marathon app):

  upstream.conf.tmpl:
    upstream web {
    {%- for s in service(\"_web._tcp.marathon.mesos\") %}
      server {{ s.ip }}:{{ s.port }};
    {%- else %}
      server 127.0.0.1:1 down;
    {%- endfor %}
    }

  mesos-dns watch --api http://10.0.0.11:8123 --api http://10.0.0.12:8123 \\
    --template upstream.conf.tmpl --out /etc/nginx/conf.d/upstream.conf \\
    --exec \"nginx -s reload\"

Template functions: service(name) → list of {host, ip, port}; hosts(name) →
list of {host, ip}; both sorted. Several --template/--out/--exec groups may
be given: --out and --exec belong to the --template before them.";

/// One template and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The template file.
    pub template: PathBuf,
    /// Where its output goes.
    pub out: PathBuf,
    /// A shell command run after the output changed.
    pub exec: Option<String>,
}

/// The watch command's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Base URLs of servers' HTTP API, in order of preference.
    pub apis: Vec<String>,
    /// The templates.
    pub jobs: Vec<Job>,
    /// Quiet time after a change before rendering, and the longest a
    /// burst of changes may delay it.
    pub wait: (Duration, Duration),
    /// Render once and exit.
    pub once: bool,
    /// HTTP/1.1 instead of HTTP/2.
    pub http1: bool,
    /// 0 (outputs written, commands run, changes, errors) or 1 (also
    /// every answer).
    pub verbosity: u8,
}

/// Why watching stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The options are wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A template could not be read or rendered.
    #[error("template {file}: {error}")]
    Template {
        /// The template file.
        file: String,
        /// What is wrong, and where.
        error: String,
    },
    /// An output could not be written.
    #[error("cannot write {file}: {error}")]
    Write {
        /// The output file.
        file: String,
        /// Why.
        error: std::io::Error,
    },
    /// With `--once`: no server answered.
    #[error(transparent)]
    Unanswered(#[from] api::Unanswered),
}

fn command() -> clap::Command {
    use clap::{Arg, ArgAction};
    clap::Command::new("watch")
        .bin_name("mesos-dns watch")
        .about("Render templates from the records of Mesos-DNS servers, again whenever they change")
        .after_help(EXAMPLE)
        .arg(Arg::new("api").long("api").value_name("URL").action(ArgAction::Append).required(true)
            .help("A server's HTTP API (http://host:8123); several for failover, in order"))
        .arg(Arg::new("template").long("template").value_name("FILE").action(ArgAction::Append).required(true)
            .help("A template (Jinja syntax)"))
        .arg(Arg::new("out").long("out").value_name("FILE").action(ArgAction::Append).required(true)
            .help("Where the --template before it is written"))
        .arg(Arg::new("exec").long("exec").value_name("COMMAND").action(ArgAction::Append)
            .help("Run (sh -c) after the --out before it changed"))
        .arg(Arg::new("wait").long("wait").value_name("MIN[:MAX]")
            .help("Render MIN after the last change of a burst, at most MAX after its first (e.g. 1s:5s; default 0s)"))
        .arg(Arg::new("http1").long("http1").action(ArgAction::SetTrue)
            .help("Speak HTTP/1.1 to the servers (one connection per held lookup; for a proxy in between), not HTTP/2"))
        .arg(Arg::new("once").long("once").action(ArgAction::SetTrue)
            .help("Render once, run the commands whose output changed, and exit"))
        .arg(Arg::new("v").short('v').value_name("N").default_value("0")
            .value_parser(clap::value_parser!(u8))
            .help("Log verbosity: 0 (outputs written, commands run, changes, errors) or 1 (also every answer)"))
}

/// Parse `argv` (program name first, then `watch`, then the options).
pub fn parse<I, T>(argv: I) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut argv: Vec<std::ffi::OsString> = argv.into_iter().map(Into::into).collect();
    if argv.get(1).is_some_and(|a| a == "watch") {
        argv.remove(1);
    }
    let mut cmd = command();
    let m = cmd.try_get_matches_from_mut(argv)?;
    let usage = |msg: String| cmd.clone().error(clap::error::ErrorKind::ArgumentConflict, msg);
    // Each --out and --exec belongs to the --template given before it.
    let positioned = |id: &str| -> Vec<(usize, String)> {
        let values = m.get_many::<String>(id).into_iter().flatten().cloned();
        m.indices_of(id).into_iter().flatten().zip(values).collect()
    };
    let templates = positioned("template");
    let owner = |at: usize| templates.iter().rposition(|(t, _)| *t < at);
    let mut jobs: Vec<(String, Option<String>, Option<String>)> =
        templates.iter().map(|(_, t)| (t.clone(), None, None)).collect();
    for (flag, is_out) in [("out", true), ("exec", false)] {
        for (at, value) in positioned(flag) {
            let Some(job) = owner(at).and_then(|i| jobs.get_mut(i)) else {
                return Err(usage(format!("--{flag} {value:?} comes before any --template")));
            };
            let slot = if is_out { &mut job.1 } else { &mut job.2 };
            if slot.replace(value.clone()).is_some() {
                return Err(usage(format!("two --{flag} for --template {:?}", job.0)));
            }
        }
    }
    let jobs = jobs
        .into_iter()
        .map(|(template, out, exec)| match out {
            Some(out) => Ok(Job { template: template.into(), out: out.into(), exec }),
            None => Err(usage(format!("--template {template:?} has no --out"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let wait = match m.get_one::<String>("wait") {
        Some(w) => parse_wait(w).map_err(usage)?,
        None => (Duration::ZERO, Duration::ZERO),
    };
    Ok(Options {
        apis: m.get_many::<String>("api").into_iter().flatten().cloned().collect(),
        jobs,
        wait,
        once: m.get_flag("once"),
        http1: m.get_flag("http1"),
        verbosity: m.get_one::<u8>("v").copied().unwrap_or(0).min(1),
    })
}

/// `1s:5s`, `500ms`, `2` (seconds): MIN and MAX (MAX defaults to 4 × MIN),
/// each written as a blocking query's `wait`.
fn parse_wait(text: &str) -> Result<(Duration, Duration), String> {
    let one = |t: &str| {
        parse_duration(t).ok_or_else(|| {
            format!("--wait {text:?}: {t:?} is not a duration such as 500ms, 1s or 2m")
        })
    };
    let (min, max) = match text.split_once(':') {
        Some((min, max)) => (one(min)?, one(max)?),
        None => {
            let min = one(text)?;
            (min, min * 4)
        }
    };
    if max < min {
        return Err(format!("--wait {text:?}: MAX is below MIN"));
    }
    Ok((min, max))
}

/// A template loaded.
struct Loaded {
    job: Job,
    name: String,
    source: String,
}

/// Render every template, write the outputs that changed and run their
/// commands; then, unless `--once`, do it again whenever an answer a
/// template used changes. Returns only on an error or after `--once`.
pub async fn run(options: Options) -> Result<(), WatchError> {
    let api = Api::new(options.apis.clone(), options.http1);
    let api = Arc::new(api.map_err(|e| WatchError::Usage(e.to_string()))?);
    let mut loaded = Vec::new();
    for job in &options.jobs {
        let name = job.template.display().to_string();
        let source = std::fs::read_to_string(&job.template)
            .map_err(|e| WatchError::Template { file: name.clone(), error: e.to_string() })?;
        loaded.push(Loaded { job: job.clone(), name, source });
    }
    let mut known: BTreeMap<Lookup, Answer> = BTreeMap::new();
    let used = render_all(&loaded, &api, &mut known, options.once).await?;
    if options.once {
        return Ok(());
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(Lookup, Answer)>();
    let mut watchers: HashMap<Lookup, AbortHandle> = HashMap::new();
    follow(&used, &known, &api, &tx, &mut watchers);
    let (min, max) = options.wait;
    loop {
        let Some((lookup, answer)) = rx.recv().await else { return Ok(()) };
        let mut changed = learn(&mut known, lookup, answer);
        if !changed {
            continue;
        }
        // A burst: render once it has been quiet for MIN, or MAX after
        // its first change.
        if !min.is_zero() {
            let deadline = tokio::time::Instant::now() + max;
            loop {
                let quiet = tokio::time::sleep(min);
                tokio::select! {
                    next = rx.recv() => {
                        let Some((lookup, answer)) = next else { return Ok(()) };
                        changed |= learn(&mut known, lookup, answer);
                    }
                    () = quiet => break,
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        while let Ok((lookup, answer)) = rx.try_recv() {
            changed |= learn(&mut known, lookup, answer);
        }
        if changed {
            let used = render_all(&loaded, &api, &mut known, false).await?;
            watchers.retain(|lookup, handle| {
                let keep = used.contains(lookup);
                if !keep {
                    handle.abort();
                }
                keep
            });
            known.retain(|lookup, _| used.contains(lookup));
            follow(&used, &known, &api, &tx, &mut watchers);
        }
    }
}

/// Record `answer`; whether the records differ from those known.
fn learn(known: &mut BTreeMap<Lookup, Answer>, lookup: Lookup, answer: Answer) -> bool {
    tracing::debug!("{lookup}: {} records at index {}", answer.entries.len(), answer.index);
    let changed = match known.get(&lookup) {
        None => true,
        Some(k) if k.entries != answer.entries => {
            tracing::info!("{lookup} changed: {} records", answer.entries.len());
            true
        }
        Some(_) => false,
    };
    known.insert(lookup, answer);
    changed
}

/// A blocking query loop for each lookup in `used` not followed yet.
fn follow(
    used: &BTreeSet<Lookup>,
    known: &BTreeMap<Lookup, Answer>,
    api: &Arc<Api>,
    tx: &mpsc::UnboundedSender<(Lookup, Answer)>,
    watchers: &mut HashMap<Lookup, AbortHandle>,
) {
    for lookup in used {
        if watchers.contains_key(lookup) {
            continue;
        }
        let index = known.get(lookup).map_or(0, |a| a.index);
        let (api, tx, l) = (Arc::clone(api), tx.clone(), lookup.clone());
        let task = tokio::spawn(async move { block_on_changes(&api, l, index, tx).await });
        watchers.insert(lookup.clone(), task.abort_handle());
    }
}

/// Ask for `lookup` again and again, each time held until its answer
/// differs from the last; send every answer. While no server answers,
/// retry with a growing pause (the outputs stay as they are).
async fn block_on_changes(
    api: &Api,
    lookup: Lookup,
    mut index: u64,
    tx: mpsc::UnboundedSender<(Lookup, Answer)>,
) {
    let mut pause = Duration::from_millis(500);
    loop {
        match api.get(&lookup, Some(index)).await {
            Ok(answer) => {
                pause = Duration::from_millis(500);
                index = answer.index;
                if tx.send((lookup.clone(), answer)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("{e}; the outputs stay as they are, trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Render every template, fetching the answers they use that are not
/// known yet, and write those whose output changed (running their
/// commands). Returns every lookup used.
async fn render_all(
    loaded: &[Loaded],
    api: &Api,
    known: &mut BTreeMap<Lookup, Answer>,
    once: bool,
) -> Result<BTreeSet<Lookup>, WatchError> {
    let mut used = BTreeSet::new();
    for t in loaded {
        let template_error = |e: minijinja::Error| WatchError::Template {
            file: t.name.clone(),
            error: describe(&e),
        };
        // A template may use a lookup only once it sees the answer of
        // another (a service's hosts): render until nothing is missing.
        let mut rendered = template::render(&t.name, &t.source, known).map_err(template_error)?;
        for _ in 0..8 {
            if rendered.missing.is_empty() {
                break;
            }
            let answers: Vec<(Lookup, Answer)> = stream::iter(rendered.missing)
                .map(|lookup| async move { fetch(api, &lookup, once).await.map(|a| (lookup, a)) })
                .buffer_unordered(FETCHES_AT_ONCE)
                .try_collect()
                .await?;
            for (lookup, answer) in answers {
                learn(known, lookup, answer);
            }
            rendered = template::render(&t.name, &t.source, known).map_err(template_error)?;
        }
        used.extend(rendered.used);
        let out = &t.job.out;
        let written = template::write_if_changed(out, &rendered.text)
            .map_err(|error| WatchError::Write { file: out.display().to_string(), error })?;
        if written {
            tracing::info!(
                "{} rendered into {} ({} bytes)",
                t.name,
                out.display(),
                rendered.text.len()
            );
            if let Some(exec) = &t.job.exec {
                run_command(exec).await;
            }
        }
    }
    Ok(used)
}

/// The answer to `lookup` now. With `once`, no server answering is an
/// error; otherwise it is asked again until one answers.
async fn fetch(api: &Api, lookup: &Lookup, once: bool) -> Result<Answer, WatchError> {
    let mut pause = Duration::from_millis(500);
    loop {
        match api.get(lookup, None).await {
            Ok(answer) => return Ok(answer),
            Err(e) if once => return Err(e.into()),
            Err(e) => {
                tracing::warn!("{e}; trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// A template error with its line, and the source around it when known.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    if let Some(detail) = e.display_debug_info().to_string().lines().find(|l| l.contains("-->")) {
        text.push_str(&format!(" [{}]", detail.trim()));
    }
    text
}

/// Run `command` with `sh -c`, wait for it, and log how it ended.
async fn run_command(command: &str) {
    match tokio::process::Command::new("sh").arg("-c").arg(command).status().await {
        Ok(status) if status.success() => tracing::info!("ran {command:?}"),
        Ok(status) => tracing::warn!("{command:?} failed: {status}"),
        Err(e) => tracing::warn!("cannot run {command:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Options, clap::Error> {
        parse(std::iter::once("mesos-dns").chain(line.split(' ')))
    }

    #[test]
    fn outs_and_execs_belong_to_the_template_before_them() {
        let o = args("watch --api http://a:8123 --api http://b:8123 --template t1 --out o1 --exec c1 --template t2 --out o2 --wait 1s:5s").unwrap();
        assert_eq!(o.apis, ["http://a:8123", "http://b:8123"]);
        assert_eq!(
            o.jobs,
            [
                Job { template: "t1".into(), out: "o1".into(), exec: Some("c1".into()) },
                Job { template: "t2".into(), out: "o2".into(), exec: None },
            ]
        );
        assert_eq!(o.wait, (Duration::from_secs(1), Duration::from_secs(5)));
        assert!(!o.once);
        assert!(args("watch --api http://a --out o --template t").is_err(), "out before template");
        assert!(args("watch --api http://a --template t").is_err(), "no out");
        assert!(args("watch --api http://a --template t --out a --out b").is_err(), "two outs");
        assert!(args("watch --template t --out o").is_err(), "no api");
        assert!(args("watch --api http://a --template t --out o --wait 5s:1s").is_err());
        let once = args("watch --api http://a --template t --out o --once --wait 500ms").unwrap();
        assert!(once.once);
        assert_eq!(once.wait, (Duration::from_millis(500), Duration::from_secs(2)));
    }
}
