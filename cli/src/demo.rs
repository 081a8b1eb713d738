//! `lupa demo`: a project from creation to promotion to rollback, resolved at
//! each step the way the search API's middleware does, on a throwaway store
//! (an in-memory SQLite database and an in-memory cache): no servers needed.

use std::io::Write;

use lupa_core::{
    Caller, Config, CreateDeployment, Environment, Error, FinalStatus, HistoryEntry, Lupa, NewProject, Resolution,
    ResolveRequest,
};
use serde::Serialize;

use crate::commands::{Failure, source_words};
use crate::output::{HistoryJson, Style, Table, Ui, json};

const STORE: &str = "sqlite::memory:";
const CACHE: &str = "memory://";
const PROJECT: &str = "abc1234567";
const FIRST: &str = "def4567890";
const SECOND: &str = "stg9876543";
const UNFINISHED: &str = "wip0000001";
const SNAPSHOT: &str = "snp2345678";
// Well-formed keys, as a search request would carry them; never printed.
const LIVE_KEY: &str = "lupa_sk_live_7x9Kp2mN4qR8tV3wY6zB1cD5fG0hJ";
const TEST_KEY: &str = "lupa_pk_test_Aa9Bb8Cc7Dd6Ee5Ff4Gg3Hh2Ii1Jj";

/// One thing that happened in a step.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    /// A change the demo made.
    Action { text: String },
    /// What a request resolved to.
    Resolve {
        caller: String,
        deployment_id: Option<String>,
        deployment: Option<String>,
        source: Option<&'static str>,
        error: Option<ErrorJson>,
    },
    /// A change the library refused.
    Refused { action: String, error: ErrorJson },
    /// The project's environment changes.
    History { entries: Vec<HistoryJson> },
}

#[derive(Serialize)]
struct ErrorJson {
    code: &'static str,
    message: String,
    http_status: u16,
}

impl From<&Error> for ErrorJson {
    fn from(e: &Error) -> Self {
        ErrorJson { code: e.code().as_str(), message: e.message().to_owned(), http_status: e.http_status() }
    }
}

#[derive(Serialize)]
struct Step {
    step: usize,
    title: String,
    explanation: String,
    events: Vec<Event>,
}

#[derive(Serialize)]
struct DemoJson {
    store: &'static str,
    cache: &'static str,
    project: &'static str,
    steps: Vec<Step>,
}

/// Tells the story: as it goes for people, as one document for scripts.
struct Narrator<'a> {
    ui: &'a Ui,
    steps: Vec<Step>,
}

impl Narrator<'_> {
    fn say(&self, text: &str) -> std::io::Result<()> {
        if self.ui.json {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    fn step(&mut self, title: &str, explanation: &str) -> std::io::Result<()> {
        let n = self.steps.len() + 1;
        self.steps.push(Step { step: n, title: title.into(), explanation: explanation.into(), events: Vec::new() });
        let heading = self.ui.paint(&format!("{n}. {title}"), Style::Bold);
        self.say(&format!("\n{heading}\n{}\n", wrap(explanation, 76, "   ")))
    }

    fn event(&mut self, event: Event, line: String) -> std::io::Result<()> {
        if let Some(step) = self.steps.last_mut() {
            step.events.push(event);
        }
        self.say(&line)
    }

    fn action(&mut self, text: String) -> std::io::Result<()> {
        let line = format!("   {} {text}\n", self.ui.paint("+", Style::Cyan));
        self.event(Event::Action { text }, line)
    }

    fn refused(&mut self, action: String, e: &Error) -> std::io::Result<()> {
        let line = format!(
            "   {} {action}: {}\n",
            self.ui.paint("x refused", Style::Red),
            self.ui.paint(&format!("{} {}: {}", e.http_status(), e.code(), e.message()), Style::Red)
        );
        self.event(Event::Refused { action, error: e.into() }, line)
    }

    async fn resolve(&mut self, lupa: &Lupa, label: &str, request: ResolveRequest) -> std::io::Result<()> {
        let result = lupa.resolve(&request).await;
        let line = format!("   {label:<36} -> {}\n", self.answer(&result));
        let event = match &result {
            Ok(r) => Event::Resolve {
                caller: label.into(),
                deployment_id: request.deployment_id.clone(),
                deployment: r.deployment.as_ref().map(ToString::to_string),
                source: Some(r.source.as_str()),
                error: None,
            },
            Err(e) => Event::Resolve {
                caller: label.into(),
                deployment_id: request.deployment_id.clone(),
                deployment: None,
                source: None,
                error: Some(e.into()),
            },
        };
        self.event(event, line)
    }

    fn answer(&self, result: &lupa_core::Result<Resolution>) -> String {
        match result {
            Ok(r) => {
                let d = r.deployment.as_ref().map_or_else(|| "no deployment".to_string(), ToString::to_string);
                format!(
                    "{} {}",
                    self.ui.paint(&d, Style::Green),
                    self.ui.paint(&format!("({})", source_words(r.source)), Style::Dim)
                )
            }
            Err(e) => self.ui.paint(&format!("{} {}: {}", e.http_status(), e.code(), e.message()), Style::Yellow),
        }
    }

    /// What a live key, a test key and a live key with an explicit
    /// `Deployment-Id` resolve to now.
    async fn resolve_all(&mut self, lupa: &Lupa) -> std::io::Result<()> {
        self.resolve(lupa, "live key", ResolveRequest::new(PROJECT, live())).await?;
        self.resolve(lupa, "test key", ResolveRequest::new(PROJECT, test())).await?;
        let explicit = ResolveRequest::new(PROJECT, live()).deployment_id(SECOND);
        self.resolve(lupa, &format!("live key + Deployment-Id {SECOND}"), explicit).await
    }

    fn history(&mut self, entries: &[HistoryEntry]) -> std::io::Result<()> {
        let mut table = Table::new(&["SEQ", "DEPLOYMENT", "FROM", "TO"]);
        for e in entries {
            table.row(vec![
                (format!("#{}", e.seq), Style::Plain),
                (e.deployment_id.to_string(), Style::Bold),
                (e.from.to_string(), Style::Plain),
                (e.to.to_string(), Style::Plain),
            ]);
        }
        let text: String = table.render(self.ui).lines().map(|l| format!("   {l}\n")).collect();
        self.event(Event::History { entries: entries.iter().map(HistoryJson::from).collect() }, text)
    }
}

fn live() -> Caller {
    Caller::ApiKey(LIVE_KEY.into())
}

fn test() -> Caller {
    Caller::ApiKey(TEST_KEY.into())
}

/// `text` wrapped at `width` columns, each line after `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

async fn deploy(lupa: &Lupa, id: &str, minute: u32) -> lupa_core::Result<()> {
    lupa.create_deployment(CreateDeployment {
        project: PROJECT.into(),
        id: Some(id.into()),
        snapshot: SNAPSHOT.into(),
        environment: Environment::Staging,
        created_at: Some(format!("2025-10-28T10:{minute:02}:00Z")),
    })
    .await?;
    Ok(())
}

/// Runs the demo; in JSON mode the whole story is the returned document.
pub async fn run(ui: &Ui) -> Result<String, Failure> {
    // The in-process tier stays on here, as in a server, so the demo shows
    // every tier answering.
    let lupa = Lupa::open(Config::new(STORE, CACHE)).await?;
    let result = story(&lupa, ui).await;
    lupa.close().await;
    result
}

async fn story(lupa: &Lupa, ui: &Ui) -> Result<String, Failure> {
    let mut n = Narrator { ui, steps: Vec::new() };
    n.say(&format!(
        "{}\n{}",
        ui.paint("Lupa demo: one project from creation to rollback", Style::Bold),
        wrap(
            "Every search request must reach the right deployment (a built version of a project's knowledge base): \
             a live API key the ready production deployment, a test key the newest ready staging one, a \
             Deployment-Id header the one it names. This demo runs on a throwaway store (an in-memory SQLite \
             database and an in-memory cache; --store and --cache are ignored) and shows after every step what \
             each kind of request resolves to, or the exact error the search API would answer with.",
            78,
            "",
        )
    ))?;

    n.step(
        &format!("Create project {PROJECT}"),
        "A project owns deployments. It has none yet, so every request is refused: there is no production \
         deployment for a live key, no staging one for a test key, and the Deployment-Id names nothing.",
    )?;
    lupa.create_project(NewProject { id: Some(PROJECT.into()), org_id: "org_1".into(), name: "Docs".into() }).await?;
    n.action(format!("created project {PROJECT} (organisation org_1, name \"Docs\")"))?;
    n.resolve_all(lupa).await?;

    n.step(
        &format!("Create deployment {FIRST}"),
        "A new deployment starts processing, in staging: its documents are still being indexed, so nothing may \
         query it yet, not even a test key.",
    )?;
    deploy(lupa, FIRST, 1).await?;
    n.action(format!("created deployment {FIRST} from snapshot {SNAPSHOT}: processing, staging"))?;
    n.resolve_all(lupa).await?;

    n.step(
        &format!("Processing finishes: {FIRST} is ready"),
        "The processing task reports the outcome. A test key reaches the newest ready staging deployment, so it \
         gets the new one now; a live key still finds no production deployment.",
    )?;
    lupa.set_status(FIRST, FinalStatus::Ready, None).await?;
    n.action(format!("{FIRST} is ready"))?;
    n.resolve_all(lupa).await?;

    n.step(
        &format!("Promote {FIRST} to production"),
        "Promotion makes a ready deployment the project's one production deployment, and live keys reach it \
         now. Test keys find no ready staging deployment any more: the only one moved to production.",
    )?;
    let p = lupa.promote(PROJECT, FIRST).await?;
    n.action(format!("promoted {} to {}", p.deployment.id, p.deployment.environment))?;
    n.resolve_all(lupa).await?;

    n.step(
        &format!("A second version, {SECOND}, is built and tested in staging"),
        "Live traffic stays on the production deployment while the new version is tested: test keys reach it, \
         and so does any request whose Deployment-Id header names it, whatever its key's environment.",
    )?;
    deploy(lupa, SECOND, 2).await?;
    lupa.set_status(SECOND, FinalStatus::Ready, None).await?;
    n.action(format!("created {SECOND}, processed it: ready, staging"))?;
    n.resolve_all(lupa).await?;

    n.step(
        &format!("Promote {SECOND}"),
        "In one transaction the current production deployment is demoted to staging and the new one becomes \
         production: no request ever sees two production deployments, or none.",
    )?;
    let p = lupa.promote(PROJECT, SECOND).await?;
    let demoted = p.demoted.as_ref().map_or_else(|| "nothing".to_string(), ToString::to_string);
    n.action(format!("promoted {}; demoted {demoted} to staging", p.deployment.id))?;
    n.resolve_all(lupa).await?;

    n.step(
        "A deployment still processing cannot be promoted",
        "A production deployment is always ready. A third version has just been created and is still \
         processing: promoting it is refused, and so is a request that names it in its Deployment-Id header. \
         Production keeps serving the deployment it had.",
    )?;
    deploy(lupa, UNFINISHED, 3).await?;
    n.action(format!("created {UNFINISHED}: processing, staging"))?;
    match lupa.promote(PROJECT, UNFINISHED).await {
        Ok(_) => n.action(format!("promoted {UNFINISHED}, which should have been refused"))?,
        Err(e) => n.refused(format!("promote {UNFINISHED}"), &e)?,
    }
    n.resolve(
        lupa,
        &format!("live key + Deployment-Id {UNFINISHED}"),
        ResolveRequest::new(PROJECT, live()).deployment_id(UNFINISHED),
    )
    .await?;
    n.resolve(lupa, "live key", ResolveRequest::new(PROJECT, live())).await?;

    n.step(
        "Roll back",
        "Rollback promotes the deployment that was production before the current one, provided it still exists \
         and is ready: live keys reach the first version again. Asked a second time, the same answer comes from \
         a faster tier: the store is the truth, and the caches in front of it never answer with anything older \
         than a change that has returned.",
    )?;
    let p = lupa.rollback(PROJECT).await?;
    let demoted = p.demoted.as_ref().map_or_else(|| "nothing".to_string(), ToString::to_string);
    n.action(format!("rolled back to {}; demoted {demoted} to staging", p.deployment.id))?;
    n.resolve_all(lupa).await?;
    n.resolve(lupa, "live key, asked again", ResolveRequest::new(PROJECT, live())).await?;

    n.step(
        "The history of environment changes, newest first",
        "Every environment change is recorded with a sequence number: each promotion, the demotion it caused, \
         and the rollback (itself a change, so a second rollback would swap back).",
    )?;
    let history = lupa.history(PROJECT, None, None).await?;
    n.history(&history.items)?;

    n.step(
        "What the handle counted",
        "Every handle counts its resolutions by the tier that answered and its refusals by error code, the \
         hits and misses of each cache tier, store operations, promotions and rollbacks: stats() in every \
         language, and the same figures as Prometheus text for a metrics endpoint.",
    )?;
    let s = lupa.stats();
    let r = &s.resolutions;
    let refused: u64 = r.errors.iter().map(|e| e.count).sum();
    n.action(format!("{} resolutions, {refused} of them refused; answered by:", r.total()))?;
    n.action(format!("process memory {}, the cache {}, the store {}", r.local, r.cache, r.store))?;
    for e in &r.errors {
        n.action(format!("refused with {}: {}", e.code, e.count))?;
    }
    n.action(format!("process memory: {} hits, {} misses", s.local.hits, s.local.misses))?;
    n.action(format!("the cache: {} hits, {} misses", s.cache.hits, s.cache.misses))?;
    n.action(format!("store operations: {}", s.store.queries))?;
    n.action(format!("promotions: {}, rollbacks: {}", s.promotions, s.rollbacks))?;
    let text = s.to_prometheus();
    if let Some(sample) = text.lines().find(|l| l.starts_with("lupa_resolutions_total{source=\"store\"}")) {
        n.action(format!("in Prometheus text: {sample}"))?;
    }

    n.say(&format!(
        "\n{} {}{}",
        ui.paint("Done.", Style::Bold),
        "The store lived in memory and is gone.\nThe same steps on a store of your own (the SQLite \
         file lupa.db in this directory,\nunless --store or LUPA_STORE say otherwise):\n",
        [
            "lupa project create --org org_1 --name Docs --id abc1234567",
            "lupa deploy create abc1234567 --snapshot snp2345678 --id def4567890",
            "lupa deploy ready def4567890",
            "lupa deploy promote abc1234567 def4567890",
            "lupa resolve abc1234567 --key-env live",
        ]
        .iter()
        .map(|c| format!("   {c}\n"))
        .collect::<String>()
    ))?;

    if ui.json {
        return Ok(json(&DemoJson { store: STORE, cache: CACHE, project: PROJECT, steps: n.steps })?);
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_keeps_words_whole_and_lines_short() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        let wrapped = wrap(text, 20, "  ");
        assert!(wrapped.lines().all(|l| l.len() <= 20), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().collect::<Vec<_>>().join(" "), text);
        assert_eq!(wrap("", 20, "  "), "");
    }
}
