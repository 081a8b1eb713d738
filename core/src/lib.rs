//! # lupa-core
//!
//! Which deployment of a knowledge base a request reaches, and the changes
//! that move it: the Lupa deployment system as an embeddable library.
//!
//! - A `live` API key resolves the project's ready production deployment,
//!   a `test` key its newest ready staging one, a `Deployment-Id` header
//!   picks one explicitly ([`Lupa::resolve`]).
//! - Promotion swaps production atomically ([`Lupa::promote`]); rollback
//!   goes back ([`Lupa::rollback`]).
//! - The store (PostgreSQL, SQLite, memory) is the truth and enforces the
//!   invariants itself; a shared cache (Redis, memory) answers in front of
//!   it and is never allowed to serve an answer older than a change that
//!   has returned.
//!
//! ```no_run
//! # async fn demo() -> lupa_core::Result<()> {
//! use lupa_core::{Caller, Config, CreateDeployment, Environment, FinalStatus, KeyEnvironment, Lupa, NewProject, ResolveRequest};
//!
//! let lupa = Lupa::open(Config::new("sqlite::memory:", "memory://")).await?;
//! lupa.create_project(NewProject { id: Some("abc1234567".into()), org_id: "org_1".into(), name: "Docs".into() }).await?;
//! lupa.create_deployment(CreateDeployment {
//!     project: "abc1234567".into(), id: Some("def4567890".into()), snapshot: "snp2345678".into(),
//!     environment: Environment::Staging, created_at: None,
//! }).await?;
//! lupa.set_status("def4567890", FinalStatus::Ready, None).await?;
//! lupa.promote("abc1234567", "def4567890").await?;
//! let live = ResolveRequest::new("abc1234567", Caller::KeyEnvironment(KeyEnvironment::Live));
//! assert_eq!(lupa.resolve(&live).await?.deployment.unwrap().as_str(), "def4567890");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod apikey;
pub mod cache;
mod channel;
mod config;
pub mod conformance;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod lifecycle;
mod local;
mod lupa;
pub mod metrics;
mod model;
mod redact;
mod resolve;
pub mod store;

pub use apikey::{ApiKeyInfo, KeyEnvironment, KeyType, api_key_from_authorization, parse_api_key};
/// The attribute that makes the async methods of [`store::Store`] and
/// [`cache::Cache`] implementable by third parties.
pub use async_trait::async_trait;
pub use cache::guard::BreakerState;
pub use config::Config;
pub use error::{Error, ErrorCode, Result};
pub use ids::{DeploymentId, MAX_ID_LEN, OrgId, ProjectId, SnapshotId};
pub use lupa::{CacheProbe, ComponentHealth, CreateDeployment, Health, Lupa, MAX_PAGE, NewProject, Options};
pub use metrics::Stats;
pub use model::{
    Changed, Deployment, DeploymentSummary, Environment, FinalStatus, HistoryEntry, Page, Project, Promotion, Status,
    Timestamp, format_timestamp, parse_timestamp,
};
pub use redact::{redact_text, redact_url};
pub use resolve::{Caller, Resolution, ResolveRequest, Source, project_from_host};
