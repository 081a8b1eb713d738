//! Every command but the demo: open the store, call the library once, say
//! what happened.

use lupa_core::{
    Caller, Changed, ComponentHealth, Config, CreateDeployment, Deployment, Environment, Error, ErrorCode, FinalStatus,
    Lupa, NewProject, Project, Promotion, ResolveRequest, Source, redact_url,
};

use crate::args::{Command, DeployCommand, Global, ProjectCommand, ResolveArgs};
use crate::output::{
    ChangedJson, DeletedDeploymentJson, DeletedProjectJson, DeploymentJson, HistoryJson, ListJson, ProjectJson,
    PromotionJson, ResolutionJson, Style, SummaryJson, Table, Ui, environment_style, fields, json, next_page, shown,
    status_style,
};

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The library refused or failed (exit by the error's HTTP status).
    Lupa(Error),
    /// The global flags name a store, cache, schema or key prefix the
    /// library cannot open (exit 2).
    Usage(Error),
    /// Writing the output failed.
    Output(std::io::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Lupa(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Output(e)
    }
}

/// What a command prints: its result on stdout, notes for people on stderr.
#[derive(Debug, Default)]
pub struct Report {
    pub stdout: String,
    pub notes: Vec<String>,
    /// The command succeeded but found something unavailable (`health`).
    pub unavailable: bool,
}

impl Report {
    fn text(stdout: String) -> Report {
        Report { stdout, ..Report::default() }
    }

    /// Notes that the shared cache is behind, when it is.
    fn pending(mut self, cache_pending: bool) -> Report {
        if cache_pending {
            self.notes.push(
                "the shared cache could not be reached: the change stands, and its cache update is recorded in \
                 the store and applied as soon as the cache answers again"
                    .into(),
            );
        }
        self
    }
}

/// The configuration the global flags describe.
pub fn config(global: &Global) -> Config {
    let mut config = Config::new(global.store.clone(), global.cache.clone());
    config.schema = global.schema.clone();
    config.key_prefix = global.key_prefix.clone().unwrap_or_default();
    config.store_timeout = global.store_timeout;
    // The library's default (50 ms) is for a server whose connection is
    // warm; every command here makes its connection on its first call.
    config.cache_timeout = global.cache_timeout;
    // One command asks each question once and exits: answers kept in process
    // memory would never be asked for again, and the tier would cost an
    // invalidation-channel subscription on every start.
    config.local_cache = false;
    // Commands run one store operation at a time; one more connection lets
    // the background task apply pending cache updates alongside.
    config.pool_size = 2;
    config
}

/// Opens the store and cache of the global flags (applying migrations).
pub async fn open(global: &Global) -> Result<Lupa, Failure> {
    Lupa::open(config(global)).await.map_err(|e| {
        // Opening takes no argument but the configuration: a refused
        // argument is a flag of the command line.
        if e.code() == ErrorCode::InvalidArgument { Failure::Usage(e) } else { Failure::Lupa(e) }
    })
}

/// Runs `command` against an open handle.
pub async fn run(lupa: &Lupa, global: &Global, command: &Command, ui: &Ui) -> Result<Report, Failure> {
    if !matches!(command, Command::Health | Command::Migrate) {
        // Cache updates an earlier change left pending (the cache was down)
        // are applied by whichever process comes next; a command lives too
        // briefly for the background task to, so it does so first. Best
        // effort: with the cache still down they stay pending.
        let _ = lupa.apply_pending_cache_updates().await;
    }
    match command {
        Command::Project(c) => project(lupa, c, ui).await,
        Command::Deploy(c) => deploy(lupa, c, ui).await,
        Command::Rollback { project } => {
            let p = lupa.rollback(project).await?;
            promotion(ui, &p, "rolled back:")
        }
        Command::Resolve(r) => resolve(lupa, r, ui).await,
        Command::Migrate => migrate(global, ui),
        Command::Health => health(lupa, global, ui).await,
        Command::Demo => Err(Failure::Lupa(Error::new(ErrorCode::Internal, "the demo opens a store of its own"))),
    }
}

async fn project(lupa: &Lupa, command: &ProjectCommand, ui: &Ui) -> Result<Report, Failure> {
    match command {
        ProjectCommand::Create { org, name, id } => {
            let p = lupa.create_project(NewProject { id: id.clone(), org_id: org.clone(), name: name.clone() }).await?;
            if ui.json {
                return Ok(Report::text(json(&ProjectJson::from(&p))?));
            }
            Ok(Report::text(format!(
                "created project {}\n{}",
                ui.paint(p.id.as_str(), Style::Bold),
                project_fields(ui, &p)
            )))
        }
        ProjectCommand::Ls(paging) => {
            let page = lupa.list_projects(paging.limit, paging.cursor.as_deref()).await?;
            if ui.json {
                return Ok(Report::text(json(&ListJson::<ProjectJson>::of(&page))?));
            }
            let mut table = Table::new(&["ID", "ORG", "NAME", "CREATED"]);
            for p in &page.items {
                table.row(vec![
                    (p.id.to_string(), Style::Bold),
                    (p.org_id.to_string(), Style::Plain),
                    (shown(&p.name), Style::Plain),
                    (lupa_core::format_timestamp(&p.created_at), Style::Plain),
                ]);
            }
            let body = if table.is_empty() { "no projects\n".to_string() } else { table.render(ui) };
            Ok(Report::text(body + &next_page(ui, page.next_cursor.as_deref())))
        }
        ProjectCommand::Rm { project } => {
            let changed = lupa.delete_project(project).await?;
            let out = if ui.json {
                json(&ChangedJson {
                    value: DeletedProjectJson { id: project.clone(), deleted: true },
                    cache_pending: changed.cache_pending,
                })?
            } else {
                format!("deleted project {project}, with its deployments and history\n")
            };
            Ok(Report::text(out).pending(changed.cache_pending))
        }
    }
}

async fn deploy(lupa: &Lupa, command: &DeployCommand, ui: &Ui) -> Result<Report, Failure> {
    match command {
        DeployCommand::Create { project, snapshot, id, environment, created_at } => {
            let d = lupa
                .create_deployment(CreateDeployment {
                    project: project.clone(),
                    id: id.clone(),
                    snapshot: snapshot.clone(),
                    environment: (*environment).into(),
                    created_at: created_at.clone(),
                })
                .await?;
            let mut headline = format!(
                "created deployment {} in project {}: {}, {}\n",
                ui.paint(d.id.as_str(), Style::Bold),
                d.project_id,
                d.status,
                d.environment
            );
            if d.promote_when_ready {
                headline.push_str("it waits in staging and is promoted to production the moment it is ready\n");
            }
            changed_deployment(ui, &d, headline)
        }
        DeployCommand::Ls { project, paging } => {
            let page = lupa.list_deployments(project, paging.limit, paging.cursor.as_deref()).await?;
            if ui.json {
                return Ok(Report::text(json(&ListJson::<DeploymentJson>::of(&page))?));
            }
            let mut table = Table::new(&["ID", "ENVIRONMENT", "STATUS", "SNAPSHOT", "CREATED", "NOTE"]);
            for d in &page.items {
                table.row(vec![
                    (d.id.to_string(), Style::Bold),
                    (d.environment.to_string(), environment_style(d.environment)),
                    (d.status.to_string(), status_style(d.status)),
                    (d.snapshot_id.to_string(), Style::Plain),
                    (lupa_core::format_timestamp(&d.created_at), Style::Plain),
                    (note(d), Style::Dim),
                ]);
            }
            let body =
                if table.is_empty() { format!("project {project} has no deployments\n") } else { table.render(ui) };
            Ok(Report::text(body + &next_page(ui, page.next_cursor.as_deref())))
        }
        DeployCommand::Show { deployment } => {
            let d = lupa.get_deployment(deployment).await?;
            if ui.json {
                return Ok(Report::text(json(&DeploymentJson::from(&d))?));
            }
            Ok(Report::text(format!(
                "deployment {}\n{}",
                ui.paint(d.id.as_str(), Style::Bold),
                deployment_fields(ui, &d)
            )))
        }
        DeployCommand::Ready { deployment } => {
            let d = lupa.set_status(deployment, FinalStatus::Ready, None).await?;
            let mut headline = format!("deployment {} is {}\n", ui.paint(d.id.as_str(), Style::Bold), d.status);
            if d.environment == Environment::Production {
                headline.push_str("it is production now (it was created for production)\n");
            }
            changed_deployment(ui, &d, headline)
        }
        DeployCommand::Fail { deployment, message } => {
            let d = lupa.set_status(deployment, FinalStatus::Failed, message.clone()).await?;
            let headline = format!("deployment {} {}\n", ui.paint(d.id.as_str(), Style::Bold), d.status);
            changed_deployment(ui, &d, headline)
        }
        DeployCommand::Promote { project, deployment } => {
            let p = lupa.promote(project, deployment).await?;
            promotion(ui, &p, "promoted:")
        }
        DeployCommand::Env { project, deployment, environment } => {
            let d = lupa.set_environment(project, deployment, (*environment).into()).await?;
            let headline = format!("deployment {} is {} now\n", ui.paint(d.id.as_str(), Style::Bold), d.environment);
            changed_deployment(ui, &d, headline)
        }
        DeployCommand::Rm { project, deployment } => {
            let d = lupa.delete_deployment(project, deployment).await?;
            if ui.json {
                let value = DeletedDeploymentJson { deployment: DeploymentJson::from(&d.value), deleted: true };
                return Ok(Report::text(json(&ChangedJson { value, cache_pending: d.cache_pending })?)
                    .pending(d.cache_pending));
            }
            let out = format!("deleted deployment {} (it was {}, {})\n", d.id, d.environment, d.status);
            Ok(Report::text(out).pending(d.cache_pending))
        }
        DeployCommand::History { project, paging } => {
            let page = lupa.history(project, paging.limit, paging.cursor.as_deref()).await?;
            if ui.json {
                return Ok(Report::text(json(&ListJson::<HistoryJson>::of(&page))?));
            }
            let mut table = Table::new(&["SEQ", "DEPLOYMENT", "FROM", "TO", "AT"]);
            for e in &page.items {
                table.row(vec![
                    (e.seq.to_string(), Style::Plain),
                    (e.deployment_id.to_string(), Style::Bold),
                    (e.from.to_string(), environment_style(e.from)),
                    (e.to.to_string(), environment_style(e.to)),
                    (lupa_core::format_timestamp(&e.at), Style::Plain),
                ]);
            }
            let body = if table.is_empty() {
                format!("project {project} has no environment changes yet\n")
            } else {
                table.render(ui)
            };
            Ok(Report::text(body + &next_page(ui, page.next_cursor.as_deref())))
        }
    }
}

async fn resolve(lupa: &Lupa, args: &ResolveArgs, ui: &Ui) -> Result<Report, Failure> {
    // The command line lets exactly one caller through.
    let caller = match (&args.key, args.key_env, args.internal, args.internal_target) {
        (Some(key), None, false, None) => Caller::ApiKey(key.clone()),
        (None, Some(env), false, None) => Caller::KeyEnvironment(env.into()),
        (None, None, true, None) => Caller::Internal(None),
        (None, None, false, Some(target)) => Caller::Internal(Some(target.into())),
        _ => return Err(Failure::Usage(Error::new(ErrorCode::InvalidArgument, "give exactly one caller"))),
    };
    let request = ResolveRequest {
        project: args.project.clone(),
        deployment_id: args.deployment_id.clone(),
        requires_deployment: !args.deployment_optional,
        caller,
    };
    let r = lupa.resolve(&request).await?;
    if ui.json {
        return Ok(Report::text(json(&ResolutionJson {
            project: args.project.clone(),
            deployment_id: args.deployment_id.clone().filter(|d| !d.is_empty()),
            requires_deployment: request.requires_deployment,
            deployment: r.deployment.as_ref().map(ToString::to_string),
            source: r.source.as_str(),
        })?));
    }
    let answer = match &r.deployment {
        Some(d) => ui.paint(d.as_str(), Style::Green),
        None => "no deployment: the route requires none, and the project exists".into(),
    };
    let source = ui.paint(&format!("({})", source_words(r.source)), Style::Dim);
    Ok(Report::text(format!("{} -> {answer} {source}\n", args.project)))
}

/// Which tier answered, in words.
pub fn source_words(source: Source) -> &'static str {
    match source {
        Source::Local => "answered from process memory",
        Source::Cache => "answered by the shared cache",
        Source::Store => "answered by the store",
    }
}

fn migrate(global: &Global, ui: &Ui) -> Result<Report, Failure> {
    let store = redact_url(&global.store);
    let schema = is_postgres(&global.store).then(|| global.schema.clone());
    if ui.json {
        #[derive(serde::Serialize)]
        struct Migrated {
            store: String,
            schema: Option<String>,
            migrated: bool,
        }
        return Ok(Report::text(json(&Migrated { store, schema, migrated: true })?));
    }
    let in_schema = schema.map(|s| format!(", schema {s}")).unwrap_or_default();
    Ok(Report::text(format!("migrations applied: the store {store}{in_schema} is up to date\n")))
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

async fn health(lupa: &Lupa, global: &Global, ui: &Ui) -> Result<Report, Failure> {
    let h = lupa.health().await;
    let unavailable =
        matches!(h.store, ComponentHealth::Unavailable(_)) || matches!(h.cache, ComponentHealth::Unavailable(_));
    let breaker = match h.breaker {
        lupa_core::BreakerState::Closed => "closed",
        lupa_core::BreakerState::Open => "open",
        lupa_core::BreakerState::HalfOpen => "half_open",
    };
    let out = if ui.json {
        #[derive(serde::Serialize)]
        struct Component {
            url: String,
            state: &'static str,
            detail: Option<String>,
        }
        #[derive(serde::Serialize)]
        struct HealthJson {
            healthy: bool,
            store: Component,
            cache: Component,
            breaker: &'static str,
            pending_cache_updates: Option<usize>,
        }
        let component = |url: &str, c: &ComponentHealth| {
            let (state, detail) = state_of(c);
            Component { url: redact_url(url), state, detail: detail.map(|d| lupa_core::redact_text(&d)) }
        };
        json(&HealthJson {
            healthy: !unavailable,
            store: component(&global.store, &h.store),
            cache: component(&global.cache, &h.cache),
            breaker,
            pending_cache_updates: h.pending_cache_updates,
        })?
    } else {
        let mut table = Table::new(&["COMPONENT", "URL", "STATE", "DETAIL"]);
        for (name, url, c) in [("store", &global.store, &h.store), ("cache", &global.cache, &h.cache)] {
            let (state, detail) = state_of(c);
            let style = match c {
                ComponentHealth::Ok => Style::Green,
                ComponentHealth::Disabled => Style::Dim,
                ComponentHealth::Unavailable(_) => Style::Red,
            };
            table.row(vec![
                (name.into(), Style::Plain),
                (redact_url(url), Style::Plain),
                (state.into(), style),
                (detail.map(|d| shown(&lupa_core::redact_text(&d))).unwrap_or_default(), Style::Plain),
            ]);
        }
        let pending = h.pending_cache_updates.map_or_else(|| "unknown".into(), |n| n.to_string());
        let verdict = if unavailable { ui.paint("unavailable", Style::Red) } else { ui.paint("healthy", Style::Green) };
        format!("{}\ncache breaker: {breaker}\npending cache updates: {pending}\n{verdict}\n", table.render(ui))
    };
    Ok(Report { stdout: out, notes: Vec::new(), unavailable })
}

fn state_of(c: &ComponentHealth) -> (&'static str, Option<String>) {
    match c {
        ComponentHealth::Ok => ("ok", None),
        ComponentHealth::Disabled => ("disabled", None),
        ComponentHealth::Unavailable(detail) => ("unavailable", Some(detail.clone())),
    }
}

fn promotion(ui: &Ui, p: &Changed<Promotion>, verb: &str) -> Result<Report, Failure> {
    if ui.json {
        let value = PromotionJson {
            success: true,
            deployment: SummaryJson::from(&p.deployment),
            demoted: p.demoted.as_ref().map(ToString::to_string),
        };
        return Ok(Report::text(json(&ChangedJson { value, cache_pending: p.cache_pending })?).pending(p.cache_pending));
    }
    let mut out = format!("{verb} {} is production\n", ui.paint(p.deployment.id.as_str(), Style::Bold));
    if let Some(d) = &p.demoted {
        out.push_str(&format!("{d} was demoted to staging\n"));
    }
    Ok(Report::text(out).pending(p.cache_pending))
}

fn changed_deployment(ui: &Ui, d: &Changed<Deployment>, headline: String) -> Result<Report, Failure> {
    let out = if ui.json {
        json(&ChangedJson { value: DeploymentJson::from(&d.value), cache_pending: d.cache_pending })?
    } else {
        headline + &deployment_fields(ui, d)
    };
    Ok(Report::text(out).pending(d.cache_pending))
}

fn note(d: &Deployment) -> String {
    match (&d.failure_message, d.promote_when_ready) {
        (Some(m), _) => shown(m),
        (None, true) => "promoted when ready".into(),
        (None, false) => String::new(),
    }
}

fn project_fields(ui: &Ui, p: &Project) -> String {
    fields(
        ui,
        &[
            ("id", p.id.to_string(), Style::Plain),
            ("org_id", p.org_id.to_string(), Style::Plain),
            ("name", shown(&p.name), Style::Plain),
            ("created_at", lupa_core::format_timestamp(&p.created_at), Style::Plain),
            ("updated_at", lupa_core::format_timestamp(&p.updated_at), Style::Plain),
        ],
    )
}

fn deployment_fields(ui: &Ui, d: &Deployment) -> String {
    let mut rows = vec![
        ("id", d.id.to_string(), Style::Plain),
        ("project_id", d.project_id.to_string(), Style::Plain),
        ("snapshot_id", d.snapshot_id.to_string(), Style::Plain),
        ("environment", d.environment.to_string(), environment_style(d.environment)),
        ("status", d.status.to_string(), status_style(d.status)),
        ("created_at", lupa_core::format_timestamp(&d.created_at), Style::Plain),
        ("updated_at", lupa_core::format_timestamp(&d.updated_at), Style::Plain),
    ];
    if let Some(m) = &d.failure_message {
        rows.push(("failure_message", shown(m), Style::Plain));
    }
    if d.promote_when_ready {
        rows.push(("promote_when_ready", "yes".into(), Style::Plain));
    }
    fields(ui, &rows)
}
