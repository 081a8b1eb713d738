//! The command line: every command, flag and environment variable, and the
//! checks of values the CLI parses itself (a failed one exits 2).

use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Shown after `--help`: the exit codes scripts can rely on.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  internal error (INTERNAL, or anything unexpected)
  2  usage: an unknown command or flag, a malformed value, or a store,
     cache, schema or key prefix that cannot be used
  3  refused: an error of the 4xx family (INVALID_ARGUMENT, INVALID_API_KEY,
     PROJECT_NOT_FOUND, DEPLOYMENT_NOT_READY, PRODUCTION_CONFLICT, ...)
  4  unavailable: the store did not answer (STORAGE_UNAVAILABLE, 503), or
     `lupa health` found a configured backend down

Errors are printed to stderr as `error: CODE: message`; with --json as
{\"error\": {\"code\", \"message\"}} on stderr. Results go to stdout.
Passwords in URLs and API keys never appear in any output.";

/// `lupa`: manage and resolve the deployments of Lupa projects.
#[derive(Debug, Parser)]
#[command(
    name = "lupa",
    version,
    about = "Projects, deployments, promotion, rollback and resolution of Lupa knowledge bases",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Where the data is and how to print.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The store: sqlite://PATH (created when missing), postgres://USER@HOST/DB, sqlite::memory: or memory://
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "LUPA_STORE",
        hide_env_values = true,
        default_value = "sqlite://lupa.db"
    )]
    pub store: String,

    /// The shared cache: redis://HOST:PORT, rediss://..., memory:// or none
    #[arg(long, global = true, value_name = "URL", env = "LUPA_CACHE", hide_env_values = true, default_value = "none")]
    pub cache: String,

    /// The PostgreSQL schema of the tables (created when missing)
    #[arg(long, global = true, value_name = "NAME", env = "LUPA_SCHEMA", default_value = "public")]
    pub schema: String,

    /// Put in front of every cache key [default: none, the plain key names]
    #[arg(long, global = true, value_name = "PREFIX", env = "LUPA_KEY_PREFIX")]
    pub key_prefix: Option<String>,

    /// Longest wait for the store, e.g. 500ms, 5s, 1m; then STORAGE_UNAVAILABLE (exit 4)
    #[arg(long, global = true, value_name = "DURATION", env = "LUPA_STORE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub store_timeout: Duration,

    /// Longest wait for one cache call; then the store answers instead. A command connects afresh, so this
    /// covers making the connection too
    #[arg(long, global = true, value_name = "DURATION", env = "LUPA_CACHE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub cache_timeout: Duration,

    /// Print one JSON document per command, for scripts
    #[arg(long, global = true)]
    pub json: bool,

    /// Print the library's log to stderr (-v warnings and details of errors, -vv everything)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list and delete projects
    #[command(subcommand)]
    Project(ProjectCommand),

    /// Create deployments, report processing, promote, move, delete, list
    #[command(subcommand)]
    Deploy(DeployCommand),

    /// Promote the deployment that was production before the current one
    Rollback {
        /// The project
        project: String,
    },

    /// Which deployment a request reaches, as the search API's middleware asks
    Resolve(ResolveArgs),

    /// Open the store, which applies its migrations (idempotent)
    Migrate,

    /// Ask the store and the cache whether they answer
    Health,

    /// Walk a project from creation to rollback on a throwaway in-memory store, explaining each step
    #[command(long_about = "Walk a project from creation to rollback on a throwaway in-memory store, explaining \
                            each step.\n\nThe demo ignores --store and --cache: it always uses an in-memory SQLite \
                            database and an in-memory cache, so it needs no servers and leaves nothing behind.")]
    Demo,
}

/// `lupa project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project
    Create {
        /// The owning organisation's id
        #[arg(long, value_name = "ID")]
        org: String,
        /// A display name, 1 to 256 characters
        #[arg(long)]
        name: String,
        /// The project id [default: 10 generated characters]
        #[arg(long)]
        id: Option<String>,
    },

    /// List projects in id order, a page at a time
    Ls(Paging),

    /// Delete a project with its deployments and history
    Rm {
        /// The project
        project: String,
    },
}

/// `lupa deploy ...`
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Create a deployment: it starts processing, in staging
    Create {
        /// The project
        project: String,
        /// The snapshot to build from
        #[arg(long, value_name = "ID")]
        snapshot: String,
        /// The deployment id [default: 10 generated characters]
        #[arg(long)]
        id: Option<String>,
        /// Where it is meant to serve: production waits in staging and is promoted the moment it is ready
        #[arg(long, value_enum, default_value_t = EnvName::Staging)]
        environment: EnvName,
        /// When it was created (RFC 3339, e.g. 2025-10-28T10:01:00Z) [default: now]
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        created_at: Option<String>,
    },

    /// List a project's deployments, newest first, a page at a time
    Ls {
        /// The project
        project: String,
        #[command(flatten)]
        paging: Paging,
    },

    /// Show one deployment
    Show {
        /// The deployment
        deployment: String,
    },

    /// Report that processing finished: the deployment is ready
    Ready {
        /// The deployment
        deployment: String,
    },

    /// Report that processing failed
    Fail {
        /// The deployment
        deployment: String,
        /// Why it failed
        #[arg(long)]
        message: Option<String>,
    },

    /// Make a ready deployment production, demoting the current one atomically
    Promote {
        /// The project
        project: String,
        /// The deployment
        deployment: String,
    },

    /// Set a deployment's environment without demoting anyone
    Env {
        /// The project
        project: String,
        /// The deployment
        deployment: String,
        /// The new environment
        #[arg(value_enum)]
        environment: EnvName,
    },

    /// Delete a deployment (production included)
    Rm {
        /// The project
        project: String,
        /// The deployment
        deployment: String,
    },

    /// A project's environment changes, newest first
    History {
        /// The project
        project: String,
        #[command(flatten)]
        paging: Paging,
    },
}

/// `--limit` and `--cursor` of every listing.
#[derive(Debug, Args)]
pub struct Paging {
    /// Most items to list, 1 to 1000 [default: 100]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(lupa_core::MAX_PAGE)))]
    pub limit: Option<u32>,
    /// Where to go on: the next_cursor of the previous page
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `lupa resolve ...`
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("caller").required(true).args(["key", "key_env", "internal", "internal_target"])))]
pub struct ResolveArgs {
    /// The project
    pub project: String,
    /// The caller's whole API key (lupa_sk_live_..., lupa_pk_test_...); a malformed one is INVALID_API_KEY
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The caller's API key environment, when the key was checked already
    #[arg(long, value_enum, value_name = "ENV")]
    pub key_env: Option<KeyEnvName>,
    /// An internal caller targeting production (same as --internal-target production)
    #[arg(long)]
    pub internal: bool,
    /// An internal caller targeting this environment
    #[arg(long, value_enum, value_name = "ENV")]
    pub internal_target: Option<EnvName>,
    /// The Deployment-Id header; empty means none
    #[arg(long, value_name = "ID")]
    pub deployment_id: Option<String>,
    /// The route does not require a deployment (default: it does)
    #[arg(long)]
    pub deployment_optional: bool,
}

/// A deployment environment, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvName {
    /// Live traffic
    Production,
    /// Everything else
    Staging,
}

impl From<EnvName> for lupa_core::Environment {
    fn from(e: EnvName) -> Self {
        match e {
            EnvName::Production => lupa_core::Environment::Production,
            EnvName::Staging => lupa_core::Environment::Staging,
        }
    }
}

/// An API key environment, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyEnvName {
    /// Resolves production
    Live,
    /// Resolves the newest ready staging deployment
    Test,
}

impl From<KeyEnvName> for lupa_core::KeyEnvironment {
    fn from(e: KeyEnvName) -> Self {
        match e {
            KeyEnvName::Live => lupa_core::KeyEnvironment::Live,
            KeyEnvName::Test => lupa_core::KeyEnvironment::Test,
        }
    }
}

/// A duration such as `250ms`, `5s` or `2m`: more than zero, at most a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a number and a unit (ms, s or m), like 500ms or 5s; got {text:?}");
    let digits = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        _ => return Err(bad()),
    };
    match millis {
        Some(0) => Err("a duration must be more than zero".into()),
        Some(ms) if ms <= 86_400_000 => Ok(Duration::from_millis(ms)),
        _ => Err("a duration must be at most a day".into()),
    }
}

/// An RFC 3339 time, kept as written (the library parses it again).
pub fn parse_time(text: &str) -> Result<String, String> {
    lupa_core::parse_timestamp(text)
        .map(|_| text.to_owned())
        .map_err(|_| "expected an RFC 3339 time such as 2025-10-28T10:01:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "5", "s", "0s", "-1s", "1.5s", "5 s", "5h", "99999999999999999999s", "2000m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_are_checked_and_kept_as_written() {
        assert_eq!(parse_time("2025-10-28T12:00:00+02:00").as_deref(), Ok("2025-10-28T12:00:00+02:00"));
        assert!(parse_time("yesterday").is_err());
    }
}
